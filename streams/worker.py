"""Run one stream worker (`creditbus worker`): the Faust app, and the edge stage in a child
process (streams/edge_process.py)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import faust
from confluent_kafka import KafkaException
from creditbus.streams.agents import Topology
from creditbus.streams.app import create_app
from creditbus.streams.edge_process import EdgeProcess, GroupTiming
from creditbus.streams.output import Output

from creditbus import metrics
from creditbus.catalog import default_catalog
from creditbus.contract.schemas import SchemaStore
from creditbus.contract.wire import Wire
from creditbus.kafka.admin import admin_client, ensure_topics
from creditbus.kafka.clientconf import confluent_auth, confluent_config
from creditbus.logsetup import protect_handlers
from creditbus.settings import Settings
from creditbus.topics import worker_topics

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
    edge = EdgeProcess(GroupTiming(int(app.conf.broker_session_timeout * 1000),
                                   int(app.conf.broker_heartbeat_interval * 1000)))
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
