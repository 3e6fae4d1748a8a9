"""faust-streaming's recovery race, driven deterministically on the real broker.

After a rebalance Faust 0.15.3 resumes the stream partitions, seeks them to their committed
offsets and then clears the stream buffers (`Recovery.on_recovery_completed`, and
`_resume_streams` in apps without tables). A batch fetched before the seek but delivered after
it moves the read offset past records that the clear then drops: they are never delivered
again, never acked, and the committed offset stops below them (faust-streaming #596).

The test forces that interleaving with the real consumer, recovery and broker, through
Faust's public seams: a real rebalance (the consumer resubscribes), the records produced while
the partitions are revoked, the seek held until the fetcher holds a batch of them, the batch
delivered after the seek, and the agent busy with the first record until the buffers are
cleared. Where the transport keeps the partition paused during the seek (the owned one), no
batch can be fetched before it, and nothing is held.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest

from tests.conftest import Topics
from tests.integration.test_transport import (
    delete_app_topics,
    group_committed,
    new_app,
    produce_values,
    ready,
    running,
    wait_until,
)

BEFORE = 10  # records processed and committed before the rebalance: offsets 0..9
DURING = 10  # records produced while the partition is revoked: offsets 10..19
AFTER = 10  # records produced once the app is ready again: offsets 20..29
TOTAL = BEFORE + DURING + AFTER


@dataclass
class Race:
    """The instrumented interleaving of the rebalance of `topic` that follows `arm`."""

    topic: str
    armable: bool = False  # arm at the next revocation
    armed: bool = False
    fetch_during_seek: bool = False  # the partition was resumed before the recovery's seek
    batch_seen: asyncio.Event = field(default_factory=asyncio.Event)
    seek_done: asyncio.Event = field(default_factory=asyncio.Event)
    batch_delivered: asyncio.Event = field(default_factory=asyncio.Event)
    cleared: asyncio.Event = field(default_factory=asyncio.Event)

    def install(self, app: faust.App, bootstrap: str) -> None:
        """Wrap the consumer's and the app's public entry points; arm at the revocation that
        follows `armable`."""
        consumer = app.consumer
        recovery = app.tables.recovery
        self._wrap_resume(consumer, recovery.completed)
        self._wrap_seek(consumer)
        self._wrap_callback(consumer)
        self._wrap_clear(app)

        async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
            if self.armable and not self.armed:
                produce_values(bootstrap, self.topic,
                               (b"%d" % i for i in range(BEFORE, BEFORE + DURING)))
                recovery.completed.clear()  # set again when this rebalance's recovery ends
                self.armed = True

        app.on_partitions_revoked.connect(on_revoked, weak=False)

    def _wrap_resume(self, consumer: Any, recovery_completed: asyncio.Event) -> None:
        resume = consumer.resume_partitions

        def resumed(tps: Any) -> None:
            tps = set(tps)
            if self.armed and consumer.flow_active and not recovery_completed.is_set() and any(
                    tp.topic == self.topic for tp in tps):
                # fetchable, with the fetcher running, before the recovery's last seek
                self.fetch_during_seek = True
            resume(tps)

        consumer.resume_partitions = resumed

    def _wrap_seek(self, consumer: Any) -> None:
        perform_seek = consumer.perform_seek

        async def seek() -> None:
            during = self.fetch_during_seek and not self.seek_done.is_set()
            if during:  # let the fetcher take a batch from the pre-seek position first
                await self.batch_seen.wait()
            await perform_seek()
            if during:  # and deliver it after the seek reset the read offsets
                self.seek_done.set()
                await self.batch_delivered.wait()

        consumer.perform_seek = seek

    def _wrap_callback(self, consumer: Any) -> None:
        callback = consumer.callback

        async def on_message(message: Any) -> None:
            if self.fetch_during_seek and message.topic == self.topic:
                if not self.batch_seen.is_set():
                    self.batch_seen.set()
                    await self.seek_done.wait()
                await callback(message)
                if message.offset == BEFORE + DURING - 1:
                    self.batch_delivered.set()
                return
            await callback(message)

        consumer.callback = on_message

    def _wrap_clear(self, app: faust.App) -> None:
        flow_resume = app.flow_control.resume

        def resume() -> None:
            flow_resume()  # clears the stream buffers
            if self.seek_done.is_set():
                self.cleared.set()

        app.flow_control.resume = resume  # type: ignore[method-assign]


def race_app(bootstrap: str, app_id: str, topic: str, *, owned: bool, with_table: bool,
             agent: Any) -> faust.App:
    app = new_app(bootstrap, app_id, owned=owned)
    if with_table:
        app.Table("t", default=int, partitions=1)
    app.agent(app.topic(topic, value_serializer="raw"), name="race")(agent)
    return app


async def run_race(bootstrap: str, app_id: str, topic: str, *, owned: bool,
                   with_table: bool) -> tuple[set[int], int | None, bool]:
    """(offsets processed, the group's committed offset at the end, fetch during the seek)."""
    race = Race(topic)
    processed: set[int] = set()

    async def agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            offset = event.message.offset
            if offset == BEFORE and race.fetch_during_seek:  # busy with the first record
                await race.cleared.wait()  # of the new generation until the buffers clear
            processed.add(offset)

    async def idle(stream: faust.StreamT) -> None:
        async for event in stream.events():
            raise AssertionError(f"the joining member got record {event.message.offset}")

    app = race_app(bootstrap, app_id, topic, owned=owned, with_table=with_table, agent=agent)
    race.install(app, bootstrap)
    async with running(app):
        produce_values(bootstrap, topic, (b"%d" % i for i in range(BEFORE)))
        await wait_until(lambda: processed >= set(range(BEFORE)), 30, "the first records")
        await wait_until(lambda: group_committed(bootstrap, app_id, topic) == BEFORE, 30,
                         "the first commit")
        race.armable = True
        joining = race_app(bootstrap, app_id, topic, owned=owned, with_table=with_table,
                           agent=idle)
        async with running(joining, owning=False):  # a real rebalance; we keep `topic`
            await wait_until(lambda: race.armed and ready(app), 60,
                             "the rebalance to complete")
            assert {tp.topic for tp in app.consumer.assignment()} >= {topic}
            produce_values(bootstrap, topic,
                           (b"%d" % i for i in range(BEFORE + DURING, TOTAL)))
            await wait_until(lambda: TOTAL - 1 in processed and not app.consumer.unacked, 30,
                             "the last record processed and acked")
            await app.consumer.commit()
            committed = group_committed(bootstrap, app_id, topic)
    return processed, committed, race.fetch_during_seek


def test_stock_faust_drops_records_fetched_during_the_recovery_seek_and_the_commit_sticks(
        kafka_broker: Any, topics: Topics) -> None:
    topic = topics.create("race")
    try:
        processed, committed, during = asyncio.run(run_race(
            kafka_broker.bootstrap, f"{topics.prefix}-stock", topic, owned=False,
            with_table=True))
    finally:
        delete_app_topics(topics)
    assert during, "Faust resumed the partition only after the seek: the race is gone"
    held = BEFORE  # the record the agent was busy with when the buffers were cleared
    hole = set(range(held + 1, BEFORE + DURING - 1))
    assert set(range(TOTAL)) - processed == hole
    assert committed == held + 1, "the commit got past the hole"


@pytest.mark.parametrize("with_table", [True, False], ids=["tables", "no-tables"])
def test_owned_transport_delivers_every_record_and_commits_to_the_end(
        kafka_broker: Any, topics: Topics, with_table: bool) -> None:
    topic = topics.create("race")
    try:
        processed, committed, during = asyncio.run(run_race(
            kafka_broker.bootstrap, f"{topics.prefix}-owned", topic, owned=True,
            with_table=with_table))
    finally:
        delete_app_topics(topics)
    assert not during, "the stream partition was fetchable during the seek"
    assert processed == set(range(TOTAL))
    assert committed == TOTAL
