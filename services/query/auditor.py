"""Writes audit records to the audit topic and tells the caller when each is delivered.

An idempotent producer (acks=all, no duplicates on retries); a background thread serves its
delivery reports, which resolve asyncio futures, so a request handler can `await` its record's
delivery before it answers: no read leaves the service untraced.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from creditbus.audit import AuditRecord
from creditbus.errors import BrokerUnavailable

log = logging.getLogger(__name__)
KAFKA_LOGGER = "creditbus.query.kafka"


class AuditUnavailable(BrokerUnavailable):
    """The audit record was not delivered; the query's answer must be withheld."""


class AuditLog:
    def __init__(self, client_config: dict[str, Any], topic: str, *,
                 timeout_s: float = 10.0) -> None:
        """`client_config`: bootstrap servers and authentication
        (`creditbus.kafka.clientconf.confluent_config`)."""
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer = Producer({
            **client_config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": int(timeout_s * 1000),
            "client.id": "creditbus-query-audit",
            "logger": logging.getLogger(KAFKA_LOGGER),
        })
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="audit-delivery", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def write(self, record: AuditRecord) -> None:
        """Produce `record` and wait until the broker has it; raise AuditUnavailable if not."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(err: KafkaError | None, _msg: Message) -> None:
            def apply() -> None:
                if done.done():
                    return
                if err is None:
                    done.set_result(None)
                else:
                    done.set_exception(AuditUnavailable(str(err)))
            try:
                loop.call_soon_threadsafe(apply)
            except RuntimeError:  # the loop is closed: nobody waits for this report any more
                pass

        try:
            self._producer.produce(self.topic, key=record.kafka_key(), value=record.to_bytes(),
                                   on_delivery=settle)
        except (BufferError, KafkaException) as exc:
            raise AuditUnavailable(str(exc)) from exc
        try:
            # librdkafka reports a failure itself after message.timeout.ms; this is a backstop.
            await asyncio.wait_for(done, self.timeout_s + 5)
        except TimeoutError as exc:
            raise AuditUnavailable("no delivery report") from exc

    def close(self, timeout_s: float = 10.0) -> int:
        """Deliver what is pending; return the number of records left undelivered."""
        self._stop.set()
        self._thread.join(5)
        left = self._producer.flush(timeout_s)
        if left:
            log.error("%d audit record(s) not delivered at shutdown", left)
        return int(left)
