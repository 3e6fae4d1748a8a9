"""Argument types that several commands share."""

from __future__ import annotations

import argparse
from datetime import date, datetime

from creditbus.constants import CHINA_TZ


def china_time(text: str) -> datetime:
    """An ISO 8601 time for `--since` / `--until`: without a zone it is Beijing time, and a date
    alone means its midnight."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from None
        value = datetime(day.year, day.month, day.day)
    return value if value.tzinfo else value.replace(tzinfo=CHINA_TZ)
