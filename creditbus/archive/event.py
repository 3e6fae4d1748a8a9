"""Messages on the internal by-person topic: enriched events and maintenance ticks.

They are keyed by person key and carry no clear identity number (only the masked form), so
everything past the ingest stage is free of it. JSON with sorted keys keeps them readable for
operators; this topic is internal to the bus, not part of the published contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class EnrichedEvent:
    """A validated credit event with everything the archive needs, derived once at ingest."""

    event_id: str
    unit: str
    action: str  # UPSERT | RETRACT | REPAIR
    record_id: str
    group: str
    category: str
    severity: str | None  # catalog code: minor | general | serious
    domain: str | None
    published_at: int  # ms since the epoch
    occurred_at: int  # ms since the epoch
    person_key: str
    masked_id: str
    name: str
    birth_date: str  # ISO date
    sex: str  # M | F
    division_code: str
    content_json: str  # canonical JSON of the typed content (RecordSnapshot.content_json)
    content_hash: str  # what makes two publications of a record the same (content dedup)
    disclosure_start: str | None  # ISO date
    disclosure_end: str | None  # ISO date, exclusive
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp: int = 0
    """The inbound record's Kafka timestamp (ms): a receipt's `decided_at`, the same on a replay."""
    source_row: int | None = None
    """The import row the publisher named in a header (docs/receipts.md), else None."""

    def to_bytes(self) -> bytes:
        body = {name: getattr(self, name) for name in _EVENT_FIELDS}
        body["type"] = "event"
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)

    def to_row(self) -> list[Any]:
        """The fields by position, as a pack carries them (`EVENT_FIELDS` names them)."""
        return [getattr(self, name) for name in _EVENT_FIELDS]


@dataclass(frozen=True, slots=True)
class MaintenanceTick:
    """Asks the archive agent to expire disclosures due by `as_of` and prune old dedup state."""

    person_key: str
    as_of: str  # ISO date

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_row())

    def to_row(self) -> dict[str, str]:
        return {"type": "tick", "person_key": self.person_key, "as_of": self.as_of}


_EVENT_FIELDS = tuple(f.name for f in fields(EnrichedEvent))
EVENT_FIELDS = list(_EVENT_FIELDS)


Internal = EnrichedEvent | MaintenanceTick

PACK_MAX_BYTES = 512 * 1024
"""Largest pack body: well under Kafka's default 1 MiB message limit."""


def pack_internal(items: Sequence[Internal], max_bytes: int = PACK_MAX_BYTES) -> list[bytes]:
    """Messages of one by-person partition packed into as few Kafka messages as fit.

    Consuming and producing one Kafka message costs far more than applying the event it
    carries, so the edge stage sends each partition's share of a batch as packs. A pack names
    the event fields once (`fields`) and carries each event as an array of values in that
    order (a tick as an object), which is both smaller and faster to read than an object per
    event. Items keep their order; one item larger than `max_bytes` still gets a pack of its own.
    """
    packs: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for item in items:
        data = orjson.dumps(item.to_row())
        if chunk and size + len(data) > max_bytes:
            packs.append(_join(chunk))
            chunk, size = [], 0
        chunk.append(data)
        size += len(data) + 1
    if chunk:
        packs.append(_join(chunk))
    return packs


_PACK_HEAD = b'{"fields":' + orjson.dumps(EVENT_FIELDS) + b',"items":['


def _join(chunk: list[bytes]) -> bytes:
    return _PACK_HEAD + b",".join(chunk) + b'],"type":"pack"}'


def parse_internal(data: bytes) -> Internal:
    """Decode a single by-person message; raises ValueError on anything else."""
    items = parse_internal_all(data)
    if len(items) != 1:
        raise ValueError(f"expected one internal message, found {len(items)}")
    return items[0]


def parse_internal_all(data: bytes) -> list[Internal]:
    """Decode a by-person message, single or pack, in order; raises ValueError on anything else.
    """
    body = orjson.loads(data)
    if not isinstance(body, dict):
        raise ValueError("an internal message is a JSON object")
    if body.get("type") == "pack":
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise ValueError("a pack holds a non-empty list of items")
        names = body.get("fields", EVENT_FIELDS)
        if names == EVENT_FIELDS:
            return [EnrichedEvent(*item) if type(item) is list else _from_body(item)
                    for item in items]
        return [_from_body(dict(zip(names, item, strict=True), type="event"))
                if type(item) is list else _from_body(item) for item in items]
    return [_from_body(body)]


def _from_body(body: Any) -> Internal:
    """One internal message from a freshly decoded JSON object (which it consumes)."""
    if not isinstance(body, dict):
        raise ValueError("an internal message is a JSON object")
    kind = body.pop("type", None)
    if kind == "event":
        return EnrichedEvent(**body)
    if kind == "tick":
        return MaintenanceTick(person_key=body["person_key"], as_of=body["as_of"])
    raise ValueError(f"unknown internal message type {kind!r}")
