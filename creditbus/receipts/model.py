"""A receipt (回执): the one outcome of one inbound message, and its bytes on the receipts topic.

Produced by the stage that decides the outcome, in the same flush as that stage's other
output, so a receipt exists exactly when its outcome was committed: the edge stage for
messages it rejects, the archive agent for accepted, duplicate and rejected events. Its content
is deterministic (no wall clock: `decided_at` is the inbound record's Kafka timestamp), so a
message processed again after a crash yields the same bytes under the same key.

On the topic `<prefix>.receipts.<unit>` a receipt is one message: the key is the event id
(the inbound position `<topic>@<partition>:<offset>` for a message that could not be decoded),
the value a JSON object with sorted keys (docs/receipts.md says why JSON, not Avro).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import orjson

ACCEPTED: Final = "accepted"
DUPLICATE: Final = "duplicate"
REJECTED: Final = "rejected"
OUTCOMES: Final = (ACCEPTED, DUPLICATE, REJECTED)
OUTCOME_NAMES_ZH: Final[dict[str, str]] = {ACCEPTED: "已接收", DUPLICATE: "重复", REJECTED: "退回"}

DUPLICATE_EXACT: Final = "DUPLICATE_EXACT"
DUPLICATE_CONTENT: Final = "DUPLICATE_CONTENT"

ROW_HEADER: Final = "creditbus.source.row"
"""The Kafka header in which `creditbus publish` names a message's import row (ASCII digits)."""

ID_MAX: Final = 128
"""Longest event or record id a receipt repeats (a hostile message may carry anything)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    event_id: str  # "" when the message could not be decoded
    unit: str
    record_id: str | None
    source_row: int | None  # the import row, when the event came from a spreadsheet
    outcome: str  # accepted | duplicate | rejected
    reason: str | None  # reason code (rejected, duplicate), else None
    message: str  # Chinese
    field: str | None  # the offending field's dotted path (rejected), else None
    value: str | None  # its value, masked where personal
    version: int | None  # the person's archive version the event made (accepted)
    topic: str  # the inbound message: topic, partition, offset
    partition: int
    offset: int
    decided_at: int  # ms: the inbound record's timestamp

    @property
    def key(self) -> bytes:
        return receipt_key(self.event_id, self.topic, self.partition, self.offset)

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Raises ValueError for anything that is not a receipt; unknown keys are ignored."""
        body = orjson.loads(data)
        if not isinstance(body, dict):
            raise ValueError("a receipt is a JSON object")
        try:
            return cls(**{name: body[name] for name in _FIELDS})
        except KeyError as exc:
            raise ValueError(f"a receipt without {exc.args[0]}") from None


_FIELDS: Final = tuple(Receipt.__dataclass_fields__)


def receipt_key(event_id: str, topic: str, partition: int, offset: int) -> bytes:
    return (event_id or f"{topic}@{partition}:{offset}").encode()


def encode_receipt(fields: dict[str, Any]) -> bytes:
    """The bytes of a receipt given as a dict of every field (the hot path's form: no object)."""
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


def row_of_headers(headers: list[tuple[str, bytes]] | None) -> int | None:
    """The import row a publisher named, or None (no header, or not a number)."""
    if not headers:
        return None
    for name, value in headers:
        if name == ROW_HEADER and value and value.isdigit() and len(value) < 10:
            return int(value)
    return None
