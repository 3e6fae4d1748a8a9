"""The Faust app of the stream workers, configured from `creditbus.settings`."""

from __future__ import annotations

import faust
from creditbus.streams import transport

from creditbus.kafka.clientconf import faust_broker_kwargs
from creditbus.settings import Settings
from creditbus.topics import worker_app_id


def create_app(settings: Settings, app_id: str | None = None) -> faust.App:
    """One app per worker process; its consumer group is shared by all workers (`app_id`:
    another group, e.g. the benchmark's do-nothing agent).

    The app runs on the project's own Faust transport (`creditbus.streams.transport`, selected
    by the `creditbus://` scheme) and its table manager, whose recovery resumes the streams only
    after seeking them (docs/faust-transport.md).
    """
    brokers = [f"{transport.SCHEME}://{host}" for host in settings.bootstrap.split(",") if host]
    return faust.App(
        app_id or worker_app_id(settings.topic_prefix),
        broker=brokers,
        store=settings.store,
        datadir=str(settings.state_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        broker_commit_interval=1.0,
        web_enabled=settings.worker_web_port > 0,
        web_port=settings.worker_web_port or 6066,
        web_bind=settings.metrics_host,
        producer_acks=-1,
        producer_linger_ms=5,
        producer_compression_type="lz4",  # archive values in the changelog compress well
        stream_buffer_maxsize=8192,
        table_standby_replicas=0,
        autodiscover=False,
        TableManager=transport.TableManager,
        **faust_broker_kwargs(settings),
    )
