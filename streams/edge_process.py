"""The edge stage as a child process of `creditbus worker`: started, watched and stopped with
the Faust worker, its metrics relayed to the worker's Prometheus endpoint.

A process, not a thread: both stages are CPU-bound Python, and in one process they would share
one interpreter lock. Worse, every C call that lets go of the lock (an HMAC, a flush) would
hand it to the other stage for up to a switch interval (5 ms): measured, the edge thread spent
40 % of its time waiting inside `hmac.digest`. In a process of its own it has a core to itself.

The child stops on SIGTERM (the worker forwards it; a SIGTERM to the process group reaches it
directly) and when its parent is gone (a SIGKILLed worker leaves no orphan that keeps
consuming). When the child stops cleanly, the worker stops cleanly too; when it fails (any
other exit), the worker crashes (exit code 1), so that a supervisor restarts both.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import threading
from dataclasses import dataclass
from typing import Any

from creditbus.streams.counts import Counts, apply_counts
from creditbus.streams.edge import EdgeStage
from creditbus.streams.output import Output
from mode import Service

from creditbus.catalog import default_catalog
from creditbus.contract.schemas import SchemaStore
from creditbus.contract.wire import Wire
from creditbus.ingest import Ingestor
from creditbus.kafka.clientconf import confluent_config
from creditbus.logsetup import configure_logging
from creditbus.security.keys import private_keys_from_settings
from creditbus.settings import Settings
from creditbus.topics import by_person_topic, deadletter_topic, edge_group_id, raw_topic

log = logging.getLogger("creditbus.worker")

WATCH_S = 0.2
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class GroupTiming:
    """The consumer group timing of the Faust app, which the edge's membership follows, so a
    dead worker's inbound partitions move as soon as its by-person ones."""

    session_timeout_ms: int
    heartbeat_interval_ms: int


def build_edge_stage(settings: Settings, timing: GroupTiming, stop: threading.Event,
                     report: Any) -> EdgeStage:
    prefix = settings.topic_prefix
    catalog = default_catalog(settings.catalog_dir)
    ingestor = Ingestor(catalog, Wire(SchemaStore(settings.schema_dir)),
                        settings.person_key_secret, prefix, private_keys_from_settings(settings))
    return EdgeStage(
        ingestor,
        confluent_config(settings, **{
            "group.id": edge_group_id(prefix), "client.id": "creditbus-edge",
            "session.timeout.ms": timing.session_timeout_ms,
            "heartbeat.interval.ms": timing.heartbeat_interval_ms}),
        Output(confluent_config(settings, **{"client.id": "creditbus-edge-out"})),
        inbound=[raw_topic(prefix, u.code) for u in catalog.units],
        by_person=by_person_topic(prefix), deadletters=deadletter_topic(prefix),
        stop=stop, report=report)


def child_main(timing: GroupTiming, counts: Any, parent_pid: int) -> None:
    """The child process: run the edge stage until SIGTERM or the parent's end."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def watch_parent() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                log.warning("edge: the worker process is gone; stopping")
                stop.set()

    threading.Thread(target=watch_parent, name="creditbus-edge-watch", daemon=True).start()
    build_edge_stage(settings, timing, stop, counts.put).run()


class EdgeProcess(Service):
    """Runs the edge stage's child process for as long as the Faust worker runs."""

    def __init__(self, timing: GroupTiming, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timing = timing
        context = multiprocessing.get_context("spawn")
        self.counts: Any = context.Queue()
        self.process = context.Process(target=child_main, name="creditbus-edge",
                                       args=(timing, self.counts, os.getpid()))
        self.stopping = False

    async def on_start(self) -> None:
        self.process.start()
        log.info("edge stage started (pid %s)", self.process.pid)

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            self._relay()
            if not self.process.is_alive() and not self.stopping:
                code = self.process.exitcode
                if code == 0:  # stopped on request: SIGTERM to the group reaches it first
                    log.info("the edge stage stopped; stopping the worker")
                    self.stopping = True
                    os.kill(os.getpid(), signal.SIGTERM)  # the worker's own clean shutdown
                    return
                log.error("the edge stage exited (code %s); stopping the worker", code)
                await self.crash(RuntimeError(f"the edge stage exited with code {code}"))
                return
            await asyncio.sleep(WATCH_S)

    def _relay(self) -> None:
        """Apply the metric counts the child reported so far."""
        while True:
            try:
                batch: Counts = self.counts.get_nowait()
            except queue.Empty:
                return
            apply_counts(batch)

    async def on_stop(self) -> None:
        self.stopping = True
        if self.process.is_alive():
            self.process.terminate()  # SIGTERM: the stage finishes its batch and leaves
            await asyncio.get_running_loop().run_in_executor(
                None, self.process.join, STOP_TIMEOUT_S)
            if self.process.is_alive():
                log.warning("the edge stage did not stop in %.0f s; killing it",
                            STOP_TIMEOUT_S)
                self.process.kill()
        self._relay()
