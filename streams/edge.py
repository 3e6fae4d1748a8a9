"""The edge stage: inbound records -> decoded, validated, enriched -> packs on the by-person topic.

Every `creditbus worker` runs it in a child process of its own (docs/design.md says why not a
Faust agent, and why not a thread), with a confluent-kafka consumer in the group
`<prefix>-archive-edge` and a producer of its own. A batch at a time: consume up to
`batch_size` records, run `Ingestor.process` on each, send the valid events as packs to the
partition of their person and the rejected ones to the dead-letter topic (masked bytes, headers
with the reason and the source position) with a receipt to their unit's receipts topic, flush
the producer, then store the batch's offsets for the next commit (once a second). The receipts
of valid events come from the archive agent, which decides their outcome (docs/receipts.md).
A crash anywhere before the commit makes the batch be read again; the archive agent recognises
the repeated events by their inbound position, so the effect is once (at-least-once delivery,
idempotent effects). Its metrics are counted per batch and handed to `report`, which the worker
process applies to its own Prometheus counters (one endpoint per worker).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from creditbus.streams.counts import Counts
from creditbus.streams.output import Output
from creditbus.streams.partitioning import person_partition

from creditbus.archive.event import EnrichedEvent, pack_internal
from creditbus.contract.wire import WireError
from creditbus.deadletter import dead_letter_headers, mask_ids_in_bytes
from creditbus.ingest import Ingestor, Rejection
from creditbus.receipts import build as receipts
from creditbus.receipts.model import row_of_headers
from creditbus.topics import receipts_topic

log = logging.getLogger("creditbus.worker")

BATCH_SIZE = 2000
BATCH_S = 0.05
RETRY_S = (0.5, 1.0, 2.0, 5.0)
COMMIT_INTERVAL_MS = 1000
"""A commit per batch (20 a second per worker at low rates) cost the broker more than the
batches; as Faust does, commit at most once a second."""



class EdgeStage:
    """One consumer loop; `run` returns when `stop` is set."""

    def __init__(self, ingestor: Ingestor, consumer_config: dict[str, Any],
                 output: Output, *, inbound: list[str], by_person: str, deadletters: str,
                 stop: threading.Event, report: Callable[[Counts], None],
                 batch_size: int = BATCH_SIZE, batch_s: float = BATCH_S) -> None:
        self.ingestor = ingestor
        self.report = report
        self.output = output
        self.inbound = inbound
        self.by_person = by_person
        self.deadletters = deadletters
        self.stop = stop
        self.batch_size = batch_size
        self.batch_s = batch_s
        self.partitions = 0
        self.consumer = Consumer({
            # offsets are stored only after a batch's output is acknowledged (store_offsets);
            # librdkafka commits what is stored once a second, on a rebalance and on close
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": COMMIT_INTERVAL_MS,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            **consumer_config,
        })

    def run(self) -> None:
        self.partitions = self._partition_count()
        self.consumer.subscribe(self.inbound, on_assign=self._on_assign)
        failures = 0
        try:
            while not self.stop.is_set():
                messages = self.consumer.consume(self.batch_size, self.batch_s)
                if not messages:
                    continue
                try:
                    self.process(messages)
                    failures = 0
                except WireError as exc:  # retriable: the schema registry is unavailable
                    delay = RETRY_S[min(failures, len(RETRY_S) - 1)]
                    failures += 1
                    log.warning("edge: %s; reading the batch again in %.1f s", exc, delay)
                    self._rewind(messages)
                    self.stop.wait(delay)
        finally:
            self.consumer.close()

    def _partition_count(self) -> int:
        metadata = self.consumer.list_topics(self.by_person, timeout=30)
        topic = metadata.topics.get(self.by_person)
        if topic is None or topic.error is not None or not topic.partitions:
            raise RuntimeError(f"topic {self.by_person} is missing: run `creditbus worker` "
                               "with rights to create it, or create it first")
        return len(topic.partitions)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("edge: assigned %d inbound partitions", len(partitions))

    def process(self, messages: list[Message]) -> None:
        """One batch: send its outcomes, make them durable, then store its offsets."""
        packs: dict[int, list[EnrichedEvent]] = {}
        counts: Counts = Counter()
        offsets: dict[tuple[str, int], int] = {}
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise RuntimeError(f"Kafka consumer failed: {err}")
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("edge consumer: %s", err)
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            offsets[(topic, partition)] = offset + 1
            result = self.ingestor.process(msg.value(), topic, partition, offset,
                                           msg.timestamp()[1], row_of_headers(msg.headers()))
            counts["EVENTS_IN", (result.unit or "unknown", topic)] += 1
            if isinstance(result, Rejection):
                self._dead_letter(msg, result, counts)
                continue
            counts["EVENTS_VALID", (result.unit,)] += 1
            packs.setdefault(person_partition(result.person_key, self.partitions),
                             []).append(result)
        for partition, events in packs.items():
            for pack in pack_internal(events):
                self.output.send(self.by_person, pack, partition=partition)
        self.output.flush()
        if offsets:
            self.consumer.store_offsets(offsets=[TopicPartition(t, p, o)
                                                 for (t, p), o in offsets.items()])
        self.report(counts)

    def _dead_letter(self, msg: Message, rejection: Rejection, counts: Counts) -> None:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        counts["EVENTS_INVALID", (rejection.unit or "unknown", rejection.code)] += 1
        counts["DEAD_LETTERS", ("ingest", rejection.code)] += 1
        log.info("dead letter: stage=ingest reason=%s source=%s[%d]@%d", rejection.code, topic,
                 partition, offset)
        headers = dead_letter_headers(stage="ingest", reason=rejection.code,
                                      message=rejection.message, topic=topic,
                                      partition=partition, offset=offset, unit=rejection.unit)
        self.output.send(self.deadletters, mask_ids_in_bytes(msg.value() or b""),
                         key=msg.key(), headers=headers)
        if rejection.unit is not None:
            self._receipt(msg, rejection.unit, rejection)

    def _receipt(self, msg: Message, unit: str, rejection: Rejection) -> None:
        """The rejection's receipt, in the same flush as the dead letter (deterministic: a
        batch read again after a crash sends the same bytes under the same key)."""
        topic = receipts_topic(self.ingestor.prefix, unit)
        key, value = receipts.rejected_message(
            unit=unit, topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
            timestamp=msg.timestamp()[1], row=row_of_headers(msg.headers()),
            reason=rejection.code, event_id=rejection.event_id,
            record_id=rejection.record_id, field=rejection.field, value=rejection.value)
        self.output.send(topic, value, key=key)

    def _rewind(self, messages: list[Message]) -> None:
        """Seek every partition of the batch back to its first record in it."""
        first: dict[tuple[str, int], int] = {}
        for msg in messages:
            if msg.error() is None:
                first.setdefault((msg.topic(), msg.partition()), msg.offset())
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))
