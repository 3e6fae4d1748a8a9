"""What the console shows of a dead letter: headers and decoded content, personal data masked.

Dead letters already hold identity numbers masked (the writers mask in place), but what is
shown is masked again here, names included (first character kept), so that a terminal, an
export file or a ticket never carries more than the operator needs: the unit, the record id,
the reason and where the original message is.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from creditbus.archive.event import EnrichedEvent, MaintenanceTick, parse_internal_all
from creditbus.contract.jsonform import to_json
from creditbus.contract.wire import Wire, WireError
from creditbus.deadletter import mask_ids_in_bytes
from creditbus.deadletters.records import DeadLetter
from creditbus.identity import mask_id, redact
from creditbus.publish.messages import mask_name

ID_FIELDS = frozenset({"id_number", "masked_id"})
NAME_FIELDS = frozenset({"name"})
PREVIEW_BYTES = 48


def masked(value: Any, field: str | None = None) -> Any:
    """A JSON-ready copy of `value` with identity numbers and names masked, bytes summarised."""
    if isinstance(value, Mapping):
        return {str(k): masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, field) for v in value]
    if isinstance(value, bytes):
        return f"({len(value)} bytes)"
    if isinstance(value, str):
        if field in ID_FIELDS and value != "[sealed]":
            return mask_id(value)
        if field in NAME_FIELDS and value != "[sealed]":
            return mask_name(value)
        return redact(value)
    return value


def decode_content(letter: DeadLetter, wire: Wire) -> tuple[str, Any]:
    """(kind, masked content) of the bytes a dead letter keeps: an Avro record of the contract
    (`avro:<record>`), the worker's internal events (`internal`), or `undecodable` with a
    short masked preview."""
    try:
        decoded = wire.decode(letter.value)
    except WireError as exc:
        problem = exc.code
    else:
        schema = wire.store.current(decoded.record_name)
        return f"avro:{decoded.record_name.rsplit('.', 1)[-1]}", masked(to_json(schema,
                                                                                 decoded.datum))
    try:
        items = parse_internal_all(letter.value)
    except (ValueError, TypeError, KeyError):
        preview = mask_ids_in_bytes(letter.value[:PREVIEW_BYTES])
        return "undecodable", {"problem": problem, "bytes": len(letter.value),
                               "preview_base64": base64.b64encode(preview).decode()}
    return "internal", [masked(_internal_dict(item)) for item in items]


def _internal_dict(item: EnrichedEvent | MaintenanceTick) -> dict[str, Any]:
    if isinstance(item, MaintenanceTick):
        return item.to_row()
    body = {name: getattr(item, name) for name in EnrichedEvent.__dataclass_fields__}
    body["person_key"] = item.person_key[:16]
    return body


def summary(letter: DeadLetter, prefix: str) -> dict[str, Any]:
    """The headers of a dead letter as the console lists them (no content)."""
    source = letter.source
    return {
        "id": letter.id(prefix),
        "failed_at": letter.failed_at().isoformat(timespec="seconds"),
        "stage": letter.stage,
        "reason": letter.reason,
        "unit": letter.unit,
        "source": f"{source[0]}:{source[1]}:{source[2]}" if source else None,
        "message": redact(letter.message),
        "extra": {k: redact(v) for k, v in letter.headers.items()
                  if k not in _LISTED_HEADERS},
    }


_LISTED_HEADERS = frozenset({"stage", "reason", "message", "source.topic", "source.partition",
                             "source.offset", "source.unit", "failed.at.ms"})


def detail(letter: DeadLetter, prefix: str, wire: Wire) -> dict[str, Any]:
    """Everything `show` and `export` give: the summary, the key and the decoded content."""
    kind, content = decode_content(letter, wire)
    key = letter.key.decode("utf-8", errors="replace") if letter.key else None
    return {**summary(letter, prefix), "key": redact(key) if key is not None else None,
            "bytes": len(letter.value), "content_kind": kind, "content": content}
