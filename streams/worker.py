"""Run one stream worker process (`creditbus worker`)."""

from __future__ import annotations

import logging
from typing import Any

import faust

from creditbus import metrics
from creditbus.catalog import default_catalog
from creditbus.contract.schemas import SchemaStore
from creditbus.contract.wire import Wire
from creditbus.kafka.admin import admin_client, ensure_topics
from creditbus.kafka.clientconf import confluent_auth
from creditbus.logsetup import protect_handlers
from creditbus.settings import Settings
from creditbus.topics import worker_topics
from streams.agents import Topology
from streams.app import create_app

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
    catalog = default_catalog(settings.catalog_dir)
    app = create_app(settings)
    topology = Topology(app, settings, catalog, Wire(SchemaStore(settings.schema_dir)))
    return app, topology


def run_worker(settings: Settings) -> int:
    catalog = default_catalog(settings.catalog_dir)
    ensure_topics(admin_client(settings.bootstrap, confluent_auth(settings)),
                  worker_topics(settings.topic_prefix, [u.code for u in catalog.units],
                                settings.partitions, settings.replication))
    app, _topology = build(settings)
    metrics.serve(settings.worker_metrics_port, "worker")
    worker: Any = _Worker(app, loglevel=_FAUST_LEVELS.get(settings.log_level, "info"),
                          quiet=True)
    worker.execute_from_commandline()
    return 0
