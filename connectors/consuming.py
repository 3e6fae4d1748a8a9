"""The consumer loop the sinks share: batches, retries with the consumer paused, rebalances,
lag metrics, idle exit and clean shutdown.

A `Writer` decides where batches go. The loop collects messages until the batch is full
(`batch_size`) or `batch_ms` has passed since its first message, hands it to the writer, and
on a `TransientError` pauses the whole assignment, waits with capped exponential backoff while
it keeps polling (so the group membership survives; anything that still arrives is kept, in
order, for the next batch) and retries the same batch until it is written. Nothing is dropped.

Rebalances use the eager protocol: every rebalance revokes and re-assigns all partitions, and
`on_assign` positions each partition where the writer says (the platform database's offsets)
or at Kafka's committed offset. Whatever was collected but not written when a rebalance happens
is discarded, because the new assignment re-reads it from those positions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from creditbus.connectors.backoff import Backoff
from creditbus.connectors.errors import TransientError
from creditbus.connectors.updates import Incoming

from creditbus import metrics
from creditbus.kafka.clientlog import kafka_logger

log = logging.getLogger("creditbus.sink")

T = TypeVar("T")
POLL_S = 0.1
LAG_EVERY_S = 1.0
ASSIGN_GRACE_S = 30.0
"""With --until-idle, how much longer to wait for the first assignment (a group join can take
seconds, e.g. while a fresh broker loads its group coordinator)."""


class Writer(Protocol):
    """Where the batches go."""

    commit_to_kafka: str
    """'async': commit offsets to Kafka after each batch, for lag tools only (the writer keeps
    the true offsets); 'sync': Kafka's committed offsets are the truth."""

    def starting_offsets(self, partitions: list[int]) -> dict[int, int] | None:
        """Next offset per partition, or None to start at Kafka's committed offsets."""

    def prepare(self, messages: list[Incoming]) -> Any:
        """Decode and check a batch once (raises TransientError to be retried)."""

    def write(self, prepared: Any) -> None:
        """Write a prepared batch (raises TransientError to be retried)."""


@dataclass
class LoopOptions:
    bootstrap: str
    topic: str
    group: str
    batch_size: int = 500
    batch_ms: int = 50
    until_idle: float | None = None
    max_batches: int | None = None
    instance_id: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    consumer_config: dict[str, Any] = field(default_factory=dict)


def to_incoming(msg: Message) -> Incoming:
    return Incoming(str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0),
                    msg.key(), msg.value(), tuple(msg.headers() or ()))


class BatchLoop:
    """Runs one consumer until stopped, idle or done; `run` returns the exit code."""

    def __init__(self, options: LoopOptions, writer: Writer,
                 stop: threading.Event | None = None) -> None:
        self.options = options
        self.writer = writer
        self.stop = stop or threading.Event()
        self.generation = 0
        self.pending: list[Incoming] = []
        self.assigned: list[int] = []
        self.ever_assigned = False
        self.batches = 0
        self.last_activity = time.monotonic()
        self._last_lag = 0.0
        config: dict[str, Any] = {
            "bootstrap.servers": options.bootstrap,
            "group.id": options.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            "client.id": "creditbus-sink",
            "logger": kafka_logger(),
        }
        if options.instance_id:
            config["group.instance.id"] = options.instance_id
        config.update(options.consumer_config)
        self.consumer = Consumer(config)

    # -- rebalances ---------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.generation += 1
        self.pending.clear()
        numbers = [tp.partition for tp in partitions]
        offsets = self._retry(lambda: self.writer.starting_offsets(numbers), paused=False,
                              what="reading the stored offsets")
        if offsets is not None:
            for tp in partitions:
                tp.offset = offsets.get(tp.partition, OFFSET_BEGINNING)
            consumer.assign(partitions)
        self.assigned = sorted(numbers)
        self.ever_assigned = True
        self.last_activity = time.monotonic()
        log.info("assigned %s partitions %s%s", self.options.topic, self.assigned,
                 f" at offsets {offsets}" if offsets is not None else " (committed offsets)")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.generation += 1
        self.pending.clear()
        for tp in partitions:
            try:
                metrics.CONSUMER_LAG.remove(self.options.group, tp.topic, str(tp.partition))
            except KeyError:
                pass
        self.assigned = []
        log.info("revoked %s partitions %s", self.options.topic,
                 sorted(tp.partition for tp in partitions))

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        o = self.options
        self.consumer.subscribe([o.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_revoke)
        try:
            while not self.stop.is_set():
                batch = self._collect()
                if batch:
                    self._write(batch)
                    if o.max_batches is not None and self.batches >= o.max_batches:
                        log.info("wrote %d batches: done", self.batches)
                        break
                elif o.until_idle is not None and self._idle_for(o.until_idle):
                    break
                self._update_lag()
        finally:
            self.consumer.close()
        return 0

    def _idle_for(self, seconds: float) -> bool:
        idle = time.monotonic() - self.last_activity
        if self.ever_assigned:
            if idle >= seconds:
                log.info("no new messages for %.1f s: done", seconds)
                return True
        elif idle >= seconds + ASSIGN_GRACE_S:
            log.warning("no partitions of %s assigned after %.0f s: done", self.options.topic,
                        idle)
            return True
        return False

    def _poll(self, timeout: float) -> Incoming | None:
        msg = self.consumer.poll(timeout)
        if msg is None:
            return None
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise RuntimeError(f"Kafka consumer failed: {err}")
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer: %s", err)
            return None
        return to_incoming(msg)

    def _collect(self) -> list[Incoming]:
        """The next batch (possibly empty after about `POLL_S * 5` without messages)."""
        o = self.options
        batch = self.pending[:o.batch_size]
        del self.pending[:o.batch_size]
        generation = self.generation
        deadline = time.monotonic() + o.batch_ms / 1000 if batch else None
        empty_polls = 0
        while len(batch) < o.batch_size and not self.stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            timeout = POLL_S if deadline is None else min(POLL_S, deadline - now)
            msg = self._poll(timeout)
            if self.generation != generation:  # rebalanced: the new positions re-read it all
                generation = self.generation
                batch.clear()
                deadline = None
            if msg is None:
                empty_polls += 1
                if deadline is None and empty_polls >= 5:
                    break
                continue
            _append_in_order(batch, msg)
            if deadline is None:
                deadline = time.monotonic() + o.batch_ms / 1000
        if batch:
            self.last_activity = time.monotonic()
        return batch

    def _write(self, batch: list[Incoming]) -> None:
        generation = self.generation
        prepared = self._retry(lambda: self.writer.prepare(batch), what="decoding",
                               generation=generation)
        if prepared is None or self.generation != generation:
            return
        done = self._retry(lambda: self.writer.write(prepared) or True, what="writing",
                           generation=generation)
        if not done:
            log.warning("batch of %d not written (rebalance or shutdown during retries); "
                        "it will be read again", len(batch))
            return
        self.batches += 1
        # idle means nothing to read: time spent retrying this batch (a database away for a
        # while) is not idle time, or --until-idle would stop right after the retry succeeds,
        # before the consumer (resumed only now) fetched what is left
        self.last_activity = time.monotonic()
        self._commit_to_kafka(batch)

    def _retry(self, call: Callable[[], T], *, what: str, paused: bool = True,
               generation: int | None = None) -> T | None:
        """`call` until it succeeds; None when a rebalance or stop makes the result moot."""
        attempt = 0
        paused_parts: list[TopicPartition] = []
        try:
            while True:
                try:
                    return call()
                except TransientError as exc:
                    metrics.SINK_RETRIES.inc()
                    delay = self.options.backoff.delay(attempt)
                    attempt += 1
                    log.warning("%s failed (attempt %d), retrying in %.2f s: %s", what,
                                attempt, delay, exc)
                    if paused and not paused_parts:
                        paused_parts = self.consumer.assignment()
                        if paused_parts:
                            self.consumer.pause(paused_parts)
                    if self._wait(delay, polling=paused, generation=generation):
                        return None
        finally:
            if paused_parts:
                current = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
                still = [tp for tp in paused_parts if (tp.topic, tp.partition) in current]
                if still:
                    self.consumer.resume(still)

    def _wait(self, seconds: float, *, polling: bool, generation: int | None) -> bool:
        """Sleep while polling the paused consumer; True when asked to stop, or when a
        rebalance happened since `generation` (the batch in hand is moot then)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stop.is_set() or (generation is not None and generation != self.generation):
                return True
            if polling:
                msg = self._poll(min(POLL_S, left))
                if msg is not None:
                    _append_in_order(self.pending, msg)
            else:
                self.stop.wait(min(POLL_S, left))
        return self.stop.is_set() or (generation is not None and generation != self.generation)

    def _commit_to_kafka(self, batch: list[Incoming]) -> None:
        offsets = next_offsets(batch)
        tps = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        asynchronous = self.writer.commit_to_kafka != "sync"
        try:
            self.consumer.commit(offsets=tps, asynchronous=asynchronous)
        except Exception as exc:  # noqa: BLE001 - a failed commit is reported, never fatal
            level = logging.WARNING if not asynchronous else logging.DEBUG
            log.log(level, "committing offsets to Kafka failed: %s", exc)

    def _update_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag < LAG_EVERY_S:
            return
        self._last_lag = now
        try:
            positions = self.consumer.position(self.consumer.assignment())
        except Exception:  # noqa: BLE001 - no assignment yet
            return
        for tp in positions:
            try:
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except Exception:  # noqa: BLE001 - not known yet
                continue
            if high is None or high < 0 or tp.offset < 0:
                continue
            metrics.CONSUMER_LAG.labels(self.options.group, tp.topic,
                                        str(tp.partition)).set(max(0, high - tp.offset))


def next_offsets(batch: list[Incoming]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset after the last message of the batch."""
    out: dict[tuple[str, int], int] = {}
    for msg in batch:
        key = (msg.topic, msg.partition)
        out[key] = max(out.get(key, 0), msg.offset + 1)
    return out


def _append_in_order(batch: list[Incoming], msg: Incoming) -> None:
    """Append, dropping earlier messages of the partition if the stream rewound (a seek):
    a partition's messages in a batch are always in increasing offset order."""
    for i in range(len(batch) - 1, -1, -1):
        prior = batch[i]
        if prior.partition == msg.partition and prior.topic == msg.topic:
            if prior.offset >= msg.offset:
                batch[:] = [m for m in batch if not (m.partition == msg.partition and
                                                     m.topic == msg.topic)]
            break
    batch.append(msg)
