"""An archive update, built once: the Avro datum, the canonical bytes its hash covers, the hash.

The chain's rule (creditbus.archive.chain) hashes the canonical JSON of the update as fastavro
decodes it, i.e. timestamps as UTC ISO text and dates as ISO text. Here that text is written
directly from the state's own forms (ms integers, ISO dates) in one orjson call, hashed once,
and carried in the message (`hashed_body`), so neither the worker nor the sink builds it again.
`tests/unit/test_update_build.py` proves it equals the reference built from the decoded datum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from creditbus.archive.chain import link_hash
from creditbus.archive.state import PersonState, RecordState
from creditbus.contract.canonical import canonical_json

_EPOCH = datetime(1970, 1, 1)


def ms_text(ms: int) -> str:
    """ms since the epoch in the canonical timestamp form (UTC, milliseconds, `Z`)."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True, slots=True)
class Update:
    datum: dict[str, Any]
    """ArchiveUpdate as the Avro writer takes it (ms integers, ISO dates, `hashed_body` set)."""
    body: bytes
    """The canonical JSON bytes the hash covers (the platform stores them per update)."""

    @property
    def version(self) -> int:
        return int(self.datum["version"])

    @property
    def hash(self) -> str:
        return str(self.datum["hash"])

    @property
    def kind(self) -> str:
        return str(self.datum["change"]["kind"])


def build_update(state: PersonState, version: int, kind: str, key: str, record: RecordState,
                 event_id: str | None, unit: str, at_ms: int) -> Update:
    """The update that takes `state` (at its current head) to `version` with `record` changed.
    """
    record_unit, _, record_id = key.partition("/")
    record_doc = {
        "category": record.category, "content_json": record.content_json,
        "disclosure_end": record.disclosure_end, "disclosure_start": record.disclosure_start,
        "domain": record.domain, "group": record.group,
        "occurred_at": ms_text(record.occurred_at), "public": record.public,
        "published_at": ms_text(record.published_at), "record_id": record_id,
        "record_version": record.record_version, "retracted": record.retracted,
        "severity": record.severity, "unit": record_unit,
    }
    if record.repair is not None:  # left out when null: updates without one hash as before
        number, day, authority, repair_event = record.repair
        record_doc["repair"] = {"authority": authority, "decision_date": day,
                                "decision_number": number, "event_id": repair_event}
    doc = {
        "birth_date": state.birth_date, "change": {"kind": kind, "record": record_doc},
        "division_code": state.division_code, "event_id": event_id,
        "groups": list(state.groups), "masked_id": state.masked_id, "name": state.name,
        "person_key": state.person_key, "sex": state.sex, "unit": unit,
        "updated_at": ms_text(at_ms), "version": version,
    }
    try:
        body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # what orjson spells otherwise: the reference rule decides
        body = canonical_json(doc)
    digest = link_hash(state.head, body)
    datum = dict(doc, previous_hash=state.head, hash=digest, hashed_body=body.decode(),
                 updated_at=at_ms)
    datum["change"] = {"kind": kind, "record": dict(
        record_doc, occurred_at=record.occurred_at, published_at=record.published_at)}
    return Update(datum, body)
