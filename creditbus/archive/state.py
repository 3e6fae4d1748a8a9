"""What the archive agent keeps per person: small, typed, bounded.

Only what processing needs is kept: the person's fields, each record's current snapshot (the
last one is needed to emit a retraction or an expiry of it; a retracted record keeps only its
version), the chain head and the dedup window. The history of changes lives on the platform
(its update log), not here. So a person's state is bounded by the number of its current records
and by the events of the dedup horizon.

Encoded as one orjson array per person (fields by position, `FORMAT` first). A value in the
format before it (a JSON object with `history` and `recent`) is migrated when it is read.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from creditbus.contract.canonical import GENESIS_HASH

FORMAT = 2
"""The encoding's version: the first element of every stored value."""


@dataclass(slots=True)
class RecordState:
    """A record as the archive holds it now (the snapshot its next update starts from)."""

    record_version: int
    retracted: bool
    public: bool
    content_hash: str  # what content dedup compares (the enriched event's content hash)
    group: str
    category: str
    severity: str | None
    domain: str | None
    occurred_at: int  # ms since the epoch
    published_at: int  # ms since the epoch
    disclosure_start: str | None  # ISO date
    disclosure_end: str | None  # ISO date, exclusive
    content_json: str  # "" once retracted: a tombstone needs only its version
    repair: list[str] | None = None
    """Once repaired (信用修复): [decision number, decision date (ISO), deciding unit, event id]
    (creditbus.archive.repair); None otherwise."""

    def encode(self) -> list[Any]:
        fields = [self.record_version, self.retracted, self.public, self.content_hash,
                  self.group, self.category, self.severity, self.domain, self.occurred_at,
                  self.published_at, self.disclosure_start, self.disclosure_end,
                  self.content_json]
        if self.repair is not None:  # a record never repaired keeps the encoding it had
            fields.append(self.repair)
        return fields


@dataclass(slots=True)
class Seen:
    """A message inside the dedup horizon: where it came from and the version it made.

    For an event the place is its inbound position (topic, partition, offset): processing the
    same inbound message again, whichever stage repeats it after a crash, is a replay, while
    the same event id from another inbound message is an exact duplicate.
    """

    version: int  # the archive version its (first) update made
    topic_tag: int  # source_tag(inbound topic); 0 for maintenance ticks
    partition: int
    offset: int
    at_ms: int  # logical time, for pruning at the horizon

    def encode(self) -> list[int]:
        return [self.version, self.topic_tag, self.partition, self.offset, self.at_ms]

    def same_place(self, topic_tag: int, partition: int, offset: int) -> bool:
        return (self.topic_tag, self.partition, self.offset) == (topic_tag, partition, offset)


@dataclass(slots=True)
class PersonState:
    person_key: str
    masked_id: str
    name: str
    birth_date: str  # ISO date
    sex: str
    division_code: str
    groups: list[str] = field(default_factory=list)
    version: int = 0
    head: str = GENESIS_HASH
    next_expiry: str | None = None  # the earliest disclosure end among public records
    records: dict[str, RecordState] = field(default_factory=dict)  # "<unit>/<record id>"
    seen: dict[str, Seen] = field(default_factory=dict)  # seen_key(message id) -> Seen
    marks: dict[str, int] = field(default_factory=dict)
    """place_key(inbound topic tag, partition) -> the highest offset of this person's messages
    decided from that inbound partition, whatever the outcome (creditbus.archive.person)."""

    def current_records(self) -> dict[str, RecordState]:
        return {k: r for k, r in self.records.items() if not r.retracted}


def seen_key(message_id: str) -> str:
    """A fixed-size dedup key for a message id (event ids are free text of up to 128 chars)."""
    return hashlib.blake2b(message_id.encode(), digest_size=12).hexdigest()


def place_key(topic_tag: int, partition: int) -> str:
    """The key of an inbound partition in `PersonState.marks`."""
    return f"{topic_tag}:{partition}"


def source_tag(topic: str) -> int:
    """A small stable number for an inbound topic name (CRC-32)."""
    return zlib.crc32(topic.encode())


def encode_state(state: PersonState) -> bytes:
    return orjson.dumps([
        FORMAT, state.masked_id, state.name, state.birth_date, state.sex, state.division_code,
        state.groups, state.version, state.head, state.next_expiry,
        {k: r.encode() for k, r in state.records.items()},
        {k: s.encode() for k, s in state.seen.items()},
        *([state.marks] if state.marks else []),
    ])


def decode_state(person_key: str, data: bytes) -> PersonState:
    """The state stored under `person_key`, in this format or migrated from the one before."""
    body = orjson.loads(data)
    if isinstance(body, dict):
        return _from_format_1(body)
    if not isinstance(body, list) or not body or body[0] != FORMAT:
        raise ValueError(f"unknown archive state format for person {person_key[:12]}")
    (_fmt, masked_id, name, birth_date, sex, division_code, groups, version, head, next_expiry,
     records, seen, *marks) = body  # a state stored before marks existed has none
    return PersonState(
        person_key, masked_id, name, birth_date, sex, division_code, groups, version, head,
        next_expiry, {k: RecordState(*r) for k, r in records.items()},
        {k: Seen(*s) for k, s in seen.items()}, marks[0] if marks else {})


def _from_format_1(old: dict[str, Any]) -> PersonState:
    """The JSON-object archive of the first release: history and replay buffer are dropped
    (the platform's update log has the history), records and dedup entries kept."""
    records = {}
    for key, r in old["records"].items():
        records[key] = RecordState(
            r["record_version"], r["retracted"], r["public"], r["content_hash"], r["group"],
            r["category"], r["severity"], r["domain"], r["occurred_at"], r["published_at"],
            r["disclosure_start"], r["disclosure_end"],
            "" if r["retracted"] else r["content_json"])
    seen = {}
    for message_id, e in old["seen"].items():
        # [first version, last version, by-person partition, offset, logical ms(, index)]: the
        # inbound place is unknown, so a repetition counts as an exact duplicate (no output,
        # like a replay)
        seen[seen_key(message_id)] = Seen(e[0], 0, -1, -1, e[4])
    return PersonState(
        old["person_key"], old["masked_id"], old["name"], old["birth_date"], old["sex"],
        old["division_code"], list(old["groups"]), old["version"], old["head"],
        old.get("next_expiry"), records, seen)
