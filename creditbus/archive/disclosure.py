"""Public-disclosure windows of dishonesty records (公示期限).

一般 (general): at least 3 months, at most 1 year; 严重 (serious): at least 1 year, at most 3
years, both counted from the decision date; 轻微 (minor): not disclosed. The bounds come from the
catalog's severities. A 公示截止期 given by the unit wins when it lies within the bounds and is
clamped into them otherwise; without one the window is the longest the severity allows, since
early withdrawal is what credit repair (信用修复) is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from creditbus.archive.timeutil import add_months


@dataclass(frozen=True, slots=True)
class Window:
    start: date
    end: date  # exclusive: the record leaves the public view on this day

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end


def disclosure_window(
    *,
    dishonesty: bool,
    min_months: int,
    max_months: int,
    decision_date: date,
    unit_deadline: date | None,
) -> Window | None:
    """The window of a record, or None when it is not to be disclosed at all."""
    if not dishonesty or max_months <= 0:
        return None
    earliest = add_months(decision_date, min_months)
    latest = add_months(decision_date, max_months)
    end = latest if unit_deadline is None else min(max(unit_deadline, earliest), latest)
    return Window(decision_date, end)
