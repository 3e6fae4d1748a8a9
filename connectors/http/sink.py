"""HTTP mode: post batches of archive updates to a platform's REST API.

There is no database here, so Kafka's committed offsets are the truth: they are committed only
after the platform answered 2xx for the batch (or after a rejected batch went to the dead-letter
topic). While the platform fails (5xx, timeout) the consumer is paused and the same batch is
re-posted with the same idempotency key, with capped exponential backoff. After a crash the
last uncommitted batch is posted again: the platform deduplicates by key and by
(person_key, version).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from creditbus.connectors.consuming import BatchLoop, LoopOptions
from creditbus.connectors.deadletters import DeadLetters
from creditbus.connectors.http.client import Answer, HttpClient
from creditbus.connectors.http.payload import batch_body
from creditbus.connectors.updates import ARCHIVE_UPDATE, Incoming, Prepared, prepare_all

from creditbus import metrics
from creditbus.contract.schemas import SchemaVersion
from creditbus.contract.wire import Wire

log = logging.getLogger("creditbus.sink")

HTTP_REJECTED = "SINK_HTTP_REJECTED"


@dataclass
class HttpBatch:
    items: list[Prepared]
    body: bytes = b""
    key: str = ""
    dead_lettered: set[tuple[int, int]] = field(default_factory=set)


class HttpWriter:
    """Posts batches (a `consuming.Writer`)."""

    commit_to_kafka = "sync"

    def __init__(self, client: HttpClient, wire: Wire, dead_letters: DeadLetters) -> None:
        self.client = client
        self.wire = wire
        self.dead_letters = dead_letters
        self.schema: SchemaVersion = wire.store.current(ARCHIVE_UPDATE)

    def starting_offsets(self, partitions: list[int]) -> dict[int, int] | None:
        return None

    def prepare(self, messages: list[Incoming]) -> HttpBatch:
        # the platform's API gets the decoded fields: check them against the hashed text
        batch = HttpBatch(prepare_all(self.wire, messages, check_fields=True))
        accepted = [i.update for i in batch.items if not i.rejected and i.update is not None]
        if accepted:
            batch.body, batch.key = batch_body(self.schema, accepted)
        return batch

    def write(self, batch: HttpBatch) -> None:
        started = time.perf_counter()
        accepted = [i for i in batch.items if not i.rejected]
        answer = self.client.post(batch.body, batch.key) if accepted else None
        sent: list[tuple[int, int]] = []
        for item in batch.items:
            if item.rejected:
                self._dead_letter(batch, sent, item, str(item.reason), item.message)
        if answer is not None and not answer.accepted:
            log.warning("platform rejected batch %s with HTTP %d; dead-lettering its %d "
                        "updates", batch.key[:16], answer.status, len(accepted))
            for item in accepted:
                self._dead_letter(batch, sent, item, HTTP_REJECTED,
                                  f"HTTP {answer.status}: {answer.excerpt}", answer)
        self.dead_letters.flush()
        batch.dead_lettered.update(sent)
        if answer is not None and answer.accepted:
            self._observe(accepted, time.perf_counter() - started)

    def _dead_letter(self, batch: HttpBatch, sent: list[tuple[int, int]], item: Prepared,
                     reason: str, message: str, answer: Answer | None = None) -> None:
        where = (item.msg.partition, item.msg.offset)
        if where in batch.dead_lettered:
            return
        extra: dict[str, str] = {}
        if item.person_key:
            extra.update({"person.key": item.person_key, "person.version": str(item.version)})
        if answer is not None:
            extra.update({"http.status": str(answer.status), "http.response": answer.excerpt,
                          "http.idempotency_key": batch.key})
        self.dead_letters.send(item.msg, reason, message, unit=item.unit, extra=extra)
        sent.append(where)

    @staticmethod
    def _observe(accepted: list[Prepared], seconds: float) -> None:
        now = time.time()
        metrics.SINK_BATCH_SIZE.observe(len(accepted))
        metrics.SINK_WRITE_SECONDS.observe(seconds)
        metrics.SINK_ROWS.inc(len(accepted))
        metrics.SINK_LAST_SUCCESS.set(now)
        for item in accepted:
            metrics.PUBLISH_TO_COMMIT.observe(max(0.0, now - item.published_at))


def run_http_sink(options: LoopOptions, url: str, timeout: float, dead_letter_topic: str,
                  wire: Wire, stop: threading.Event | None = None) -> int:
    dead_letters = DeadLetters(options.bootstrap, dead_letter_topic, options.consumer_config)
    try:
        log.info("posting %s to %s as group %s", options.topic, url, options.group)
        writer = HttpWriter(HttpClient(url, timeout), wire, dead_letters)
        return BatchLoop(options, writer, stop).run()
    finally:
        dead_letters.close()
