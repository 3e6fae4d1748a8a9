"""Credit repair (信用修复) of a dishonesty record: when the archive accepts a repair decision.

The rule implemented (docs/contract.md, *Credit repair*), after the national measures on credit
repair (失信行为纠正后的信用信息修复管理办法（试行）, 2023) for administrative penalties: a record
may be repaired once its minimum disclosure period (最短公示期) has passed, counted from its
decision date (一般: 3 months, 严重: 1 year, 轻微: not published, no minimum). The periods are
catalog data (`severities.toml`, `repair_min_months`), passed in as `minimums`. A repaired
record stays in the archive with its content, marked repaired with the decision, and is out of
the public view from the decision date on (which validation keeps on or before the repair's
publication day, so the change that applies it already takes it out).

Only the unit that owns the record can address it (the record key is unit + record id), so a
repair of another unit's record is an unknown record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from creditbus.archive.state import RecordState
from creditbus.archive.timeutil import add_months, china_date
from creditbus.contract import reasons as R


@dataclass(frozen=True, slots=True)
class RepairDecision:
    """The decision a REPAIR event carries (its CreditRepair content)."""

    decision_number: str
    decision_date: str  # ISO date
    authority: str

    def stored(self, event_id: str) -> list[str]:
        """The form a record keeps (RecordState.repair): number, date, authority, event id."""
        return [self.decision_number, self.decision_date, self.authority, event_id]


def decision_of(content_json: str) -> RepairDecision:
    """The repair decision in an enriched REPAIR event's content (`{"CreditRepair": {...}}`,
    possibly beside the person's organisation); raises ValueError when there is none."""
    try:
        doc: Any = orjson.loads(content_json)
        body = doc["CreditRepair"]
        return RepairDecision(str(body["decision_number"]), str(body["decision_date"]),
                              str(body["authority"]))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError("a REPAIR event without CreditRepair content") from exc


def decision_day(record: RecordState) -> date:
    """The day a record's minimum disclosure period counts from: its disclosure start (the
    decision date) or, for a record never disclosed, the day of its fact."""
    if record.disclosure_start:
        return date.fromisoformat(record.disclosure_start)
    return china_date(record.occurred_at)


def earliest_repair(record: RecordState, minimums: Mapping[str, int]) -> date:
    """The first day a repair decision of `record` may bear."""
    months = minimums.get(record.severity or "", 0)
    return add_months(decision_day(record), months)


def refusal(record: RecordState | None, decision: RepairDecision,
            minimums: Mapping[str, int]) -> str | None:
    """Why the archive refuses the repair of `record` (a reason code), or None to apply it.

    A repeat of the decision already applied is not refused here (the caller treats it as a
    duplicate); another decision on a repaired record is.
    """
    if record is None:
        return R.REPAIR_UNKNOWN_RECORD
    if record.retracted:
        return R.REPAIR_RECORD_RETRACTED
    if record.repair is not None:
        return R.REPAIR_ALREADY_REPAIRED
    if record.severity is None:
        return R.REPAIR_NOT_APPLICABLE
    if date.fromisoformat(decision.decision_date) < earliest_repair(record, minimums):
        return R.REPAIR_TOO_EARLY
    return None


def is_same_decision(record: RecordState | None, decision: RepairDecision) -> bool:
    """Whether `record` is already repaired by this very decision (number, date, authority)."""
    return record is not None and record.repair is not None \
        and record.repair[:3] == [decision.decision_number, decision.decision_date,
                                  decision.authority]


def repaired(current: RecordState, decision: RepairDecision, event_id: str,
             published_at: int) -> RecordState:
    """The record after the repair: same content and window, out of the public view."""
    return RecordState(
        current.record_version + 1, False, False, current.content_hash, current.group,
        current.category, current.severity, current.domain, current.occurred_at, published_at,
        current.disclosure_start, current.disclosure_end, current.content_json,
        decision.stored(event_id))
