"""What a worker stage sends, made durable a batch at a time (librdkafka, not a per-message
pure-Python producer).

`send` only queues (a few µs); `flush` waits until the broker acknowledged everything queued
(acks=all, idempotent) and raises `OutputLost` if anything could not be delivered. A stage
commits its input, or stores state that remembers it, only after `flush` returned: that is
what makes at-least-once delivery lose nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Producer

from creditbus.errors import DeliveryError

log = logging.getLogger("creditbus.worker")

FLUSH_STEP_S = 1.0


class OutputLost(DeliveryError, RuntimeError):
    """A message could not be delivered: the stage must not commit past its input."""


class Output:
    def __init__(self, config: dict[str, Any]) -> None:
        self.failures: list[str] = []
        self.producer = Producer({
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "batch.size": 1_000_000,
            "delivery.report.only.error": True,
            "on_delivery": self._report,
            **config,
        })

    def _report(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))

    def send(self, topic: str, value: bytes, *, key: bytes | None = None,
             partition: int | None = None,
             headers: Sequence[tuple[str, bytes]] | None = None) -> None:
        kwargs: dict[str, Any] = {"key": key, "headers": headers}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self.producer.produce(topic, value, **kwargs)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.05)

    def flush(self) -> None:
        """Wait until everything queued is acknowledged; raise `OutputLost` on a failure."""
        while (left := self.producer.flush(FLUSH_STEP_S)) > 0:
            log.debug("waiting for %d messages to be acknowledged", left)
        if self.failures:
            failures, self.failures = self.failures, []
            raise OutputLost(f"{len(failures)} message(s) not delivered: {failures[0]}")

    async def flush_async(self) -> None:
        """`flush` in a thread, so the event loop (heartbeats, fetches) goes on meanwhile."""
        await asyncio.get_running_loop().run_in_executor(None, self.flush)
