"""Run one stream worker process (`creditbus worker`): the edge stage and the Faust app."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

import faust
from confluent_kafka import KafkaException
from mode import Service

from creditbus import metrics
from creditbus.catalog import default_catalog
from creditbus.catalog.models import Catalog
from creditbus.contract.schemas import SchemaStore
from creditbus.contract.wire import Wire
from creditbus.ingest import Ingestor
from creditbus.kafka.admin import admin_client, ensure_topics
from creditbus.kafka.clientconf import confluent_auth, confluent_config
from creditbus.logsetup import protect_handlers
from creditbus.security.keys import private_keys_from_settings
from creditbus.settings import Settings
from creditbus.topics import (
    by_person_topic,
    deadletter_topic,
    edge_group_id,
    raw_topic,
    worker_topics,
)
from streams.agents import Topology
from streams.app import create_app
from streams.edge import EdgeStage, run_in_thread, wait_stopped
from streams.output import Output

_FAUST_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error",
                 "CRITICAL": "crit"}


class _Worker(faust.Worker):
    """A Faust worker whose log handlers mask identity numbers, without the terminal spinner.

    At WARNING and above Faust feeds its spinner from a DEBUG handler on the root logger,
    which makes every debug call of aiokafka and Faust build a log record: a service that
    logs to a file pays for a progress animation nobody sees.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)
        protect_handlers(logger)


class EdgeService(Service):
    """Runs the edge stage's thread for as long as the Faust worker runs; a failure of the
    stage crashes the worker (exit code 1), so a supervisor restarts the whole process."""

    def __init__(self, stage: EdgeStage, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.thread: threading.Thread | None = None

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()

        def crashed(exc: BaseException) -> None:
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.crash(exc)))

        self.thread = run_in_thread(self.stage, crashed)

    async def on_stop(self) -> None:
        self.stage.stop.set()
        if self.thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, wait_stopped, self.thread)


def edge_stage(settings: Settings, catalog: Catalog, wire: Wire, app: faust.App) -> EdgeStage:
    """The edge stage, its group membership timed like the Faust app's (the app reads
    BROKER_SESSION_TIMEOUT and BROKER_HEARTBEAT_INTERVAL), so a dead worker's inbound
    partitions move as soon as its by-person ones."""
    prefix = settings.topic_prefix
    ingestor = Ingestor(catalog, wire, settings.person_key_secret, prefix,
                        private_keys_from_settings(settings))
    return EdgeStage(
        ingestor,
        confluent_config(settings, **{
            "group.id": edge_group_id(prefix), "client.id": "creditbus-edge",
            "session.timeout.ms": int(app.conf.broker_session_timeout * 1000),
            "heartbeat.interval.ms": int(app.conf.broker_heartbeat_interval * 1000)}),
        Output(confluent_config(settings, **{"client.id": "creditbus-edge-out"})),
        inbound=[raw_topic(prefix, u.code) for u in catalog.units],
        by_person=by_person_topic(prefix), deadletters=deadletter_topic(prefix),
        stop=threading.Event())


def build(settings: Settings) -> tuple[faust.App, Topology]:
    app = create_app(settings)
    output = Output(confluent_config(settings, **{"client.id": "creditbus-archive-out"}))
    topology = Topology(app, settings, Wire(SchemaStore(settings.schema_dir)), output)
    return app, topology


def run_worker(settings: Settings) -> int:
    """Run until stopped; an unreachable broker or a taken port is one line and exit code 2."""
    catalog = default_catalog(settings.catalog_dir)
    try:
        ensure_topics(admin_client(settings.bootstrap, confluent_auth(settings)),
                      worker_topics(settings.topic_prefix, [u.code for u in catalog.units],
                                    settings.partitions, settings.replication))
    except KafkaException as exc:
        print(f"error: cannot reach Kafka at {settings.bootstrap}: {exc.args[0].str()}",
              file=sys.stderr)
        return 2
    app, _topology = build(settings)
    edge = EdgeService(edge_stage(settings, catalog, Wire(SchemaStore(settings.schema_dir)), app))
    try:
        metrics.serve(settings.worker_metrics_port, "worker")
    except OSError as exc:
        print(f"error: cannot serve metrics on port {settings.worker_metrics_port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    worker: Any = _Worker(app, edge, loglevel=_FAUST_LEVELS.get(settings.log_level, "info"),
                          quiet=True)
    worker.execute_from_commandline()
    return 0
