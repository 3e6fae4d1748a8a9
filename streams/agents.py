"""The worker's agents: ingest (stateless) and archive (stateful), plus the maintenance timer.

ingest:   <prefix>.raw.<unit>        -> decode, validate, enrich -> <prefix>.internal.by-person
                                                                  \\-> <prefix>.deadletter
archive:  <prefix>.internal.by-person -> dedup, apply, chain      -> <prefix>.archive.updates
timer:    scans the local archives    -> maintenance ticks         -> <prefix>.internal.by-person

Re-keying through the by-person topic partitions everything downstream by person key, so any
number of workers share the load and each person's changes are applied in order by one worker.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import Counter
from typing import Any

import faust
import orjson
from faust.streams import _current_event
from faust.types import TP

from creditbus import metrics
from creditbus.archive import person
from creditbus.archive.event import (
    EnrichedEvent,
    Internal,
    MaintenanceTick,
    pack_internal,
    parse_internal_all,
)
from creditbus.archive.timeutil import china_date
from creditbus.catalog.models import Catalog
from creditbus.contract.wire import Wire
from creditbus.deadletter import dead_letter_headers, mask_ids_in_bytes
from creditbus.ingest import Ingestor, Rejection
from creditbus.security.keys import private_keys_from_settings
from creditbus.settings import Settings
from creditbus.topics import by_person_topic, deadletter_topic, raw_topic, updates_topic
from streams.partitioning import person_partition
from streams.tables import ArchiveTables, keep_recent, recall

log = logging.getLogger("creditbus.worker")

ARCHIVE_UPDATE = "cn.gov.ganzhou.creditbus.ArchiveUpdate"
DAY_MS = 86_400_000
INGEST_BATCH = 1000
INGEST_WITHIN_S = 0.05
ARCHIVE_BATCH = 2000
ARCHIVE_WITHIN_S = 0.05


class Topology:
    """Registers topics, tables, agents and timers on a Faust app."""

    def __init__(self, app: faust.App, settings: Settings, catalog: Catalog, wire: Wire) -> None:
        prefix = settings.topic_prefix
        self.app = app
        self.wire = wire
        self.horizon_ms = settings.dedup_horizon_days * DAY_MS
        self.ingestor = Ingestor(catalog, wire, settings.person_key_secret, prefix,
                                 private_keys_from_settings(settings))
        raw = dict(key_serializer="raw", value_serializer="raw")
        self.inbound = app.topic(*(raw_topic(prefix, u.code) for u in catalog.units), **raw)
        self.by_person_name = by_person_topic(prefix)
        self.updates_name = updates_topic(prefix)
        self.by_person = app.topic(self.by_person_name, partitions=settings.partitions, **raw)
        self.deadletters = app.topic(deadletter_topic(prefix), **raw)
        self.tables = ArchiveTables(app, settings.partitions)
        app.agent(self.inbound, name="ingest")(self.ingest)
        app.agent(self.by_person, name="archive")(self.archive)
        app.timer(settings.maintenance_interval_s, on_leader=False)(self.maintenance)

    # -- ingest ---------------------------------------------------------------------------------

    async def ingest(self, stream: faust.StreamT) -> None:
        async for events in stream.take_events(INGEST_BATCH, within=INGEST_WITHIN_S):
            arrived: Counter[tuple[str, str]] = Counter()
            valid = [e for e in [await self._ingest_one(event, arrived) for event in events]
                     if e]
            await self._forward(valid)
            # counted per batch: a labelled child's lookup costs more than its increment
            for (unit, topic), count in arrived.items():
                metrics.EVENTS_IN.labels(unit, topic).inc(count)
            for unit, count in Counter(item.unit for item in valid).items():
                metrics.EVENTS_VALID.labels(unit).inc(count)

    async def _ingest_one(self, event: faust.EventT,
                          arrived: Counter[tuple[str, str]]) -> EnrichedEvent | None:
        msg = event.message
        value: bytes | None = event.value
        result = self.ingestor.process(value, msg.topic, msg.partition, msg.offset)
        arrived[(result.unit or "unknown", msg.topic)] += 1
        if isinstance(result, Rejection):
            metrics.EVENTS_INVALID.labels(result.unit or "unknown", result.code).inc()
            await self._dead_letter("ingest", result.code, result.message, msg.topic,
                                    msg.partition, msg.offset, mask_ids_in_bytes(value or b""),
                                    msg.key, result.unit)
            return None
        return result

    async def _forward(self, valid: list[EnrichedEvent]) -> None:
        """Send a batch's valid events to the by-person topic, packed per partition."""
        count = self.app.consumer.topic_partitions(self.by_person_name)
        if not count:  # metadata not known yet: one keyed message each, partitioned alike
            for item in valid:
                await self._send(self.by_person_name, item.person_key.encode(), item.to_bytes())
            return
        per_partition: dict[int, list[EnrichedEvent]] = {}
        for item in valid:
            per_partition.setdefault(person_partition(item.person_key, count), []).append(item)
        for partition, items in per_partition.items():
            for pack in pack_internal(items):
                await self._send(self.by_person_name, None, pack, partition)

    # -- archive --------------------------------------------------------------------------------

    async def archive(self, stream: faust.StreamT) -> None:
        async for events in stream.take_events(ARCHIVE_BATCH, within=ARCHIVE_WITHIN_S):
            await self._archive_batch(events)

    async def _archive_batch(self, events: list[faust.EventT]) -> None:
        """Apply a batch, one load and one save per person however many of its events it has.

        Grouping keeps each person's events in order; persons are independent of each other.
        """
        by_person: dict[tuple[int, str], list[tuple[faust.EventT, int, Internal]]] = {}
        for event in events:
            msg = event.message
            try:
                items = parse_internal_all(event.value)
            except (ValueError, TypeError, KeyError) as exc:
                await self._dead_letter("archive", "INTERNAL_MESSAGE_INVALID", str(exc),
                                        msg.topic, msg.partition, msg.offset, b"", msg.key, None)
                continue
            for index, item in enumerate(items):
                by_person.setdefault((msg.partition, item.person_key), []).append(
                    (event, index, item))
        committed = {p: self._committed(p) for p, _pk in by_person}
        for (partition, pk), items in by_person.items():
            # The table's store and changelog partition follow the current event, a context
            # variable of this task. Only it is set: the stream's own `current_event` belongs
            # to the task filling the next batch meanwhile.
            token = _current_event.set(weakref.ref(items[-1][0]))
            try:
                await self._apply_person(pk, partition, committed[partition], items)
            finally:
                _current_event.reset(token)

    async def _apply_person(self, pk: str, partition: int, committed: int | None,
                            items: list[tuple[faust.EventT, int, Internal]]) -> None:
        archive = self.tables.load(pk)
        changed = False
        key = pk.encode()
        now = time.time()
        for event, index, item in items:
            offset = event.message.offset
            if isinstance(item, EnrichedEvent):
                out = person.apply_event(archive, item, partition=partition, offset=offset,
                                         horizon_ms=self.horizon_ms, index=index)
            else:
                out = person.apply_tick(archive, item, partition=partition, offset=offset,
                                        horizon_ms=self.horizon_ms, index=index)
            if out.result == person.REPLAY and out.replay_versions:
                await self._replay(archive, key, *out.replay_versions)
            elif out.result in (person.DUPLICATE_EXACT, person.DUPLICATE_CONTENT):
                metrics.DUPLICATES.labels(out.result).inc()
            elif out.result == person.DEAD_LETTER and isinstance(item, EnrichedEvent):
                reason = out.dead_letter_reason or "REJECTED"
                await self._dead_letter(
                    "archive", reason, f"record {item.record_id!r} of unit {item.unit} is unknown",
                    item.source_topic, item.source_partition, item.source_offset, item.to_bytes(),
                    key, item.unit)
            if out.archive is None:
                continue
            archive, changed = out.archive, True
            encoded = [self.wire.encode(ARCHIVE_UPDATE, u) for u in out.updates]
            keep_recent(archive, committed,
                        [(u["version"], offset, d) for u, d in zip(out.updates, encoded,
                                                                   strict=True)])
            for update, data in zip(out.updates, encoded, strict=True):
                await self._send(self.updates_name, key, data)
                metrics.ARCHIVE_UPDATES.labels(update["change"]["kind"]).inc()
                if isinstance(item, EnrichedEvent):
                    metrics.PUBLISH_TO_UPDATE.observe(max(0.0, now - item.published_at / 1000))
        if changed and archive is not None:
            self.tables.save(archive)

    async def _replay(self, archive: dict[str, Any] | None, key: bytes, first: int,
                      last: int) -> None:
        found = recall(archive, first, last)
        if len(found) != last - first + 1:  # cannot happen: kept in the same value as `seen`
            log.error("replay of versions %d..%d found %d of them", first, last, len(found))
        for _version, data in found:
            await self._send(self.updates_name, key, data)
            metrics.REPLAYED_UPDATES.inc()

    def _committed(self, partition: int) -> int | None:
        """The offset the consumer has committed on this by-person partition, if any."""
        committed = getattr(self.app.consumer, "_committed_offset", {})
        return committed.get(TP(self.by_person_name, partition))

    # -- maintenance ----------------------------------------------------------------------------

    async def maintenance(self) -> None:
        """Ask for disclosure expiry and dedup pruning of the persons that need it."""
        now_ms = int(time.time() * 1000)
        today = china_date(now_ms).isoformat()
        cutoff = now_ms - self.horizon_ms
        for key, value in list(self.tables.archives.items()):
            if not value:
                continue
            archive: dict[str, Any] = orjson.loads(value)
            due = archive.get("next_expiry") is not None and archive["next_expiry"] <= today
            stale = any(entry[4] < cutoff for entry in archive["seen"].values())
            if due or stale:
                tick = MaintenanceTick(archive["person_key"], today)
                self.by_person.send_soon(key=key, value=tick.to_bytes())

    async def _send(self, topic: str, key: bytes | None, value: bytes,
                    partition: int | None = None) -> None:
        """Hand a message to the producer without Faust's one-at-a-time send buffer.

        Without a partition the producer partitions by key, as `send_soon` does; the consumer's
        commit flushes the producer first, so a commit still never passes an unsent output.
        """
        await self.app.producer.send(topic, key, value, partition, None, None)

    # -- dead letters ---------------------------------------------------------------------------

    async def _dead_letter(self, stage: str, reason: str, message: str, topic: str,
                           partition: int, offset: int, value: bytes, key: bytes | None,
                           unit: str | None) -> None:
        metrics.DEAD_LETTERS.labels(stage, reason).inc()
        headers = dead_letter_headers(stage=stage, reason=reason, message=message, topic=topic,
                                      partition=partition, offset=offset, unit=unit)
        self.deadletters.send_soon(key=key, value=value, headers=headers)
