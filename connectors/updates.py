"""Consumed archive updates, decoded and checked once per batch (before any retry).

An update carries the canonical text its hash covers (`hashed_body`, built once by the archive
agent). The sink checks the link (SHA-256 of previous hash and that text against `hash`), reads
the values from that text (one orjson parse: the same forms the platform stores) and never
builds canonical JSON itself. An update from a producer before the field existed has no text:
it is built from the decoded fields, as before.

An update that can never be applied (it does not decode as an ArchiveUpdate, its hash does not
match its content, or its text disagrees with its key fields) is marked rejected with a reason
code; the sinks dead-letter it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from creditbus.connectors.errors import TransientError

from creditbus.archive.chain import hashed_bytes, link_hash
from creditbus.constants import ARCHIVE_UPDATE
from creditbus.contract.wire import Wire, WireError

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
    """An incoming message with its checked update, or the reason it is rejected."""

    msg: Incoming
    person_key: str = ""
    version: int = 0
    previous_hash: str = ""
    hash: str = ""
    unit: str | None = None
    update: dict[str, Any] | None = None  # the decoded datum (the HTTP sink posts it)
    body: str | None = None  # the canonical text the hash covers (stored per update)
    doc: dict[str, Any] | None = None  # that text parsed: the values in their platform forms
    reason: str | None = None
    message: str = ""

    @property
    def rejected(self) -> bool:
        return self.reason is not None

    @property
    def published_at(self) -> float:
        """The record's publication time (epoch seconds), for the latency metric."""
        assert self.doc is not None
        text = self.doc["change"]["record"]["published_at"]
        return datetime.fromisoformat(text).timestamp()


def prepare(wire: Wire, msg: Incoming, *, check_fields: bool = False) -> Prepared:
    """Decode and check one message; raises TransientError when decoding may work later.

    `check_fields`: also check that every field equals the hashed text (a consumer that uses
    the decoded fields, not the text, needs it; it costs building the text once more).
    """
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
    item = Prepared(msg, person_key=str(update["person_key"]), version=int(update["version"]),
                    previous_hash=update["previous_hash"], hash=update["hash"],
                    unit=update.get("unit"), update=update)
    text: str | None = update.get("hashed_body")
    body = text.encode() if text is not None else hashed_bytes(update)
    if link_hash(item.previous_hash, body) != item.hash:
        item.reason, item.message = HASH_MISMATCH, \
            f"hash of version {item.version} does not match its content"
        return item
    doc = orjson.loads(body)
    if text is not None and (doc.get("person_key") != item.person_key
                             or doc.get("version") != item.version
                             or (check_fields and hashed_bytes(update) != body)):
        item.reason, item.message = HASH_MISMATCH, \
            f"the hashed text of version {item.version} does not match its fields"
        return item
    item.body, item.doc = text if text is not None else body.decode(), doc
    return item


def prepare_all(wire: Wire, messages: list[Incoming], *, check_fields: bool = False,
                ) -> list[Prepared]:
    return [prepare(wire, m, check_fields=check_fields) for m in messages]
