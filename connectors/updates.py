"""Consumed archive updates, decoded and checked once per batch (before any retry).

An update that can never be applied (it does not decode as an ArchiveUpdate, or its hash does
not match its own content) is marked rejected with a reason code; the sinks dead-letter it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connectors.errors import TransientError
from creditbus.archive.chain import hashed_bytes, link_hash
from creditbus.contract.wire import Wire, WireError

ARCHIVE_UPDATE = "cn.gov.ganzhou.creditbus.ArchiveUpdate"

NOT_AN_UPDATE = "SINK_NOT_AN_ARCHIVE_UPDATE"
HASH_MISMATCH = "SINK_HASH_MISMATCH"


@dataclass(frozen=True, slots=True)
class Incoming:
    """A consumed message, independent of the Kafka client."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(slots=True)
class Prepared:
    """An incoming message with its decoded update, or the reason it is rejected."""

    msg: Incoming
    update: dict[str, Any] | None = None
    body: str | None = None  # creditbus.archive.chain.hashed_bytes(update), as text
    doc: dict[str, Any] | None = None  # the body parsed (canonical JSON forms of the values)
    reason: str | None = None
    message: str = ""

    @property
    def rejected(self) -> bool:
        return self.reason is not None

    @property
    def person_key(self) -> str:
        assert self.update is not None
        return str(self.update["person_key"])

    @property
    def version(self) -> int:
        assert self.update is not None
        return int(self.update["version"])


def prepare(wire: Wire, msg: Incoming) -> Prepared:
    """Decode and check one message; raises TransientError when decoding may work later."""
    try:
        decoded = wire.decode(msg.value or b"")
    except WireError as exc:
        if exc.retriable:
            raise TransientError(str(exc)) from exc
        return Prepared(msg, reason=exc.code, message=exc.message)
    if decoded.record_name != ARCHIVE_UPDATE:
        return Prepared(msg, reason=NOT_AN_UPDATE,
                        message=f"a {decoded.record_name} on the updates topic")
    update = decoded.datum
    body = hashed_bytes(update)
    if link_hash(update["previous_hash"], body) != update["hash"]:
        return Prepared(msg, update=update, reason=HASH_MISMATCH,
                        message=f"hash of version {update['version']} does not match its content")
    text = body.decode("utf-8")
    return Prepared(msg, update=update, body=text, doc=json.loads(text))


def prepare_all(wire: Wire, messages: list[Incoming]) -> list[Prepared]:
    return [prepare(wire, m) for m in messages]
