"""The bus's stages inside the test process, against the real broker: no interpreter start-up,
no group timeouts to wait out, seconds per case.

- `InProcessWorker`: what `creditbus worker` runs (streams/worker.py), built by the same code
  (`build`, `build_edge_stage`): the edge stage's confluent-kafka loop in a thread and the Faust
  app (archive agent, archive table, maintenance timer) on the test's event loop.
- `SinkThread`: the sink's batch loop (`run_platform_sink`, connectors/consuming.py) in a
  thread, writing a real SQLite file.

Crashes (SIGKILL) stay with the subprocess cases in tests/faults/; what is proved here is the
behaviour of the topology and of the batch loop themselves.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faust
from creditbus.connectors.backoff import Backoff
from creditbus.connectors.consuming import LoopOptions
from creditbus.connectors.platform.sink import run_platform_sink
from creditbus.streams.agents import Topology
from creditbus.streams.counts import Counts, apply_counts
from creditbus.streams.edge_process import GroupTiming, build_edge_stage
from creditbus.streams.worker import build
from prometheus_client import REGISTRY

from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.kafka.admin import admin_client, ensure_topics
from creditbus.settings import Settings
from creditbus.topics import sink_deadletter_topic, updates_topic, worker_topics
from tests.bus import TEST_WORKER_FAUST

READY_TIMEOUT_S = 60.0


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block (Settings and Faust read the environment)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def worker_settings(bootstrap: str, prefix: str, state_dir: Path, **extra: str) -> Settings:
    """The settings a worker of `prefix` on the session broker reads from its environment."""
    env = {"CREDITBUS_BOOTSTRAP": bootstrap, "CREDITBUS_TOPIC_PREFIX": prefix,
           "CREDITBUS_PERSON_KEY_SECRET": "test-secret", "CREDITBUS_STATE_DIR": str(state_dir),
           "CREDITBUS_HOME": str(state_dir / "home"), "CREDITBUS_WORKER_WEB_PORT": "0",
           **extra}
    with environment(env):
        return Settings.from_env()


def metric_total(name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels` (this process)."""
    total = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                total += sample.value
    return total


def metric_by_label(name: str, label: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and label in sample.labels:
                out[sample.labels[label]] += int(sample.value)
    return out


class InProcessWorker:
    """One stream worker in this process; `async with` starts it and waits until its Faust
    app owns partitions, its table recovery is done and its edge stage is assigned."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: faust.App
        self.topology: Topology
        self.stop = threading.Event()
        self.edge_counts: Counts = Counter()
        self.edge_error: BaseException | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _report(self, counts: Counts) -> None:
        with self._lock:
            self.edge_counts.update(counts)
        apply_counts(counts)

    def _run_edge(self) -> None:
        stage = build_edge_stage(self.settings, self.timing, self.stop, self._report)
        self.edge = stage
        try:
            stage.run()
        except BaseException as exc:  # noqa: BLE001 - reported by `check`
            self.edge_error = exc

    async def __aenter__(self) -> InProcessWorker:
        s = self.settings
        units = [u.code for u in default_catalog(s.catalog_dir).units]
        specs = worker_topics(s.topic_prefix, units, s.partitions, s.replication)
        admin = admin_client(s.bootstrap)
        ensure_topics(admin, specs)
        # as a subprocess, the interpreter's start-up hides the moment a new topic's leaders
        # are not known yet; in-process the stages would start within it
        await wait_until(lambda: have_leaders(admin, [spec.name for spec in specs]),
                         READY_TIMEOUT_S, "the new topics' leaders")
        with environment(TEST_WORKER_FAUST):  # Faust reads these from the environment
            self.app, self.topology = build(s)
        # the edge stage's membership follows the Faust app's, as in `run_worker`
        self.timing = GroupTiming(int(self.app.conf.broker_session_timeout * 1000),
                                  int(self.app.conf.broker_heartbeat_interval * 1000))
        self._thread = threading.Thread(target=self._run_edge, name="edge", daemon=True)
        self._thread.start()
        await self.app.start()
        try:
            await wait_until(self.ready, READY_TIMEOUT_S, "the in-process worker to be ready")
        except BaseException:
            await self.close()
            raise
        return self

    def ready(self) -> bool:
        app = self.app
        self.check()
        return bool(app.consumer.assignment()) and not app.rebalancing \
            and app.tables.recovery.completed.is_set()

    def check(self) -> None:
        """Fail when the edge stage died or the Faust app crashed."""
        if self.edge_error is not None:
            raise AssertionError(f"the edge stage failed: {self.edge_error!r}")
        if self.app.crashed:
            raise AssertionError(f"the Faust app crashed: {self.app.crash_reason!r}")

    async def close(self) -> None:
        self.stop.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 30)
        await self.app.stop()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def have_leaders(admin: Any, names: list[str]) -> bool:
    """Every partition of every topic in `names` has a leader, as the metadata says now."""
    topics = admin.list_topics(timeout=10).topics
    for name in names:
        meta = topics.get(name)
        if meta is None or meta.error is not None or not meta.partitions:
            return False
        if any(p.error is not None or p.leader < 0 for p in meta.partitions.values()):
            return False
    return True


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
                     interval: float = 0.05) -> None:
    """Poll `predicate` on the event loop until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


class SinkThread(threading.Thread):
    """`run_platform_sink` in a thread: the platform sink's batch loop writing `database_url`,
    in the group `group`, until `stop` is set (or idle / `max_batches`, as configured)."""

    def __init__(self, bootstrap: str, prefix: str, database_url: str, *,
                 group: str | None = None, instance_id: str | None = None,
                 batch_size: int = 200, batch_ms: int = 50, until_idle: float | None = None,
                 max_batches: int | None = None) -> None:
        super().__init__(daemon=True, name=f"sink-{instance_id or 'anonymous'}")
        self.options = LoopOptions(
            bootstrap=bootstrap, topic=updates_topic(prefix),
            group=group or f"sink-{uuid.uuid4().hex[:8]}", batch_size=batch_size,
            batch_ms=batch_ms, until_idle=until_idle, max_batches=max_batches,
            instance_id=instance_id, backoff=Backoff(initial=0.05, factor=2.0, cap=0.5))
        self.database_url = database_url
        self.dead_letter_topic = sink_deadletter_topic(prefix)
        self.stop_event = threading.Event()
        self.code: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.code = run_platform_sink(self.options, self.database_url,
                                          self.dead_letter_topic, Wire(), self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - reported by `finish`
            self.error = exc

    def finish(self, timeout: float = 30.0) -> int | None:
        """Ask the loop to stop after its current batch; return its exit code."""
        self.stop_event.set()
        self.join(timeout)
        assert not self.is_alive(), "the sink loop did not stop"
        if self.error is not None:
            raise AssertionError(f"the sink loop failed: {self.error!r}") from self.error
        return self.code


def run_async(coroutine: Any) -> Any:
    """`asyncio.run`, for tests that drive the Faust app."""
    return asyncio.run(coroutine)
