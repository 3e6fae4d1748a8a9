"""The owned Faust transport (`creditbus.streams.transport`) in-process against the real broker:
every record delivered once on the fast path, table writes under `processing(event)` on the event's
changelog partition, `committed_offset` following the commits.

The helpers here (an in-process app, the group's committed offset read from the broker) are
shared with tests/integration/test_transport_recovery.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import faust
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from creditbus.streams import transport
from faust.types import TP

from tests.bus import consume_all
from tests.conftest import Topics

APP_START_TIMEOUT_S = 60.0


def new_app(bootstrap: str, app_id: str, *, owned: bool, **settings: Any) -> faust.App:
    """An app on the owned transport (`creditbus://`) or on Faust's own (`kafka://`)."""
    scheme = transport.SCHEME if owned else "kafka"
    extra: dict[str, Any] = {"TableManager": transport.TableManager} if owned else {}
    options: dict[str, Any] = dict(
        store="memory://", web_enabled=False, autodiscover=False, topic_partitions=1,
        topic_replication_factor=1, broker_commit_interval=0.2, stream_recovery_delay=0.0,
        consumer_auto_offset_reset="earliest")
    options.update(settings)
    return faust.App(app_id, broker=f"{scheme}://{bootstrap}", **extra, **options)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


def ready(app: faust.App, *, owning: bool = True) -> bool:
    """The app finished its rebalance (recovery included), owning partitions if `owning`."""
    return (bool(app.consumer.assignment()) or not owning) and not app.rebalancing \
        and app.tables.recovery.completed.is_set()


@asynccontextmanager
async def running(app: faust.App, *, owning: bool = True) -> AsyncIterator[faust.App]:
    """Start the app, wait until it is ready, stop it afterwards."""
    await app.start()
    try:
        await wait_until(lambda: ready(app, owning=owning), APP_START_TIMEOUT_S,
                         "the app to be ready")
        yield app
    finally:
        await app.stop()


def produce_values(bootstrap: str, topic: str, values: Iterable[bytes],
                   partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(30) == 0


def group_committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int | None:
    """The consumer group's committed offset as the broker has it (None: nothing committed)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition)])
    result = admin.list_consumer_group_offsets([request])[group].result()
    offset = result.topic_partitions[0].offset
    return offset if offset >= 0 else None


def delete_app_topics(topics: Topics) -> None:
    """Delete the topics the test's apps declared (changelogs, the leader topic)."""
    names = [name for name in topics.admin.list_topics(timeout=10).topics
             if name.startswith(topics.prefix) and name not in topics.created]
    if names:
        for future in topics.admin.delete_topics(names).values():
            future.result()


# --- the tests -------------------------------------------------------------------------------


def test_fast_path_delivers_every_record_once_in_order(kafka_broker: Any, topics: Topics,
                                                       ) -> None:
    records = 3000
    name = topics.create("fast", partitions=2)
    half = records // 2
    for partition in (0, 1):
        produce_values(kafka_broker.bootstrap, name,
                       (b"%d" % i for i in range(half)), partition=partition)

    async def scenario() -> dict[int, list[int]]:
        app = new_app(kafka_broker.bootstrap, f"{topics.prefix}-fast", owned=True)
        seen: dict[int, list[int]] = {0: [], 1: []}

        async def agent(stream: faust.StreamT) -> None:
            async for event in stream.events():
                seen[event.message.partition].append(event.message.offset)

        app.agent(app.topic(name, value_serializer="raw"), name="count")(agent)
        async with running(app):
            await wait_until(lambda: len(seen[0]) + len(seen[1]) >= records, 60,
                             "every record")
            await wait_until(lambda: transport.committed_offset(app, TP(name, 0)) == half
                             and transport.committed_offset(app, TP(name, 1)) == half,
                             30, "the commits of both partitions")
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        delete_app_topics(topics)
    assert seen == {0: list(range(half)), 1: list(range(half))}
    assert group_committed(kafka_broker.bootstrap, f"{topics.prefix}-fast", name, 1) == half


def test_committed_offset_follows_the_commits_and_is_none_before_any(
        kafka_broker: Any, topics: Topics) -> None:
    name = topics.create("commits")

    async def scenario() -> list[int | None]:
        app = new_app(kafka_broker.bootstrap, f"{topics.prefix}-commits", owned=True)
        done: list[int] = []

        async def agent(stream: faust.StreamT) -> None:
            async for event in stream.events():
                done.append(event.message.offset)

        app.agent(app.topic(name, value_serializer="raw"), name="commits")(agent)
        tp = TP(name, 0)
        async with running(app):
            before = transport.committed_offset(app, tp)
            produce_values(kafka_broker.bootstrap, name, [b"a", b"b", b"c"])
            await wait_until(lambda: len(done) == 3, 30, "three records")
            await wait_until(lambda: transport.committed_offset(app, tp) == 3, 30,
                             "the commit of offset 3")
            unknown = transport.committed_offset(app, TP(name, 7))
            return [before, transport.committed_offset(app, tp), unknown]

    try:
        before, after, unknown = asyncio.run(scenario())
    finally:
        delete_app_topics(topics)
    assert (before, after, unknown) == (None, 3, None)
    assert group_committed(kafka_broker.bootstrap, f"{topics.prefix}-commits", name) == 3


def test_table_writes_under_processing_go_to_the_changelog_partition_of_that_event(
        kafka_broker: Any, topics: Topics) -> None:
    """Inside `processing(e1)` a write lands on e1's changelog partition even while the
    stream's own current event is of the other partition; after the block it no longer does."""
    name = topics.create("hook", partitions=2)
    app_id = f"{topics.prefix}-hook"

    async def scenario() -> None:
        app = new_app(kafka_broker.bootstrap, app_id, owned=True, topic_partitions=2)
        table = app.Table("archives", default=None, partitions=2, key_type=bytes,
                          value_type=bytes)
        stash: dict[int, faust.EventT] = {}
        written = asyncio.Event()

        async def agent(stream: faust.StreamT) -> None:
            async for event in stream.events():
                stash[event.message.partition] = event
                if len(stash) < 2 or written.is_set():
                    continue
                # the current event is now the one just read; write under the other one
                current = event.message.partition
                other = stash[1 - current]
                with transport.processing(other) as chosen:
                    assert chosen is other
                    assert faust.current_event() is other
                    table[b"under-other-%d" % other.message.partition] = b"x"
                assert faust.current_event() is event
                table[b"after-block-%d" % current] = b"y"
                written.set()

        app.agent(app.topic(name, value_serializer="raw"), name="hook")(agent)
        async with running(app):
            produce_values(kafka_broker.bootstrap, name, [b"p0"], partition=0)
            produce_values(kafka_broker.bootstrap, name, [b"p1"], partition=1)
            await asyncio.wait_for(written.wait(), 30)
            await app.producer.flush()

    try:
        asyncio.run(scenario())
        changelog = consume_all(kafka_broker.bootstrap, f"{app_id}-archives-changelog",
                                expect=2, timeout=30)
    finally:
        delete_app_topics(topics)
    by_key = {m.key(): m.partition() for m in changelog}
    assert len(by_key) == 2, by_key
    (under_key, under_partition), = [(k, p) for k, p in by_key.items()
                                     if k.startswith(b"under-other-")]
    (after_key, after_partition), = [(k, p) for k, p in by_key.items()
                                     if k.startswith(b"after-block-")]
    assert under_partition == int(under_key.rsplit(b"-", 1)[1])
    assert after_partition == int(after_key.rsplit(b"-", 1)[1])
    assert under_partition != after_partition


async def pause_all_produce_resume(bootstrap: str, app_id: str, topic: str, *,
                                   owned: bool) -> tuple[list[int], list[int], int | None]:
    """(delivered before the pause, delivered by the end, the group's committed offset)."""
    app = new_app(bootstrap, app_id, owned=owned)
    seen: list[int] = []

    async def agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            seen.append(event.message.offset)

    app.agent(app.topic(topic, value_serializer="raw"), name="pause")(agent)
    async with running(app):
        produce_values(bootstrap, topic, [b"0", b"1", b"2"])
        await wait_until(lambda: len(seen) == 3, 30, "the first records")
        assigned = app.consumer.assignment()
        app.consumer.pause_partitions(assigned)  # while the fetcher waits for records
        produce_values(bootstrap, topic, [b"%d" % i for i in range(3, 8)])
        await asyncio.sleep(1.5)  # longer than a fetch waits: any fetch under way returned
        while_paused = list(seen)
        app.consumer.resume_partitions(assigned)
        await wait_until(lambda: len(seen) >= 8, 10, "the records produced while paused")
        await wait_until(lambda: group_committed(bootstrap, app_id, topic) == 8, 30,
                         "the commit of offset 8")
        return while_paused, list(seen), group_committed(bootstrap, app_id, topic)


def test_records_fetched_while_their_partition_was_paused_are_delivered_after_resume(
        kafka_broker: Any, topics: Topics) -> None:
    """Faust's fetch took its live set of active partitions: pausing all of them while a
    fetch waited made aiokafka return every partition's records, which Faust then dropped."""
    name = topics.create("pause")
    try:
        while_paused, seen, committed = asyncio.run(pause_all_produce_resume(
            kafka_broker.bootstrap, f"{topics.prefix}-pause", name, owned=True))
    finally:
        delete_app_topics(topics)
    assert while_paused == [0, 1, 2]
    assert seen == list(range(8))
    assert committed == 8
