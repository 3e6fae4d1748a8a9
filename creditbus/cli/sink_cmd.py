"""Commands of the connectors: `creditbus sink`, `creditbus verify`, `creditbus db migrate`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from creditbus import metrics
from creditbus.connectors.consuming import LoopOptions
from creditbus.errors import ConfigError
from creditbus.kafka.admin import ensure_bus_topics
from creditbus.kafka.clientconf import confluent_auth
from creditbus.logsetup import configure_logging
from creditbus.settings import Settings
from creditbus.topics import sink_deadletter_topic, updates_topic

log = logging.getLogger("creditbus.sink")


def register(subparsers: argparse._SubParsersAction) -> None:
    sink = subparsers.add_parser(
        "sink", help="stream archive updates into the platform database (or an HTTP API)",
        description="Consume the archive updates and write them to the platform database "
                    "(CREDITBUS_DATABASE_URL: sqlite:///path or postgresql://...) exactly once "
                    "in effect, or post them to a REST API with --http.")
    sink.add_argument("--database-url", metavar="URL",
                      help="platform database (default: CREDITBUS_DATABASE_URL)")
    sink.add_argument("--http", metavar="URL", help="post batches to this URL instead")
    sink.add_argument("--http-timeout", type=float, default=10.0, metavar="SECONDS",
                      help="timeout of one HTTP request (default 10)")
    sink.add_argument("--group", help="consumer group (default <prefix>-platform-sink, or "
                                      "<prefix>-http-sink with --http)")
    sink.add_argument("--instance-id", metavar="ID",
                      help="static group membership id: a restarted sink takes its "
                           "partitions back at once instead of after the session timeout")
    sink.add_argument("--batch-size", type=int, metavar="N",
                      help="most updates per batch (default CREDITBUS_SINK_BATCH_SIZE)")
    sink.add_argument("--batch-ms", type=int, metavar="MS",
                      help="longest wait for a batch (default CREDITBUS_SINK_BATCH_MS)")
    sink.add_argument("--until-idle", type=float, metavar="SECONDS",
                      help="exit 0 once no new message arrived for this long")
    sink.add_argument("--max-batches", type=int, metavar="N", help="exit 0 after N batches")
    sink.set_defaults(func=run_sink)

    verify = subparsers.add_parser(
        "verify", help="check the platform database's hash chains and rows against its log",
        description="Recompute every person's hash chain from cb_update_log and check that "
                    "cb_person and cb_record equal what the log implies. Exit 0 when clean, "
                    "1 when problems were found, 4 when the database cannot be checked.")
    verify.add_argument("--database-url", metavar="URL",
                        help="platform database (default: CREDITBUS_DATABASE_URL)")
    verify.add_argument("--max-problems", type=int, default=1000, metavar="N",
                        help="print at most N problems (default 1000; all are counted)")
    verify.set_defaults(func=run_verify)

    db = subparsers.add_parser(
        "db", help="the platform database's schema and roles (run with the owner's URL)")
    db_actions = db.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    migrate = db_actions.add_parser(
        "migrate", help="create or migrate the schema; PostgreSQL: the sink and reader roles",
        description="Apply the missing schema migrations, then (PostgreSQL) create the sink's "
                    "and the reader's roles if missing, set their passwords from "
                    "CREDITBUS_DB_SINK_PASSWORD(_FILE) and CREDITBUS_DB_READER_PASSWORD(_FILE) "
                    "when given, and grant exactly their privileges. Idempotent. Run it with "
                    "the database owner's URL; the processes then use the roles.")
    migrate.add_argument("--database-url", metavar="URL",
                         help="the owner's URL (default: CREDITBUS_DATABASE_URL)")
    migrate.set_defaults(func=run_db_migrate)


def _install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM / SIGINT ask the loop to finish the current batch and exit."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: object) -> None:
        log.info("%s received: finishing the current batch", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_sink(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    ensure_bus_topics(settings, "sink")
    prefix = settings.topic_prefix
    mode = "http" if args.http else "platform"
    options = LoopOptions(
        bootstrap=settings.bootstrap, topic=updates_topic(prefix),
        group=args.group or f"{prefix}-{mode}-sink",
        batch_size=args.batch_size or settings.sink_batch_size,
        batch_ms=args.batch_ms if args.batch_ms is not None else settings.sink_batch_ms,
        until_idle=args.until_idle, max_batches=args.max_batches, instance_id=args.instance_id,
        consumer_config=confluent_auth(settings),
    )
    metrics.serve(settings.sink_metrics_port, "sink")
    stop = threading.Event()
    _install_signal_handlers(stop)

    from creditbus.publish.producer import default_wire

    wire = default_wire(settings)
    dead_letter_topic = sink_deadletter_topic(prefix)
    try:
        if args.http:
            from creditbus.connectors.http.sink import run_http_sink

            return run_http_sink(options, args.http, args.http_timeout, dead_letter_topic,
                                 wire, stop)
        from creditbus.connectors.platform.sink import run_platform_sink

        return run_platform_sink(options, args.database_url or settings.database_url,
                                 dead_letter_topic, wire, stop)
    except ValueError as exc:  # an unusable database URL
        raise ConfigError(str(exc)) from None
    finally:
        metrics.PROCESS_UP.labels("sink").set(0)


def run_db_migrate(args: argparse.Namespace) -> int:
    from creditbus.platformdb.roles import run_db_migrate as run

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return run(settings, args.database_url or settings.database_url)


def run_verify(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    from creditbus.connectors.platform.verify import run

    return run(args.database_url or settings.database_url, max_problems=args.max_problems)
