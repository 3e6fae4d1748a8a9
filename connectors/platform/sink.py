"""The platform sink: archive updates into the platform database, exactly once in effect.

Each batch is one database transaction holding the rows it changes *and* the next offset of
every partition it read (`cb_sink_offset`). On start and on every assignment the consumer is
positioned at those stored offsets, not Kafka's: a crash anywhere leaves either the whole batch
with its offsets or neither, and the batch is read again. Within a batch, an update whose
version is not newer than the person's stored `archive_version` is skipped, so duplicates from
the at-least-once streams (identical bytes, same partition, in order) change nothing.

A batch that fails with a row-level error (a value the database refuses) is written again row
by row, each row under a savepoint: the refused updates go to the sink dead-letter topic and
the rest are committed, with the offsets passing over all of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from creditbus.connectors.backoff import Backoff
from creditbus.connectors.consuming import BatchLoop, LoopOptions
from creditbus.connectors.deadletters import DeadLetters
from creditbus.connectors.errors import SinkFatal, TransientError
from creditbus.connectors.platform.plan import Plan, plan_batch
from creditbus.connectors.updates import Incoming, Prepared, prepare_all

from creditbus import metrics
from creditbus.contract.wire import Wire
from creditbus.platformdb.db import ErrorKind, PlatformDB, now_text, open_db, redact_url

log = logging.getLogger("creditbus.sink")

CHAIN_BREAKS = metrics.SINK_CHAIN_BREAKS

CONSTRAINT_VIOLATION = "SINK_CONSTRAINT_VIOLATION"
INVALID_VALUE = "SINK_INVALID_VALUE"


@dataclass
class Batch:
    """A consumed batch, decoded once; survives retries."""

    items: list[Prepared]
    offsets: dict[int, int]  # partition -> next offset
    isolate: bool = False  # write row by row (after a row-level failure)
    dead_lettered: set[tuple[int, int]] = field(default_factory=set)  # (partition, offset)


def describe_error(exc: BaseException) -> str:
    """A one-line description of a database error (no DETAIL lines, which may hold values)."""
    text = str(exc).strip().splitlines()
    sqlstate = getattr(exc, "sqlstate", None)
    state = f" [{sqlstate}]" if sqlstate else ""
    return f"{type(exc).__name__}{state}: {text[0][:300] if text else ''}"


def row_reason(exc: BaseException) -> str:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return CONSTRAINT_VIOLATION if "IntegrityError" in names else INVALID_VALUE


class PlatformWriter:
    """Writes batches of archive updates to the platform database (a `consuming.Writer`)."""

    commit_to_kafka = "async"  # for lag tools only: the database holds the true offsets

    def __init__(self, db: PlatformDB, wire: Wire, dead_letters: DeadLetters, group: str,
                 topic: str) -> None:
        self.db = db
        self.wire = wire
        self.dead_letters = dead_letters
        self.group = group
        self.topic = topic

    def _transient(self, exc: Exception) -> Exception:
        if self.db.classify(exc) is ErrorKind.TRANSIENT:
            return TransientError(describe_error(exc))
        return exc

    # -- consuming.Writer ---------------------------------------------------------------------

    def starting_offsets(self, partitions: list[int]) -> dict[int, int] | None:
        try:
            stored = self.db.load_offsets(self.group, self.topic)
        except Exception as exc:
            raise self._transient(exc) from exc
        return {p: stored[p] for p in partitions if p in stored}

    def prepare(self, messages: list[Incoming]) -> Batch:
        offsets: dict[int, int] = {}
        for msg in messages:
            offsets[msg.partition] = max(offsets.get(msg.partition, 0), msg.offset + 1)
        return Batch(prepare_all(self.wire, messages), offsets)

    def write(self, batch: Batch) -> None:
        started = time.perf_counter()
        try:
            plan = self._transaction(batch)
        except TransientError:
            raise
        except Exception as exc:
            kind = self.db.classify(exc)
            if kind is ErrorKind.TRANSIENT:
                raise self._transient(exc) from exc
            if kind is ErrorKind.ROW and not batch.isolate:
                log.warning("batch of %d refused (%s); writing it row by row",
                            len(batch.items), describe_error(exc))
                batch.isolate = True
                return self.write(batch)
            raise
        self._observe(batch, plan, time.perf_counter() - started)

    # -- the transaction ----------------------------------------------------------------------

    def _transaction(self, batch: Batch) -> Plan:
        accepted = [i for i in batch.items if not i.rejected]
        refused = [(i, str(i.reason), i.message) for i in batch.items if i.rejected]
        committed_at = now_text()
        with self.db.transaction():
            if batch.isolate:
                plan, failed = self._one_by_one(accepted, committed_at)
                refused += failed
            else:
                plan = plan_batch(accepted, self.db.person_heads(
                    [i.person_key for i in accepted]), committed_at)
                self._write_plan(plan)
            self._dead_letter(batch, refused)
            self.db.store_offsets(self.group, self.topic, batch.offsets, committed_at)
        return plan

    def _write_plan(self, plan: Plan) -> None:
        self.db.insert_log(plan.logs)
        self.db.upsert_persons(list(plan.persons.values()))
        self.db.upsert_records(list(plan.records.values()))

    def _one_by_one(self, items: Sequence[Prepared], committed_at: str,
                    ) -> tuple[Plan, list[tuple[Prepared, str, str]]]:
        plan = Plan()
        failed: list[tuple[Prepared, str, str]] = []
        for item in items:
            try:
                with self.db.savepoint():
                    one = plan_batch([item], self.db.person_heads([item.person_key]),
                                     committed_at)
                    self._write_plan(one)
            except Exception as exc:
                if self.db.classify(exc) is not ErrorKind.ROW:
                    raise
                failed.append((item, row_reason(exc), describe_error(exc)))
                log.warning("update %s v%d refused by the database: %s",
                            item.person_key, item.version, describe_error(exc))
                continue
            plan.merge(one)
        return plan, failed

    def _dead_letter(self, batch: Batch, refused: list[tuple[Prepared, str, str]]) -> None:
        sent = []
        for item, reason, message in refused:
            where = (item.msg.partition, item.msg.offset)
            if where in batch.dead_lettered:
                continue
            extra = {}
            if item.person_key:
                extra = {"person.key": item.person_key, "person.version": str(item.version)}
            self.dead_letters.send(item.msg, reason, message, unit=item.unit, extra=extra)
            sent.append(where)
        self.dead_letters.flush()
        batch.dead_lettered.update(sent)

    # -- after the commit ---------------------------------------------------------------------

    def _observe(self, batch: Batch, plan: Plan, seconds: float) -> None:
        now = time.time()
        metrics.SINK_BATCH_SIZE.observe(len(batch.items))
        metrics.SINK_WRITE_SECONDS.observe(seconds)
        metrics.SINK_ROWS.inc(len(plan.applied))
        metrics.SINK_SKIPPED.inc(plan.skipped)
        metrics.SINK_LAST_SUCCESS.set(now)
        for item in plan.applied:
            metrics.PUBLISH_TO_COMMIT.observe(max(0.0, now - item.published_at))
        for brk in plan.breaks:
            CHAIN_BREAKS.labels(brk.kind).inc()
            log.warning("person %s: version %d applied over stored version %d (%s); "
                        "`creditbus verify` reports the broken chain", brk.person_key,
                        brk.version, brk.stored_version,
                        "versions skipped" if brk.kind == "gap" else "previous hash differs")
        log.debug("batch of %d: %d applied, %d skipped, offsets %s", len(batch.items),
                  len(plan.applied), plan.skipped, batch.offsets)


def migrate_with_retry(db: PlatformDB, backoff: Backoff, stop: threading.Event) -> int:
    """Create or migrate the schema, retrying while the database is unavailable."""
    attempt = 0
    while True:
        try:
            return db.prepare_schema()
        except Exception as exc:
            if db.classify(exc) is not ErrorKind.TRANSIENT:
                raise SinkFatal(f"cannot create the platform schema: {describe_error(exc)}"
                                ) from exc
            db.close()
            delay = backoff.delay(attempt)
            attempt += 1
            metrics.SINK_RETRIES.inc()
            log.warning("database unavailable (%s); retrying in %.2f s", describe_error(exc),
                        delay)
            if stop.wait(delay):
                raise SinkFatal("stopped before the database became available") from exc


def run_platform_sink(options: LoopOptions, database_url: str, dead_letter_topic: str,
                      wire: Wire, stop: threading.Event | None = None) -> int:
    """Run the sink until stopped (or idle / done); returns the exit code."""
    stop = stop or threading.Event()
    db = open_db(database_url)
    dead_letters = DeadLetters(options.bootstrap, dead_letter_topic, options.consumer_config)
    try:
        version = migrate_with_retry(db, options.backoff, stop)
        log.info("platform database %s (schema version %d); reading %s as group %s",
                 redact_url(database_url), version, options.topic, options.group)
        writer = PlatformWriter(db, wire, dead_letters, options.group, options.topic)
        return BatchLoop(options, writer, stop).run()
    finally:
        dead_letters.close()
        db.close()


__all__ = ["CHAIN_BREAKS", "Batch", "PlatformWriter", "run_platform_sink"]
