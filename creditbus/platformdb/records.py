"""The platform rows as a projection of an update's log body.

The body stored in `cb_update_log` is the canonical JSON the hash chain covers
(`creditbus.archive.chain.hashed_bytes`). The sink derives the person and record rows from that
same parsed body, and `verify` replays the stored bodies through the same projection, so what
the sink writes and what verify expects cannot drift apart. Values are in their canonical JSON
forms: timestamps as UTC ISO text with milliseconds and `Z`, dates as `YYYY-MM-DD`, booleans as
bool; the database back ends convert to and from their column types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PERSON_COLUMNS = ("person_key", "masked_id", "name", "birth_date", "sex", "division_code",
                  "groups", "archive_version", "updated_at", "chain_head")
RECORD_COLUMNS = ("person_key", "unit", "record_id", "record_version", "group_code", "category",
                  "severity", "domain", "occurred_at", "published_at", "disclosure_start",
                  "disclosure_end", "is_public", "is_retracted", "content_json",
                  "person_version", "is_repaired", "repair_decision_number", "repair_date",
                  "repair_authority")
LOG_COLUMNS = ("person_key", "version", "previous_hash", "hash", "body", "event_id", "kind",
               "committed_at")
OFFSET_COLUMNS = ("consumer_group", "topic", "partition", "next_offset", "updated_at")

Row = tuple[Any, ...]


def groups_text(groups: list[str]) -> str:
    """The groups as canonical JSON text (for a list of strings, plain compact JSON)."""
    return json.dumps(list(groups), ensure_ascii=False, separators=(",", ":"))


def person_row(doc: Mapping[str, Any], hash_: str) -> Row:
    """cb_person after the update whose body is `doc` and whose hash is `hash_`."""
    return (doc["person_key"], doc["masked_id"], doc["name"], doc["birth_date"], doc["sex"],
            doc["division_code"], groups_text(doc["groups"]), doc["version"], doc["updated_at"],
            hash_)


def record_key(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    rec = doc["change"]["record"]
    return doc["person_key"], rec["unit"], rec["record_id"]


def record_row(doc: Mapping[str, Any]) -> Row:
    """cb_record of the record the update changed, as the update leaves it. A body without
    `repair` (every update before ArchiveUpdate version 3, and every record not repaired) is a
    record not repaired."""
    rec = doc["change"]["record"]
    repair = rec.get("repair")
    return (doc["person_key"], rec["unit"], rec["record_id"], rec["record_version"],
            rec["group"], rec["category"], rec["severity"], rec["domain"], rec["occurred_at"],
            rec["published_at"], rec["disclosure_start"], rec["disclosure_end"],
            bool(rec["public"]), bool(rec["retracted"]), rec["content_json"], doc["version"],
            repair is not None, repair["decision_number"] if repair else None,
            repair["decision_date"] if repair else None, repair["authority"] if repair else None)


def log_row(doc: Mapping[str, Any], body: str, previous_hash: str, hash_: str,
            committed_at: str) -> Row:
    return (doc["person_key"], doc["version"], previous_hash, hash_, body, doc["event_id"],
            doc["change"]["kind"], committed_at)


def as_dict(columns: tuple[str, ...], row: Row) -> dict[str, Any]:
    return dict(zip(columns, row, strict=True))
