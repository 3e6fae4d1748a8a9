"""The ingest step: inbound bytes -> decoded, validated, enriched event, or a rejection.

Pure and synchronous, so the stream worker, the benchmark and the tests share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from creditbus.archive.event import EnrichedEvent
from creditbus.catalog.models import Catalog
from creditbus.contract.validation import EventRejected, validate_event
from creditbus.contract.wire import Wire, WireError
from creditbus.enrich import enrich
from creditbus.identity import redact
from creditbus.security.envelope import FieldProtectionError, open_event
from creditbus.topics import unit_of_raw_topic

CREDIT_EVENT = "cn.gov.ganzhou.creditbus.CreditEvent"
UNEXPECTED_SCHEMA = "UNEXPECTED_SCHEMA"


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str
    unit: str | None  # the unit of the topic, when known; for metrics


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
        self, raw: bytes | None, topic: str, partition: int, offset: int
    ) -> EnrichedEvent | Rejection:
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
                return Rejection(exc.code, redact(str(exc)), topic_unit)
        try:
            valid = validate_event(datum, self.catalog, topic_unit=topic_unit,
                                   encoded_size=len(raw or b""), decoded=True)
        except EventRejected as exc:
            return Rejection(exc.code, redact(str(exc.message)), topic_unit)
        return enrich(datum, valid.resident, self.catalog, self.secret, topic=topic,
                      partition=partition, offset=offset)
