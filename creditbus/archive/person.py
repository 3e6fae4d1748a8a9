"""How one message changes one person's archive.

The archive is a JSON-able dict (it lives in a Faust table):

    person_key, masked_id, name, birth_date, sex, division_code, groups
    version, head                  the person's archive version and hash-chain head
    first_update_ms, last_update_ms
    records   {"<unit>/<record id>": snapshot}   retracted records stay, flagged
    history   [[version, kind, record key, record version, event id or null, hash], ...]
    seen      {message id: [first version, last version, partition, offset, logical ms, (index)]}
    next_expiry                    the earliest disclosure end among public records

Every change is deterministic given the archive and the message (logical time only), so a
message processed twice after a crash yields byte-identical updates: at-least-once delivery
with idempotent effects. `seen` tells an exact duplicate (the same event id from another
message) from a replay of the very same message (same partition, offset and place in a pack),
must be emitted again because they may have been lost with the crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from creditbus.archive.chain import update_hash
from creditbus.archive.event import EnrichedEvent, MaintenanceTick
from creditbus.archive.timeutil import china_date, china_midnight_ms, ms_to_datetime
from creditbus.contract.canonical import GENESIS_HASH

UPSERT_RECORD = "UPSERT_RECORD"
RETRACT_RECORD = "RETRACT_RECORD"
DISCLOSURE_EXPIRED = "DISCLOSURE_EXPIRED"

APPLIED = "applied"
DUPLICATE_EXACT = "exact"
DUPLICATE_CONTENT = "content"
REPLAY = "replay"
DEAD_LETTER = "dead_letter"
NOTHING = "nothing"

RETRACT_UNKNOWN_RECORD = "RETRACT_UNKNOWN_RECORD"

Archive = dict[str, Any]
Update = dict[str, Any]


@dataclass
class Outcome:
    """What processing one message did."""

    result: str
    archive: Archive | None  # the new archive when it changed, else None
    updates: list[Update] = field(default_factory=list)
    replay_versions: tuple[int, int] | None = None  # first, last: to emit again
    dead_letter_reason: str | None = None


def new_archive(event: EnrichedEvent) -> Archive:
    return {
        "person_key": event.person_key, "masked_id": event.masked_id, "name": event.name,
        "birth_date": event.birth_date, "sex": event.sex, "division_code": event.division_code,
        "groups": [], "version": 0, "head": GENESIS_HASH,
        "first_update_ms": None, "last_update_ms": None,
        "records": {}, "history": [], "seen": {}, "next_expiry": None,
    }


def record_key(unit: str, record_id: str) -> str:
    return f"{unit}/{record_id}"


def current_records(archive: Archive) -> list[dict[str, Any]]:
    return [r for r in archive["records"].values() if not r["retracted"]]


def counts_by_category(archive: Archive) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in current_records(archive):
        counts[rec["category"]] = counts.get(rec["category"], 0) + 1
    return counts


def apply_event(
    archive: Archive | None,
    event: EnrichedEvent,
    *,
    partition: int,
    offset: int,
    horizon_ms: int,
    index: int = 0,
) -> Outcome:
    """Apply one enriched event received at (partition, offset) of the by-person topic, as
    item `index` of that message when it is a pack."""
    base = archive if archive is not None else new_archive(event)
    pruned = _prune_seen(base, event.published_at - horizon_ms)
    seen = pruned["seen"].get(event.event_id)
    if seen is not None:
        if seen[2] == partition and seen[3] == offset and _index(seen) == index:
            return Outcome(REPLAY, None, replay_versions=(seen[0], seen[1]))
        return Outcome(DUPLICATE_EXACT, pruned if pruned is not base else None)

    key = record_key(event.unit, event.record_id)
    current = pruned["records"].get(key)
    if event.action == "RETRACT":
        if current is None:
            return Outcome(DEAD_LETTER, None, dead_letter_reason=RETRACT_UNKNOWN_RECORD)
        if current["retracted"]:
            return Outcome(DUPLICATE_CONTENT, None)
        record = dict(current, retracted=True, public=False,
                      record_version=current["record_version"] + 1,
                      published_at=event.published_at)
        kind = RETRACT_RECORD
    else:
        if current is not None and not current["retracted"] \
                and current["content_hash"] == event.content_hash:
            return Outcome(DUPLICATE_CONTENT, None)
        record = _snapshot_from_event(event, current)
        kind = UPSERT_RECORD

    changed = _with_person_fields(pruned, event)
    update = _append_change(changed, kind, key, record, event.event_id, event.unit,
                            event.published_at)
    changed["seen"][event.event_id] = _seen_entry(update["version"], update["version"], partition,
                                                 offset, event.published_at, index)
    return Outcome(APPLIED, changed, [update])


def apply_tick(
    archive: Archive | None, tick: MaintenanceTick, *, partition: int, offset: int,
    horizon_ms: int, index: int = 0,
) -> Outcome:
    """Expire disclosures due by the tick's date and prune dedup state older than the horizon."""
    if archive is None:
        return Outcome(NOTHING, None)
    message_id = f"tick@{partition}:{offset}" + (f":{index}" if index else "")
    seen = archive["seen"].get(message_id)
    if seen is not None:
        return Outcome(REPLAY, None, replay_versions=(seen[0], seen[1]))
    as_of = date.fromisoformat(tick.as_of)
    as_of_ms = china_midnight_ms(as_of)
    changed = _prune_seen(archive, as_of_ms - horizon_ms)
    due = sorted(
        (rec["disclosure_end"], key)
        for key, rec in changed["records"].items()
        if rec["public"] and rec["disclosure_end"] and date.fromisoformat(rec["disclosure_end"])
        <= as_of
    )
    if not due:
        return Outcome(NOTHING, changed if changed is not archive else None)
    if changed is archive:
        changed = _copy(archive)
    updates = []
    for end, key in due:
        current = changed["records"][key]
        record = dict(current, public=False, record_version=current["record_version"] + 1)
        at = china_midnight_ms(date.fromisoformat(end))
        updates.append(_append_change(changed, DISCLOSURE_EXPIRED, key, record, None,
                                      current["unit"], at))
    changed["seen"][message_id] = [updates[0]["version"], updates[-1]["version"], partition,
                                   offset, as_of_ms]
    return Outcome(APPLIED, changed, updates)


# -- internals ---------------------------------------------------------------------------------

def _seen_entry(first: int, last: int, partition: int, offset: int, at_ms: int,
                index: int) -> list[int]:
    """[first version, last version, partition, offset, logical ms(, index within a pack)]."""
    entry = [first, last, partition, offset, at_ms]
    return [*entry, index] if index else entry


def _index(seen: list[int]) -> int:
    return seen[5] if len(seen) > 5 else 0


def _copy(archive: Archive) -> Archive:
    copied = dict(archive)
    copied["records"] = dict(archive["records"])
    copied["history"] = list(archive["history"])
    copied["seen"] = dict(archive["seen"])
    copied["groups"] = list(archive["groups"])
    return copied


def _prune_seen(archive: Archive, older_than_ms: int) -> Archive:
    stale = [k for k, v in archive["seen"].items() if v[4] < older_than_ms]
    if not stale:
        return archive
    pruned = _copy(archive)
    for key in stale:
        del pruned["seen"][key]
    return pruned


def _with_person_fields(archive: Archive, event: EnrichedEvent) -> Archive:
    changed = _copy(archive)
    changed.update(masked_id=event.masked_id, name=event.name, birth_date=event.birth_date,
                   sex=event.sex, division_code=event.division_code)
    if event.group not in changed["groups"]:
        changed["groups"] = sorted([*changed["groups"], event.group])
    return changed


def _snapshot_from_event(event: EnrichedEvent, current: dict[str, Any] | None) -> dict[str, Any]:
    as_of = china_date(event.published_at)
    public = bool(
        event.disclosure_start and event.disclosure_end
        and date.fromisoformat(event.disclosure_start) <= as_of
        < date.fromisoformat(event.disclosure_end)
    )
    return {
        "unit": event.unit, "record_id": event.record_id,
        "record_version": (current["record_version"] if current else 0) + 1,
        "group": event.group, "category": event.category, "severity": event.severity,
        "domain": event.domain, "occurred_at": event.occurred_at,
        "published_at": event.published_at, "disclosure_start": event.disclosure_start,
        "disclosure_end": event.disclosure_end, "public": public, "retracted": False,
        "content_json": event.content_json, "content_hash": event.content_hash,
    }


def _append_change(
    archive: Archive, kind: str, key: str, record: dict[str, Any], event_id: str | None,
    unit: str, at_ms: int,
) -> Update:
    """Put `record` in the archive, advance version and chain, and return the update."""
    archive["records"][key] = record
    version = archive["version"] + 1
    update = build_update(archive, version, kind, record, event_id, unit, at_ms)
    archive["version"] = version
    archive["head"] = update["hash"]
    archive["history"].append([version, kind, key, record["record_version"], event_id,
                               update["hash"]])
    if archive["first_update_ms"] is None:
        archive["first_update_ms"] = at_ms
    archive["last_update_ms"] = max(at_ms, archive["last_update_ms"] or at_ms)
    ends = [r["disclosure_end"] for r in archive["records"].values()
            if r["public"] and r["disclosure_end"]]
    archive["next_expiry"] = min(ends) if ends else None
    return update


def build_update(
    archive: Archive, version: int, kind: str, record: dict[str, Any], event_id: str | None,
    unit: str, at_ms: int,
) -> Update:
    """The ArchiveUpdate datum (as fastavro reads it back), hashed onto the chain."""
    update: Update = {
        "person_key": archive["person_key"], "masked_id": archive["masked_id"],
        "name": archive["name"], "birth_date": date.fromisoformat(archive["birth_date"]),
        "sex": archive["sex"], "division_code": archive["division_code"],
        "groups": list(archive["groups"]), "version": version,
        "previous_hash": archive["head"], "hash": "", "event_id": event_id, "unit": unit,
        "updated_at": ms_to_datetime(at_ms),
        "change": {"kind": kind, "record": _record_datum(record)},
    }
    update["hash"] = update_hash(archive["head"], update)
    return update


def _record_datum(record: dict[str, Any]) -> dict[str, Any]:
    start, end = record["disclosure_start"], record["disclosure_end"]
    return {
        "unit": record["unit"], "record_id": record["record_id"],
        "record_version": record["record_version"], "group": record["group"],
        "category": record["category"], "severity": record["severity"],
        "domain": record["domain"], "occurred_at": ms_to_datetime(record["occurred_at"]),
        "published_at": ms_to_datetime(record["published_at"]),
        "disclosure_start": date.fromisoformat(start) if start else None,
        "disclosure_end": date.fromisoformat(end) if end else None,
        "public": record["public"], "retracted": record["retracted"],
        "content_json": record["content_json"],
    }
