"""Messages on the internal by-person topic: enriched events and maintenance ticks.

They are keyed by person key and carry no clear identity number (only the masked form), so
everything past the ingest stage is free of it. JSON with sorted keys keeps them readable for
operators; this topic is internal to the bus, not part of the published contract.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class EnrichedEvent:
    """A validated credit event with everything the archive needs, derived once at ingest."""

    event_id: str
    unit: str
    action: str  # UPSERT | RETRACT
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

    def to_bytes(self) -> bytes:
        body = {name: getattr(self, name) for name in _EVENT_FIELDS}
        body["type"] = "event"
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class MaintenanceTick:
    """Asks the archive agent to expire disclosures due by `as_of` and prune old dedup state."""

    person_key: str
    as_of: str  # ISO date

    def to_bytes(self) -> bytes:
        return orjson.dumps({"type": "tick", "person_key": self.person_key,
                             "as_of": self.as_of})


_EVENT_FIELDS = tuple(f.name for f in fields(EnrichedEvent))


def parse_internal(data: bytes) -> EnrichedEvent | MaintenanceTick:
    """Decode a by-person message; raises ValueError on anything else."""
    body: dict[str, Any] = orjson.loads(data)
    kind = body.pop("type", None)
    if kind == "event":
        return EnrichedEvent(**body)
    if kind == "tick":
        return MaintenanceTick(person_key=body["person_key"], as_of=body["as_of"])
    raise ValueError(f"unknown internal message type {kind!r}")
