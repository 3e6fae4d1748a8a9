"""The publisher SDK: validate, encode and publish CreditEvents to the unit's raw topic.

`EventEncoder` is the pure part (no Kafka): it takes an event in the Python form or in the
documented JSON form (docs/contract.md, "JSON form"), completes it (unit, published_at, the
stable event_id), encodes it, decodes it back and validates exactly what the edge stage will
see. Both take the unit as its code or Chinese name (`resolve_unit`), like `creditbus publish`.
`CreditPublisher` adds an idempotent producer (acks=all) that publishes to
`<prefix>.raw.<unit>`, keyed by record_id so that the versions of a record stay in order, and
reports every event's delivery: delivered (partition, offset) or failed (the error). Its
`wait_for_receipts` then waits for the bus's answer to every delivered event: its receipt
(accepted, duplicate or rejected; docs/receipts.md).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from creditbus.catalog import Catalog, default_catalog
from creditbus.constants import CREDIT_EVENT
from creditbus.contract import reasons as R
from creditbus.contract.canonical import derive_event_id
from creditbus.contract.jsonform import from_json, is_json_form
from creditbus.contract.models import CONTENT_MODELS
from creditbus.contract.schemas import SchemaStore, qualify
from creditbus.contract.validation import EventRejected, ValidEvent, validate_event
from creditbus.contract.wire import Wire, WireError
from creditbus.errors import DeliveryError
from creditbus.identity import redact
from creditbus.kafka.admin import ensure_bus_topics, require_broker
from creditbus.kafka.clientconf import confluent_config
from creditbus.receipts import ROW_HEADER, Progress, Receipt, wait_for_receipts
from creditbus.security.envelope import seal_event
from creditbus.security.keys import public_key_from_settings
from creditbus.settings import Settings
from creditbus.topics import raw_topic

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,  # no duplicates or reordering on retries
    "acks": "all",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "compression.type": "zstd",
    "message.timeout.ms": 120_000,
    "queue.buffering.max.messages": 500_000,
}


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An event ready to send: the decoded datum (what consumers see) and its bytes."""

    datum: dict[str, Any]
    value: bytes
    key: bytes
    valid: ValidEvent

    @property
    def event_id(self) -> str:
        return str(self.datum["event_id"])

    @property
    def record_id(self) -> str:
        return str(self.datum["record_id"])


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one published event. `ref` is what the caller passed to `publish`."""

    event_id: str
    record_id: str
    ref: Any
    partition: int | None
    offset: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class DeliveryReport:
    """Deliveries completed since the previous `flush`, and how many are still in flight."""

    delivered: tuple[DeliveryResult, ...]
    failed: tuple[DeliveryResult, ...]
    pending: int
    """Events still in flight when the flush timed out; a later flush reports them."""

    @property
    def ok(self) -> bool:
        return not self.failed and self.pending == 0

    @property
    def results(self) -> tuple[DeliveryResult, ...]:
        return self.delivered + self.failed


class PublishIncomplete(DeliveryError, RuntimeError):
    """Leaving a `with CreditPublisher(...)` block with deliveries that failed or are still in
    flight, none of them collected by a `flush` call: `report` holds them."""

    def __init__(self, report: DeliveryReport) -> None:
        super().__init__(
            f"{len(report.failed)} events failed and {report.pending} are unconfirmed"
        )
        self.report = report


def resolve_unit(catalog: Catalog, text: str) -> str:
    """The code of a publishing unit given by code (`justice`), Chinese name (`市司法局`) or
    alias (`赣州市司法局`); ValueError for an unknown unit or one responsible for no group."""
    if catalog.has("unit", text):
        unit = text
    else:
        found = catalog.unit_by_name(text)
        if found is None:
            raise ValueError(f"unknown unit {text!r} (see `creditbus catalog --only units`)")
        unit = found.code
    if not catalog.unit(unit).groups:
        raise ValueError(f"unit {unit!r} is responsible for no group in the catalog")
    return unit


class EventEncoder:
    """Completes, encodes and validates events of one unit, without any Kafka connection."""

    def __init__(self, unit: str, catalog: Catalog, wire: Wire, topic: str | None = None,
                 public_key: Any = None) -> None:
        self.unit = resolve_unit(catalog, unit)
        self.catalog = catalog
        self.wire = wire
        self.topic = topic
        self.public_key = public_key
        """The bus's field-protection key: when set, identity number and name are sealed."""

    def to_datum(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The event in the Python form: a JSON-form event (`is_json_form`) is converted with
        `from_json`, a Python-form one copied. Raises `EventRejected` (SCHEMA_MISMATCH)."""
        if not isinstance(event, Mapping):
            raise EventRejected(R.SCHEMA_MISMATCH, "the event is not a record")
        if not is_json_form(event):
            return dict(event)
        try:
            return dict(from_json(self.wire.store.current(CREDIT_EVENT), event))
        except ValueError as exc:
            message = redact(str(exc))
            raise EventRejected(R.SCHEMA_MISMATCH, message, _json_field(message)) from None

    def prepare(self, event: Mapping[str, Any], *, now_ms: int | None = None) -> PreparedEvent:
        """Raise `EventRejected` for an invalid event; nothing is sent."""
        datum = self.to_datum(event)
        if now_ms is None:
            now_ms = int(time.time() * 1000)
        datum.setdefault("unit", self.unit)
        if datum.get("published_at") is None:
            datum["published_at"] = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        given_id = datum.get("event_id")
        if not given_id:
            datum["event_id"] = ""
        datum["content"] = _tagged_content(datum.get("content"))

        value = self._encode(datum)
        decoded = self.wire.decode(value).datum
        if not given_id:
            # Derived from the decoded datum (defaults filled in, floats as Avro stores them),
            # so that any consumer can recompute it from what it reads.
            decoded["event_id"] = derive_event_id(decoded)
            value = self._encode(decoded)
        valid = validate_event(
            decoded, self.catalog, topic_unit=self.unit, now_ms=now_ms, encoded_size=len(value)
        )
        if self.public_key is not None:  # sealed after validation: the id stays the same
            value = self._encode(seal_event(decoded, self.public_key))
        return PreparedEvent(decoded, value, decoded["record_id"].encode("utf-8"), valid)

    def _encode(self, datum: Mapping[str, Any]) -> bytes:
        try:
            return self.wire.encode(CREDIT_EVENT, datum, topic=self.topic)
        except WireError as exc:
            raise EventRejected(R.SCHEMA_MISMATCH, redact(exc.message)) from None


_JSON_PATH = re.compile(r"CreditEvent((?:\.\w+|<\w+>|\[\d+\])*)")


def _json_field(message: str) -> str | None:
    """The field path (as in `EventRejected.field`) of a `from_json` error message:
    ``CreditEvent.content<Penalty>.fine_amount: ...`` -> ``content.fine_amount``."""
    match = _JSON_PATH.match(message)
    if match is None or not match[1]:
        return None
    parts = re.sub(r"<\w+>|\[\d+\]", "", match[1]).strip(".").split(".")
    depth = 2 if parts[0] in ("person", "content") else 1
    return ".".join(parts[:depth])


def _tagged_content(content: Any) -> Any:
    """Accept content as the wire tuple, or as the JSON form ``{"Penalty": {...}}``."""
    if content is None or isinstance(content, tuple):
        return content
    if isinstance(content, Mapping) and len(content) == 1:
        ((name, body),) = content.items()
        if isinstance(name, str) and qualify(name) in CONTENT_MODELS:
            return (qualify(name), body)
    raise EventRejected(
        R.SCHEMA_MISMATCH,
        'content must be (record name, fields) or {"<Type>": {...}}, e.g. {"Penalty": {...}}',
        "content",
    )


def schema_registry_client(url: str) -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient({"url": url})


def default_wire(settings: Settings) -> Wire:
    """Single-object framing, or Confluent framing when a schema registry is configured."""
    registry = (
        schema_registry_client(settings.schema_registry_url)
        if settings.schema_registry_url else None
    )
    return Wire(SchemaStore(settings.schema_dir), registry=registry)


class CreditPublisher:
    """Publishes a unit's CreditEvents. Use as a context manager, or call `flush` at the end.

    `publish` validates and queues (raising `EventRejected` before anything is sent); `flush`
    waits and returns a `DeliveryReport` of the deliveries completed since the last flush.
    Leaving a with-block flushes and raises `PublishIncomplete` if deliveries failed.
    `on_delivery(result)` is called for every event as its delivery completes (inside
    `publish`/`flush`/`poll`, in the caller's thread). `unit` is the unit's code or Chinese
    name; events may be in the Python form or the JSON form (docs/publisher.md).
    """

    def __init__(
        self,
        settings: Settings,
        unit: str,
        *,
        catalog: Catalog | None = None,
        wire: Wire | None = None,
        on_delivery: Callable[[DeliveryResult], None] | None = None,
        producer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog if catalog is not None else default_catalog(settings.catalog_dir)
        unit = resolve_unit(self.catalog, unit)
        require_broker(settings)
        self.unit = unit
        self.topic = raw_topic(settings.topic_prefix, unit)
        self.wire = wire if wire is not None else default_wire(settings)
        self.encoder = EventEncoder(unit, self.catalog, self.wire, self.topic,
                                    public_key_from_settings(settings))
        self.on_delivery = on_delivery
        self._config = confluent_config(settings, **{
            "client.id": f"creditbus-publisher-{unit}",
            **PRODUCER_DEFAULTS,
            **dict(producer_config or {}),
        })
        self._producer: Any = None
        self._in_flight: dict[int, tuple[str, str, Any]] = {}  # token -> (event id, record, ref)
        self._tokens = 0
        self._done: list[DeliveryResult] = []
        self.delivered_ids: set[str] = set()
        """Event ids the broker confirmed: those `wait_for_receipts` waits for by default."""
        self.since_ms: int | None = None
        """When the first event was sent (ms): receipts decided earlier are not this run's."""
        self.last_error: str | None = None
        """The last client-level error librdkafka reported (e.g. broker down), for display."""

    # -- publishing ---------------------------------------------------------------------------

    def prepare(self, event: Mapping[str, Any]) -> PreparedEvent:
        """Validate and encode without sending (what `publish` does first)."""
        return self.encoder.prepare(event)

    def publish(self, event: Mapping[str, Any], *, ref: Any = None,
                row: int | None = None) -> str:
        """Validate, encode and queue one event; return its event id.

        Raises `EventRejected` for an invalid event. `ref` comes back in its `DeliveryResult`;
        `row` (the event's row in an imported file) comes back in its receipt.
        """
        prepared = self.encoder.prepare(event)
        self.send(prepared, ref=ref, row=row)
        return prepared.event_id

    def send(self, prepared: PreparedEvent, *, ref: Any = None, row: int | None = None) -> None:
        """Queue an already prepared event (`row`: as in `publish`)."""
        producer = self._producer or self._start()
        headers = [(ROW_HEADER, str(row).encode())] if row is not None else None
        self._tokens += 1
        token = self._tokens
        callback = functools.partial(self._delivered, token)
        while True:
            try:
                producer.produce(
                    self.topic, value=prepared.value, key=prepared.key, on_delivery=callback,
                    headers=headers,
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        self._in_flight[token] = (prepared.event_id, prepared.record_id, ref)
        producer.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks; returns how many were served."""
        return int(self._producer.poll(timeout)) if self._producer is not None else 0

    def flush(self, timeout: float = 60.0) -> DeliveryReport:
        """Wait up to `timeout` seconds for every queued event; report what completed."""
        if self._producer is not None:
            self._producer.flush(timeout)
        done, self._done = self._done, []
        return DeliveryReport(
            delivered=tuple(r for r in done if r.ok),
            failed=tuple(r for r in done if not r.ok),
            pending=len(self._in_flight),
        )

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def abandon_pending(self, reason: str) -> list[DeliveryResult]:
        """Give up waiting for the events still in flight: report each as failed with `reason`
        (the broker may still have received some of them; re-publishing is safe, the ids are
        stable) and stop tracking them."""
        results = [
            DeliveryResult(event_id, record_id, ref, None, None, reason)
            for event_id, record_id, ref in self._in_flight.values()
        ]
        self._in_flight.clear()
        return results

    def close(self, timeout: float = 60.0) -> DeliveryReport:
        return self.flush(timeout)

    def wait_for_receipts(self, event_ids: Collection[str] | None = None, *,
                          timeout_s: float = 300.0,
                          on_progress: Callable[[Progress], None] | None = None,
                          ) -> dict[str, Receipt]:
        """Wait until every delivered event (or those of `event_ids`) has its receipt, or
        `timeout_s` passed; call after `flush`. Event ids without a receipt are missing from
        the result. Reading receipts needs the unit's READ ACL on its receipts topic."""
        wanted = self.delivered_ids if event_ids is None else set(event_ids)
        if not wanted or self.since_ms is None:
            return {}
        return wait_for_receipts(self.settings, self.unit, wanted, since_ms=self.since_ms,
                                 timeout_s=timeout_s, on_progress=on_progress)

    def __enter__(self) -> CreditPublisher:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        report = self.flush()
        if not report.ok and exc_type is None:
            raise PublishIncomplete(report)  # never drop a failed delivery silently

    # -- internals ------------------------------------------------------------------------------

    def _start(self) -> Any:
        from confluent_kafka import Producer

        self.ensure_topic()
        self.since_ms = int(time.time() * 1000)
        self._producer = Producer({**self._config, "error_cb": self._client_error})
        return self._producer

    def ensure_topic(self) -> None:
        """Create the unit's raw topic if it does not exist (the broker does not auto-create)."""
        ensure_bus_topics(self.settings, "raw", units=[self.unit])

    def _client_error(self, error: Any) -> None:
        self.last_error = str(error)

    def _delivered(self, token: int, err: Any, msg: Any) -> None:
        entry = self._in_flight.pop(token, None)
        if entry is None:  # abandoned earlier
            return
        event_id, record_id, ref = entry
        if err is None:
            result = DeliveryResult(event_id, record_id, ref, msg.partition(), msg.offset(), None)
            self.delivered_ids.add(event_id)
        else:
            result = DeliveryResult(event_id, record_id, ref, None, None, redact(str(err)))
        self._done.append(result)
        if self.on_delivery is not None:
            self.on_delivery(result)
