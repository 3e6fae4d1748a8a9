"""Run one stream worker (`creditbus worker`): the Faust app, and the edge stage in a child
process (streams/edge_process.py)."""

from __future__ import annotations

import logging
from typing import Any

import faust
from creditbus.streams.agents import Topology
from creditbus.streams.app import create_app
from creditbus.streams.edge_process import EdgeProcess, GroupTiming
from creditbus.streams.output import Output

from creditbus import metrics
from creditbus.contract.schemas import SchemaStore
from creditbus.contract.wire import Wire
from creditbus.kafka.admin import ensure_bus_topics
from creditbus.kafka.clientconf import confluent_config
from creditbus.logsetup import protect_handlers
from creditbus.settings import Settings

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
    """Run until stopped. An unreachable broker (BrokerUnavailable) or a taken metrics port
    (ConfigError) ends it before it starts, as one line (creditbus.cli.main)."""
    ensure_bus_topics(settings, "worker")  # BrokerUnavailable when Kafka does not answer
    app, _topology = build(settings)
    edge = EdgeProcess(GroupTiming(int(app.conf.broker_session_timeout * 1000),
                                   int(app.conf.broker_heartbeat_interval * 1000)))
    metrics.serve(settings.worker_metrics_port, "worker")
    worker: Any = _Worker(app, edge, loglevel=_FAUST_LEVELS.get(settings.log_level, "info"),
                          quiet=True)
    worker.execute_from_commandline()
    return 0
