"""Reading receipts: wait for those of events just published, list them, count them.

Readers assign partitions themselves and commit nothing (no consumer group is joined), so a
unit needs only READ on its receipts topic and on its own group id (`receipts_group_id`).

A receipt may appear twice after a crash of the stage that wrote it (at-least-once): both
copies are byte-identical and have the same key and inbound position, which is what readers
de-duplicate by. The same event id sent twice by a unit (a re-import) is two inbound messages
and gets two receipts: `accepted`, then `duplicate`.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from creditbus.archive.timeutil import china_date
from creditbus.errors import BrokerUnavailable
from creditbus.kafka.clientconf import confluent_config
from creditbus.receipts.model import OUTCOMES, Receipt
from creditbus.topics import receipts_group_id, receipts_topic

CLOCK_MARGIN_MS = 300_000
"""Receipts carry the broker's append time of the worker's clock; a reader seeks this much
earlier than asked, then filters on `decided_at` (the publisher's own clock)."""
_SETTLING = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                       KafkaError.UNKNOWN_TOPIC_OR_PART})
"""Errors of a topic whose partitions are still being placed: asked again until the timeout."""
POLL_S = 0.5


class ReceiptsError(BrokerUnavailable, RuntimeError):
    """The receipts topic cannot be read (missing, or not authorised); one line for the CLI."""


class ReceiptsTopicMissing(ReceiptsError):
    """No receipts topic for a unit yet (`creditbus topics ensure` or a worker creates it)."""


@dataclass(frozen=True)
class Progress:
    """How many of the awaited receipts arrived, by outcome, and how many are still awaited."""

    accepted: int
    duplicate: int
    rejected: int
    waiting: int


Summary = list[tuple[str, str, str, int]]
"""(unit, day in China as YYYY-MM-DD, outcome, count), sorted."""


def _consumer(settings: Any, unit: str | None) -> Consumer:
    return Consumer(confluent_config(settings, **{
        "group.id": receipts_group_id(settings.topic_prefix, unit),
        "client.id": f"creditbus-receipts-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
    }))


def _start(consumer: Consumer, topic: str, since_ms: int | None,
           timeout: float = 30.0) -> tuple[list[TopicPartition], dict[int, int]]:
    """The partitions of `topic` positioned at the first receipt written at or after
    `since_ms` (all when None), and each partition's end offset now."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise ReceiptsError(f"cannot read {topic}: {exc.args[0].str()}") from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        error = found.error if found is not None else None
        if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise ReceiptsError(f"not authorised to read {topic}")
        raise ReceiptsTopicMissing(f"topic {topic} is missing"
                                   f" ({error.str() if error else 'unknown'})")
    partitions = sorted(found.partitions)
    ends: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while True:
        try:
            for p in partitions:
                _low, ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                               timeout=timeout)
            if since_ms is None:
                return [TopicPartition(topic, p, 0) for p in partitions], ends
            asked = [TopicPartition(topic, p, max(0, since_ms - CLOCK_MARGIN_MS))
                     for p in partitions]
            found_at = consumer.offsets_for_times(asked, timeout=timeout)
            break
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise ReceiptsError(f"not authorised to read {topic}") from None
            if error.code() in _SETTLING and time.monotonic() < deadline:
                time.sleep(0.2)  # a topic just created: its leaders are still being elected
                continue
            raise ReceiptsError(f"cannot read {topic}: {error.str()}") from None
    # no receipt that late yet: start at the end as it was *before* the lookup (a receipt
    # written in between is not skipped)
    starts = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0
                             else ends[tp.partition]) for tp in found_at]
    return starts, ends


def _receipts(messages: Iterable[Any]) -> Iterator[Receipt]:
    for msg in messages:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise ReceiptsError(f"not authorised to read {msg.topic()}")
            if err.fatal():
                raise ReceiptsError(f"receipts consumer failed: {err.str()}")
            continue
        try:
            yield Receipt.from_bytes(msg.value() or b"")
        except (ValueError, TypeError):
            continue  # not a receipt: nothing a reader can do with it


def wait_for_receipts(settings: Any, unit: str, event_ids: Collection[str], *,
                      since_ms: int, timeout_s: float,
                      on_progress: Callable[[Progress], None] | None = None,
                      ) -> dict[str, Receipt]:
    """The receipts of `event_ids` decided at or after `since_ms` (ms; take the time before
    publishing), as they arrive, until all are in or `timeout_s` passed. Event ids without a
    receipt by then are missing from the result. `on_progress` is called whenever more arrived.
    """
    wanted = set(event_ids)
    got: dict[str, Receipt] = {}
    counts: Counter[str] = Counter()
    if not wanted:
        return got
    consumer = _consumer(settings, unit)
    try:
        starts, _ends = _start(consumer, receipts_topic(settings, unit), since_ms)
        consumer.assign(starts)
        deadline = time.monotonic() + timeout_s
        while len(got) < len(wanted) and time.monotonic() < deadline:
            batch = consumer.consume(1000, min(POLL_S, max(0.0, deadline - time.monotonic())))
            before = len(got)
            for receipt in _receipts(batch):
                if (receipt.event_id in wanted and receipt.event_id not in got
                        and receipt.decided_at >= since_ms):
                    got[receipt.event_id] = receipt
                    counts[receipt.outcome] += 1
            if on_progress is not None and len(got) > before:
                on_progress(Progress(counts["accepted"], counts["duplicate"],
                                     counts["rejected"], len(wanted) - len(got)))
    finally:
        consumer.close()
    return got


def read_receipts(settings: Any, units: Iterable[str], *, since_ms: int | None = None,
                  timeout_s: float = 60.0) -> list[Receipt]:
    """Every receipt of `units` decided at or after `since_ms`, up to the end of each topic as
    it was when the read began, once per key and inbound position (a repeat after a crash is
    byte-identical; should a re-decision differ, the last one counts: docs/receipts.md)."""
    units = list(units)
    found: dict[tuple[bytes, tuple[str, int, int]], Receipt] = {}
    consumer = _consumer(settings, units[0] if len(units) == 1 else None)
    try:
        assignment: list[TopicPartition] = []
        ends: dict[tuple[str, int], int] = {}
        for unit in units:
            topic = receipts_topic(settings, unit)
            try:
                starts, topic_ends = _start(consumer, topic, since_ms)
            except ReceiptsTopicMissing:
                if len(units) == 1:
                    raise
                continue  # a unit that never published: nothing to count
            for tp in starts:
                if tp.offset < topic_ends[tp.partition]:
                    assignment.append(tp)
                    ends[(topic, tp.partition)] = topic_ends[tp.partition]
        if not assignment:
            return []
        consumer.assign(assignment)
        position = {(tp.topic, tp.partition): tp.offset for tp in assignment}
        deadline = time.monotonic() + timeout_s
        while any(position[k] < ends[k] for k in ends):
            if time.monotonic() > deadline:
                raise ReceiptsError(f"receipts not read to the end within {timeout_s:.0f} s")
            batch = consumer.consume(1000, POLL_S)
            for msg in batch:
                if msg.error() is None:
                    position[(msg.topic(), msg.partition())] = msg.offset() + 1
            for receipt in _receipts(batch):
                if since_ms is None or receipt.decided_at >= since_ms:
                    found[(receipt.key, receipt.position)] = receipt  # the last decision
    finally:
        consumer.close()
    return list(found.values())


def summarize(settings: Any, unit: str | None = None, since_ms: int | None = None,
              *, units: Iterable[str] | None = None) -> Summary:
    """Receipts per (unit, day, outcome): of `unit`, or of every unit of the catalog (the
    office's view: needs the administrator's credentials)."""
    if unit is not None:
        chosen = [unit]
    elif units is not None:
        chosen = list(units)
    else:
        from creditbus.catalog import default_catalog

        chosen = [u.code for u in default_catalog(settings.catalog_dir).units]
    counts: Counter[tuple[str, str, str]] = Counter()
    for receipt in read_receipts(settings, chosen, since_ms=since_ms):
        counts[(receipt.unit, china_date(receipt.decided_at).isoformat(), receipt.outcome)] += 1
    order = {o: i for i, o in enumerate(OUTCOMES)}
    return sorted(((u, d, o, n) for (u, d, o), n in counts.items()),
                  key=lambda row: (row[0], row[1], order.get(row[2], 9)))


