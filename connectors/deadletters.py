"""The sink's dead letters: original bytes plus reason headers, on the sink dead-letter topic.

Dead letters are produced and flushed before the offsets that pass over them are committed, so
none is lost; after a crash between the two, one may be produced twice (at-least-once). Each is
logged once when the broker has it: reason and source position, never content.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaException, Producer
from creditbus.connectors.errors import TransientError
from creditbus.connectors.updates import Incoming

from creditbus import metrics
from creditbus.deadletter import HEADER_PREFIX, dead_letter_headers
from creditbus.kafka.clientlog import kafka_logger

log = logging.getLogger("creditbus.sink")

STAGE = "sink"
FLUSH_TIMEOUT_S = 30.0


class DeadLetters:
    """Produces dead letters to one topic; `flush` raises TransientError when not delivered."""

    def __init__(self, bootstrap: str, topic: str, auth: dict[str, str] | None = None) -> None:
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                                  "linger.ms": 5, "client.id": "creditbus-sink-dlq",
                                  "logger": kafka_logger(), **(auth or {})})
        self._queued: list[tuple[str, str, int, int]] = []
        """(reason, source topic, partition, offset) of each dead letter since the last flush."""
        self._errors: list[str] = []

    def send(self, msg: Incoming, reason: str, message: str, *,
             unit: str | None = None, extra: dict[str, str] | None = None) -> None:
        headers = dead_letter_headers(stage=STAGE, reason=reason, message=message,
                                      topic=msg.topic, partition=msg.partition,
                                      offset=msg.offset, unit=unit)
        headers += [(HEADER_PREFIX + k, v.encode()) for k, v in (extra or {}).items()]

        def report(err: object, _msg: object) -> None:
            if err is not None:
                self._errors.append(str(err))

        while True:
            try:
                self.producer.produce(self.topic, key=msg.key, value=msg.value,
                                      headers=headers, on_delivery=report)
                break
            except BufferError:
                self.producer.poll(0.1)
            except KafkaException as exc:
                raise TransientError(f"dead letter not queued: {exc}") from exc
        self._queued.append((reason, msg.topic, msg.partition, msg.offset))

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> None:
        if not self._queued:
            return
        remaining = self.producer.flush(timeout)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            self._queued = []
            raise TransientError(f"dead letters not delivered ({remaining} pending, "
                                 f"errors: {errors[:3]})")
        for reason, topic, partition, offset in self._queued:
            metrics.DEAD_LETTERS.labels(STAGE, reason).inc()
            log.warning("dead letter: stage=%s reason=%s source=%s[%d]@%d", STAGE, reason,
                        topic, partition, offset)
        self._queued = []

    def close(self) -> None:
        self.producer.flush(FLUSH_TIMEOUT_S)
        del self.producer  # destroys the client (confluent-kafka has no close for producers)
