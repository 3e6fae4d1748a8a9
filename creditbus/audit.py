"""The audit record of an archive query, shared by the query service (writer) and
`creditbus audit` (reader).

One JSON record per query on the topic `creditbus.topics.audit_topic(prefix)`, allowed or not.
It says who asked (the token's name and role, never the token), when, about whom (the person
key, never the identity number), why (the stated purpose, identity numbers masked), and what
came of it (HTTP status, result, number of records returned).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from creditbus.contract.canonical import format_timestamp
from creditbus.identity import redact
from creditbus.kafka.reading import read_to_end

AUDIT_FORMAT = 1
PURPOSE_MAX_CHARS = 200

Result = Literal["allowed", "denied", "invalid", "not_found", "error"]
"""allowed: data returned (200); denied: no or bad credentials (401/403); invalid: bad request,
e.g. no purpose (400); not_found: no archive the caller may see (404); error: service fault."""

PersonKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Caller(BaseModel):
    """Who asked: the token's name and role (and unit), or nulls for an unknown token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    role: str | None = None
    unit: str | None = None


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    format: int = AUDIT_FORMAT
    audit_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    at: str = Field(default_factory=lambda: now_text())
    """UTC, ISO 8601 with milliseconds and Z."""
    service: str = "query"
    action: str
    """What was asked: `get` (by person key) or `lookup` (by identity number)."""
    caller: Caller = Caller()
    remote: str | None = None
    person_key: PersonKey | None = None
    purpose: str | None = None
    status: int
    result: Result
    reason: str | None = None
    """Machine-readable reason of a refusal, e.g. BAD_TOKEN, PURPOSE_REQUIRED."""
    records_returned: int = 0
    request_id: str | None = None

    @field_validator("purpose")
    @classmethod
    def _mask_purpose(cls, value: str | None) -> str | None:
        # Free text typed by the caller: it may name an identity number. An over-long purpose
        # (refused by the service) is kept up to the limit.
        return None if value is None else redact(value)[:PURPOSE_MAX_CHARS]

    def at_datetime(self) -> datetime:
        return datetime.fromisoformat(self.at)

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False,
                          sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> AuditRecord:
        return cls.model_validate_json(data)

    def kafka_key(self) -> bytes | None:
        return self.person_key.encode("ascii") if self.person_key else None


def now_text() -> str:
    now = datetime.now(UTC)
    return format_timestamp(now.replace(microsecond=now.microsecond // 1000 * 1000))


# -- reading the trail (`creditbus audit`, the portal's audit page) -------------------------

SEEK_SLACK = timedelta(minutes=1)
"""`since` seeks by message timestamp, which is the producer's clock; read a little earlier."""


def person_matches(wanted: str | None, key: str | None) -> bool:
    if not wanted:
        return True
    wanted = wanted.strip().lower()
    if key is None:
        return False
    return key == wanted or (len(wanted) >= 8 and key.startswith(wanted))


def read_audit(client_config: dict[str, Any], topic: str, *, since: datetime | None = None,
               person: str | None = None, timeout: float = 30.0) -> Iterator[AuditRecord]:
    """The audit records on `topic` (up to its end at the start of the call), filtered.

    `client_config`: bootstrap servers and authentication (`clientconf.confluent_config`).
    """
    since_ms = int((since - SEEK_SLACK).timestamp() * 1000) if since is not None else None
    for msg in read_to_end(client_config, topic, since_ms=since_ms, timeout=timeout,
                           client="creditbus-audit"):
        try:
            record = AuditRecord.from_bytes(msg.value() or b"")
        except ValidationError:
            continue  # not an audit record: skip, never fail the listing
        if since is not None and record.at_datetime() < since:
            continue
        if not person_matches(person, record.person_key):
            continue
        yield record
