"""How one message changes one person's archive: `apply_event(state, event) -> Outcome`.

The state is a `creditbus.archive.state.PersonState`; an outcome that changes it returns it
(changed in place: the caller owns the state it loaded and saves it when `outcome.state` is
set) together with the updates it emits. Every change is deterministic given the state and the
message (logical time only), so a message processed again from the same state yields
byte-identical updates.

A REPAIR marks a record repaired (信用修复) when the rule of `creditbus.archive.repair` allows it,
and is dead-lettered with its reason otherwise; the minimum periods it needs are catalog data,
passed as `repair_minimums` (default: the catalog of `default_catalog()`).

A replay of the very same inbound message (same topic, partition, offset), which a restart of
either stage after a crash makes, is recognised by the person's mark of that inbound partition
(`state.marks`: the highest offset decided from it, whatever the outcome; a person's messages
of one inbound partition reach the agent in offset order, repeats aside). A replay emits
nothing, no receipt either: the archive agent makes a message's output durable before it
stores the state that remembers the message (streams/agents.py), so a state that has decided
it means its updates and its receipt are already out, and a message is never decided twice
against two different states. The dedup window (`state.seen`) tells an exact duplicate (the
same event id from another inbound message).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from creditbus.archive import repair
from creditbus.archive.event import EnrichedEvent, MaintenanceTick
from creditbus.archive.state import (
    PersonState,
    RecordState,
    Seen,
    place_key,
    seen_key,
    source_tag,
)
from creditbus.archive.timeutil import china_date, china_midnight_ms
from creditbus.archive.update import Update, build_update
from creditbus.contract import reasons

UPSERT_RECORD = "UPSERT_RECORD"
RETRACT_RECORD = "RETRACT_RECORD"
DISCLOSURE_EXPIRED = "DISCLOSURE_EXPIRED"
REPAIR_RECORD = "REPAIR_RECORD"

APPLIED = "applied"
DUPLICATE_EXACT = "exact"
DUPLICATE_CONTENT = "content"
REPLAY = "replay"
DEAD_LETTER = "dead_letter"
NOTHING = "nothing"

RETRACT_UNKNOWN_RECORD = reasons.RETRACT_UNKNOWN_RECORD


@dataclass
class Outcome:
    """What processing one message did."""

    result: str
    state: PersonState | None  # the state when it changed (to be saved), else None
    updates: list[Update] = field(default_factory=list)
    dead_letter_reason: str | None = None
    version: int | None = None  # the archive version the message made (also on a replay)


def new_state(event: EnrichedEvent) -> PersonState:
    return PersonState(event.person_key, event.masked_id, event.name, event.birth_date,
                       event.sex, event.division_code)


def record_key(unit: str, record_id: str) -> str:
    return f"{unit}/{record_id}"


def counts_by_category(state: PersonState) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in state.current_records().values():
        counts[rec.category] = counts.get(rec.category, 0) + 1
    return counts


def apply_event(state: PersonState | None, event: EnrichedEvent, *, horizon_ms: int,
                repair_minimums: Mapping[str, int] | None = None) -> Outcome:
    """Apply one enriched event (`state` None: the person's first). `repair_minimums`:
    severity code -> months before a repair may take effect (`Catalog.repair_minimums()`)."""
    if state is None:
        state = new_state(event)
    tag = source_tag(event.source_topic)
    place = place_key(tag, event.source_partition)
    mark = state.marks.get(place)
    if mark is not None and event.source_offset <= mark:
        seen = state.seen.get(seen_key(event.event_id))
        return Outcome(REPLAY, None, version=seen.version if seen is not None else None)
    _prune_seen(state, event.published_at - horizon_ms)
    state.marks[place] = event.source_offset
    outcome = _decide(state, event, tag, repair_minimums)
    outcome.state = state  # the mark changed: saved whatever the outcome
    return outcome


def _decide(state: PersonState, event: EnrichedEvent, tag: int,
            repair_minimums: Mapping[str, int] | None) -> Outcome:
    message = seen_key(event.event_id)
    seen = state.seen.get(message)
    if seen is not None:
        if seen.same_place(tag, event.source_partition, event.source_offset):
            return Outcome(REPLAY, None, version=seen.version)
        return Outcome(DUPLICATE_EXACT, None, version=seen.version)

    key = record_key(event.unit, event.record_id)
    current = state.records.get(key)
    if event.action == "RETRACT":
        if current is None:
            return Outcome(DEAD_LETTER, None, dead_letter_reason=RETRACT_UNKNOWN_RECORD)
        if current.retracted:
            return Outcome(DUPLICATE_CONTENT, None)
        record = RecordState(
            current.record_version + 1, True, False, current.content_hash, current.group,
            current.category, current.severity, current.domain, current.occurred_at,
            event.published_at, current.disclosure_start, current.disclosure_end,
            current.content_json, current.repair)
        kind = RETRACT_RECORD
    elif event.action == "REPAIR":
        try:
            decision = repair.decision_of(event.content_json)
        except ValueError:  # validation lets no such event through; never crash on one
            return Outcome(DEAD_LETTER, None, dead_letter_reason=reasons.CONTENT_MISMATCH)
        if repair.is_same_decision(current, decision):
            return Outcome(DUPLICATE_CONTENT, None)
        refused = repair.refusal(current, decision, _minimums(repair_minimums))
        if refused is not None or current is None:
            return Outcome(DEAD_LETTER, None,
                           dead_letter_reason=refused or reasons.REPAIR_UNKNOWN_RECORD)
        record = repair.repaired(current, decision, event.event_id, event.published_at)
        kind = REPAIR_RECORD
    else:
        if current is not None and not current.retracted \
                and current.content_hash == event.content_hash:
            return Outcome(DUPLICATE_CONTENT, None)
        record = _record_from_event(event, current)
        kind = UPSERT_RECORD

    _take_person_fields(state, event)
    update = _append_change(state, kind, key, record, event.event_id, event.unit,
                            event.published_at)
    state.seen[message] = Seen(update.version, tag, event.source_partition, event.source_offset,
                               event.published_at)
    return Outcome(APPLIED, state, [update], version=update.version)


def apply_tick(state: PersonState | None, tick: MaintenanceTick, *, partition: int,
               offset: int, horizon_ms: int, index: int = 0) -> Outcome:
    """Expire disclosures due by the tick's date and prune dedup state older than the horizon;
    the tick is item `index` of the by-person message at (partition, offset)."""
    if state is None:
        return Outcome(NOTHING, None)
    message = seen_key(f"tick@{partition}:{offset}" + (f":{index}" if index else ""))
    seen = state.seen.get(message)
    if seen is not None:
        return Outcome(REPLAY, None, version=seen.version)
    as_of = date.fromisoformat(tick.as_of)
    as_of_ms = china_midnight_ms(as_of)
    pruned = _prune_seen(state, as_of_ms - horizon_ms)
    due = sorted(
        (rec.disclosure_end, key) for key, rec in state.records.items()
        if rec.public and rec.disclosure_end and date.fromisoformat(rec.disclosure_end) <= as_of
    )
    if not due:
        return Outcome(NOTHING, state if pruned else None)
    updates = []
    for end, key in due:
        current = state.records[key]
        record = RecordState(
            current.record_version + 1, False, False, current.content_hash, current.group,
            current.category, current.severity, current.domain, current.occurred_at,
            current.published_at, current.disclosure_start, current.disclosure_end,
            current.content_json, current.repair)
        unit = key.partition("/")[0]
        updates.append(_append_change(state, DISCLOSURE_EXPIRED, key, record, None, unit,
                                      china_midnight_ms(date.fromisoformat(end))))
    state.seen[message] = Seen(updates[0].version, 0, partition, offset, as_of_ms)
    return Outcome(APPLIED, state, updates, version=updates[0].version)


# -- internals ---------------------------------------------------------------------------------

def _prune_seen(state: PersonState, older_than_ms: int) -> bool:
    """Forget message ids older than the horizon; True when any was forgotten."""
    stale = [k for k, s in state.seen.items() if s.at_ms < older_than_ms]
    for key in stale:
        del state.seen[key]
    return bool(stale)


def _take_person_fields(state: PersonState, event: EnrichedEvent) -> None:
    state.masked_id, state.name, state.birth_date = event.masked_id, event.name, event.birth_date
    state.sex, state.division_code = event.sex, event.division_code
    if event.group not in state.groups:
        state.groups = sorted([*state.groups, event.group])


def _record_from_event(event: EnrichedEvent, current: RecordState | None) -> RecordState:
    """The record an UPSERT makes. A correction of a repaired record stays repaired and out of
    the public view; a record published again after its retraction starts afresh."""
    as_of = china_date(event.published_at)
    start, end = event.disclosure_start, event.disclosure_end
    kept = current.repair if current is not None and not current.retracted else None
    public = kept is None and bool(
        start and end and date.fromisoformat(start) <= as_of < date.fromisoformat(end))
    return RecordState(
        (current.record_version if current else 0) + 1, False, public, event.content_hash,
        event.group, event.category, event.severity, event.domain, event.occurred_at,
        event.published_at, start, end, event.content_json, kept)


def _minimums(given: Mapping[str, int] | None) -> Mapping[str, int]:
    if given is not None:
        return given
    from creditbus.catalog import default_catalog  # only a repair needs it

    return default_catalog().repair_minimums()


def _append_change(state: PersonState, kind: str, key: str, record: RecordState,
                   event_id: str | None, unit: str, at_ms: int) -> Update:
    """Emit the update that puts `record` in the archive, then advance version and chain."""
    version = state.version + 1
    update = build_update(state, version, kind, key, record, event_id, unit, at_ms)
    if record.retracted:
        record.content_json = ""  # the update carried the snapshot; the tombstone needs none
    state.records[key] = record
    state.version = version
    state.head = update.hash
    ends = [r.disclosure_end for r in state.records.values() if r.public and r.disclosure_end]
    state.next_expiry = min(ends) if ends else None
    return update
