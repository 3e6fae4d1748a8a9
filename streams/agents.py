"""The worker's Faust side: the archive agent and the maintenance timer.

edge:     <prefix>.raw.<unit>        -> decode, validate, enrich  -> <prefix>.internal.by-person
          (streams/edge.py, a confluent-kafka stage)               \\-> <prefix>.deadletter
archive:  <prefix>.internal.by-person -> dedup, apply, chain       -> <prefix>.archive.updates
                                                                   \\-> <prefix>.receipts.<unit>
timer:    scans the local archives    -> maintenance ticks          -> <prefix>.internal.by-person

The by-person topic is partitioned by person key, so any number of workers share the load and
each person's changes are applied in order by the one worker that owns its partition, and its
table partition.

The archive agent takes a batch of packs at a time. It applies every event in memory (one
state load per person), sends the updates and dead letters, waits until the broker has them
(`Output.flush`), and only then stores the changed states. So a state that remembers a message
means that message's updates are out: after a crash, a message processed again is either
applied again to the older state (the same updates, byte for byte, which the sink skips) or
recognised as a replay with nothing to send. No replay buffer is needed. Every event's
receipt (accepted, duplicate, rejected) goes out in the same flush as its updates; a replay
sends none, because its receipt went out with the updates before (docs/receipts.md).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

import faust
from creditbus.streams.counts import Counts, apply_counts
from creditbus.streams.output import Output
from creditbus.streams.partitioning import person_partition
from creditbus.streams.tables import ArchiveTable
from creditbus.streams.transport import processing

from creditbus import metrics
from creditbus.archive import person
from creditbus.archive.event import (
    EnrichedEvent,
    Internal,
    MaintenanceTick,
    parse_internal_all,
)
from creditbus.archive.state import PersonState
from creditbus.archive.timeutil import china_date
from creditbus.catalog import default_catalog
from creditbus.constants import ARCHIVE_UPDATE
from creditbus.contract.reasons import ARCHIVE_REASONS
from creditbus.contract.wire import Wire
from creditbus.deadletter import dead_letter_headers
from creditbus.receipts import build as receipts
from creditbus.settings import Settings
from creditbus.topics import by_person_topic, deadletter_topic, receipts_topic, updates_topic

log = logging.getLogger("creditbus.worker")

DAY_MS = 86_400_000
ARCHIVE_BATCH = 200
"""Packs per batch: each holds up to a few thousand events."""
ARCHIVE_WITHIN_S = 0.05


@dataclass
class _Person:
    """A person touched by the batch: its state and the event its changelog entry follows."""

    state: PersonState | None
    event: faust.EventT
    changed: bool = False


class Topology:
    """Registers the by-person topic, the archive table, the agent and the timer on an app."""

    def __init__(self, app: faust.App, settings: Settings, wire: Wire, output: Output) -> None:
        prefix = settings.topic_prefix
        self.app = app
        self.wire = wire
        self.output = output
        self.horizon_ms = settings.dedup_horizon_days * DAY_MS
        self.repair_minimums = default_catalog(settings.catalog_dir).repair_minimums()
        self.partitions = settings.partitions
        self.by_person_name = by_person_topic(prefix)
        self.updates_name = updates_topic(prefix)
        self.deadletters_name = deadletter_topic(prefix)
        self.prefix = prefix
        self.by_person = app.topic(self.by_person_name, partitions=settings.partitions,
                                   key_serializer="raw", value_serializer="raw")
        self.table = ArchiveTable(app, settings.partitions)
        app.agent(self.by_person, name="archive")(self.archive)
        app.timer(settings.maintenance_interval_s, on_leader=False)(self.maintenance)

    async def archive(self, stream: faust.StreamT) -> None:
        async for events in stream.take_events(ARCHIVE_BATCH, within=ARCHIVE_WITHIN_S):
            await self.archive_batch(events)

    async def archive_batch(self, events: list[faust.EventT]) -> None:
        """Apply a batch; send its output; once the output is durable, store the states."""
        persons: dict[str, _Person] = {}
        counts: Counts = Counter()
        now = time.time()
        for event in events:
            msg = event.message
            try:
                items = parse_internal_all(event.value)
            except (ValueError, TypeError, KeyError) as exc:
                self._dead_letter("INTERNAL_MESSAGE_INVALID", str(exc), msg.topic,
                                  msg.partition, msg.offset, b"", msg.key, None)
                continue
            for index, item in enumerate(items):
                entry = persons.get(item.person_key)
                if entry is None:
                    # the store reads the partition of the current event: this person's
                    with processing(event):
                        state = self.table.load(item.person_key)
                    entry = persons[item.person_key] = _Person(state, event)
                entry.event = event
                self._apply(entry, item, msg.partition, msg.offset, index, now, counts)
        await self.output.flush_async()
        apply_counts(counts)
        for pk, entry in persons.items():
            if entry.changed and entry.state is not None:
                with processing(entry.event):
                    self.table.save(pk, entry.state)

    def _apply(self, entry: _Person, item: Internal, partition: int, offset: int, index: int,
               now: float, counts: Counts) -> None:
        if isinstance(item, EnrichedEvent):
            out = person.apply_event(entry.state, item, horizon_ms=self.horizon_ms,
                                     repair_minimums=self.repair_minimums)
        else:
            out = person.apply_tick(entry.state, item, partition=partition, offset=offset,
                                    horizon_ms=self.horizon_ms, index=index)
        if out.result == person.REPLAY:
            counts["REPLAYS", ()] += 1
        elif out.result in (person.DUPLICATE_EXACT, person.DUPLICATE_CONTENT):
            counts["DUPLICATES", (out.result,)] += 1
            if isinstance(item, EnrichedEvent):
                self._receipt(item, receipts.duplicate(
                    item, exact=out.result == person.DUPLICATE_EXACT))
        elif out.result == person.DEAD_LETTER and isinstance(item, EnrichedEvent):
            reason = out.dead_letter_reason or "REJECTED"
            detail = ARCHIVE_REASONS.get(reason, "refused by the archive")
            self._dead_letter(reason, f"{detail} (record {item.record_id!r} of unit {item.unit})",
                              item.source_topic, item.source_partition, item.source_offset,
                              item.to_bytes(), item.person_key.encode(), item.unit)
            self._receipt(item, receipts.rejected_event(item, reason, "record_id",
                                                        item.record_id))
        elif out.result == person.APPLIED and isinstance(item, EnrichedEvent) \
                and out.version is not None:
            self._receipt(item, receipts.accepted(item, out.version))
        if out.state is None:
            return
        entry.state, entry.changed = out.state, True
        key = item.person_key.encode()
        for update in out.updates:
            self.output.send(self.updates_name, self.wire.encode(ARCHIVE_UPDATE, update.datum),
                             key=key)
            counts["ARCHIVE_UPDATES", (update.kind,)] += 1
        if out.updates and isinstance(item, EnrichedEvent):
            metrics.PUBLISH_TO_UPDATE.observe(max(0.0, now - item.published_at / 1000))

    def _receipt(self, event: EnrichedEvent, built: receipts.Built) -> None:
        """Queue an event's receipt; it goes out with the batch's updates, in one flush."""
        key, value = built
        self.output.send(receipts_topic(self.prefix, event.unit), value, key=key)

    # -- maintenance ----------------------------------------------------------------------------

    async def maintenance(self) -> None:
        """Ask for disclosure expiry and dedup pruning of the persons that need it."""
        now_ms = int(time.time() * 1000)
        today = china_date(now_ms).isoformat()
        cutoff = now_ms - self.horizon_ms
        sent = 0
        for pk, state in self.table.items():
            due = state.next_expiry is not None and state.next_expiry <= today
            stale = any(s.at_ms < cutoff for s in state.seen.values())
            if due or stale:
                tick = MaintenanceTick(pk, today)
                self.output.send(self.by_person_name, tick.to_bytes(), key=pk.encode(),
                                 partition=person_partition(pk, self.partitions))
                sent += 1
        if sent:
            await self.output.flush_async()
            log.info("maintenance: %d ticks sent", sent)

    # -- dead letters ---------------------------------------------------------------------------

    def _dead_letter(self, reason: str, message: str, topic: str, partition: int, offset: int,
                     value: bytes, key: bytes | None, unit: str | None) -> None:
        metrics.DEAD_LETTERS.labels("archive", reason).inc()
        log.info("dead letter: stage=archive reason=%s source=%s[%d]@%d", reason, topic,
                 partition, offset)
        headers = dead_letter_headers(stage="archive", reason=reason, message=message,
                                      topic=topic, partition=partition, offset=offset, unit=unit)
        self.output.send(self.deadletters_name, value, key=key, headers=headers)
