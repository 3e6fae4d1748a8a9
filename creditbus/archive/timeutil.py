"""Time helpers: the bus's logical clock is milliseconds since the epoch; dates are China's."""

from __future__ import annotations

from datetime import UTC, date, datetime

from creditbus.constants import CHINA_TZ


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def china_date(ms: int) -> date:
    """The calendar date in China at the instant `ms`."""
    return datetime.fromtimestamp(ms / 1000, tz=CHINA_TZ).date()


def china_midnight_ms(day: date) -> int:
    """The instant a Chinese calendar day begins."""
    return datetime_to_ms(datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ))


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clamped to the month's last day (2024-01-31 + 1 = 2024-02-29)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, dom))
        except ValueError:
            continue
    raise ValueError(f"cannot add {months} months to {day}")
