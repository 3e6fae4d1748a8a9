"""The ingest step: inbound bytes -> decoded, validated, enriched event, or a rejection.

Pure and synchronous, so the stream worker, the benchmark and the tests share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from creditbus.archive.event import EnrichedEvent
from creditbus.catalog.models import Catalog
from creditbus.constants import CREDIT_EVENT
from creditbus.contract.validation import EventRejected, validate_event
from creditbus.contract.wire import Wire, WireError
from creditbus.enrich import enrich
from creditbus.identity import redact
from creditbus.receipts.texts import masked_value
from creditbus.security.envelope import FieldProtectionError, open_event
from creditbus.topics import unit_of_raw_topic

UNEXPECTED_SCHEMA = "UNEXPECTED_SCHEMA"


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str
    unit: str | None  # the unit of the topic, when known; for metrics
    event_id: str | None = None  # what the receipt is keyed by, when the event decoded
    record_id: str | None = None
    field: str | None = None  # the offending field's dotted path
    value: str | None = None  # its value for the receipt, masked (`receipts.masked_value`)


class Ingestor:
    def __init__(self, catalog: Catalog, wire: Wire, secret: bytes, topic_prefix: str,
                 private_keys: Mapping[str, Any] | None = None) -> None:
        self.catalog = catalog
        self.wire = wire
        self.secret = secret
        self.prefix = topic_prefix
        self.private_keys = dict(private_keys or {})
        """Field-protection keys by key id (old ones kept, so rotation loses nothing)."""

    def topic_unit(self, topic: str) -> str | None:
        return unit_of_raw_topic(self.prefix, topic)

    def process(
        self, raw: bytes | None, topic: str, partition: int, offset: int,
        timestamp: int = 0, row: int | None = None,
    ) -> EnrichedEvent | Rejection:
        """`timestamp` (the inbound record's, ms) and `row` (the import row the publisher
        named) are carried to the receipt (docs/receipts.md)."""
        topic_unit = self.topic_unit(topic)
        try:
            decoded = self.wire.decode(raw or b"")
        except WireError as exc:
            if exc.retriable:  # the registry is down: retry later, never dead-letter
                raise
            return Rejection(exc.code, exc.message, topic_unit)
        if decoded.record_name != CREDIT_EVENT:
            return Rejection(UNEXPECTED_SCHEMA, f"a {decoded.record_name} on an inbound topic",
                             topic_unit)
        datum = decoded.datum
        if datum["person"].get("sealed") is not None:
            try:
                datum = open_event(datum, self.private_keys)
            except FieldProtectionError as exc:
                return Rejection(exc.code, redact(str(exc)), topic_unit,
                                 *_identified(datum), field="person.sealed")
        try:
            valid = validate_event(datum, self.catalog, topic_unit=topic_unit,
                                   encoded_size=len(raw or b""), decoded=True)
        except EventRejected as exc:
            return Rejection(exc.code, redact(str(exc.message)), topic_unit, *_identified(datum),
                             field=exc.field, value=masked_value(exc.field, datum))
        return enrich(datum, valid.resident, self.catalog, self.secret, topic=topic,
                      partition=partition, offset=offset, timestamp=timestamp, row=row)


def _identified(datum: Any) -> tuple[str | None, str | None]:
    """(event id, record id) of a decoded datum that may break the contract."""
    if not isinstance(datum, Mapping):
        return None, None
    event_id, record_id = datum.get("event_id"), datum.get("record_id")
    return (event_id if isinstance(event_id, str) and event_id else None,
            record_id if isinstance(record_id, str) and record_id else None)
