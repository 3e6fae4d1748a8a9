"""Receipts as the stages build them: `(key, value)` ready to send, without an object between
(the archive agent builds one per event; a dict and orjson cost about 2 µs)."""

from __future__ import annotations

from typing import Any

from creditbus.archive.event import EnrichedEvent
from creditbus.identity import redact
from creditbus.receipts.model import (
    ACCEPTED,
    DUPLICATE,
    DUPLICATE_CONTENT,
    DUPLICATE_EXACT,
    ID_MAX,
    REJECTED,
    encode_receipt,
    receipt_key,
)
from creditbus.receipts.texts import (
    DUPLICATE_CONTENT_TEXT,
    DUPLICATE_EXACT_TEXT,
    accepted_text,
    rejection_text,
)

Built = tuple[bytes, bytes]
"""(Kafka key, value) of a receipt."""


def _of_event(event: EnrichedEvent, outcome: str, reason: str | None, message: str,
              version: int | None, field: str | None = None,
              value: str | None = None) -> Built:
    body: dict[str, Any] = {
        "event_id": event.event_id, "unit": event.unit, "record_id": event.record_id,
        "source_row": event.source_row, "outcome": outcome, "reason": reason,
        "message": message, "field": field, "value": value, "version": version,
        "topic": event.source_topic, "partition": event.source_partition,
        "offset": event.source_offset, "decided_at": event.source_timestamp,
    }
    return event.event_id.encode(), encode_receipt(body)


def accepted(event: EnrichedEvent, version: int) -> Built:
    return _of_event(event, ACCEPTED, None, accepted_text(version), version)


def duplicate(event: EnrichedEvent, *, exact: bool) -> Built:
    if exact:
        return _of_event(event, DUPLICATE, DUPLICATE_EXACT, DUPLICATE_EXACT_TEXT, None)
    return _of_event(event, DUPLICATE, DUPLICATE_CONTENT, DUPLICATE_CONTENT_TEXT, None)


def rejected_event(event: EnrichedEvent, reason: str, field: str | None,
                   value: str | None) -> Built:
    """An event the archive refused (e.g. RETRACT_UNKNOWN_RECORD); `value` already masked."""
    return _of_event(event, REJECTED, reason, rejection_text(reason, field, value), None,
                     field, value)


def rejected_message(*, unit: str, topic: str, partition: int, offset: int, timestamp: int,
                     row: int | None, reason: str, event_id: str | None,
                     record_id: str | None, field: str | None, value: str | None) -> Built:
    """An inbound message the edge stage refused (undecodable, or against the contract)."""
    event_id = redact(event_id)[:ID_MAX] if event_id else ""
    body: dict[str, Any] = {
        "event_id": event_id, "unit": unit,
        "record_id": redact(record_id)[:ID_MAX] if record_id else None,
        "source_row": row, "outcome": REJECTED, "reason": reason,
        "message": rejection_text(reason, field, value), "field": field, "value": value,
        "version": None, "topic": topic, "partition": partition, "offset": offset,
        "decided_at": timestamp,
    }
    return receipt_key(event_id, topic, partition, offset), encode_receipt(body)
