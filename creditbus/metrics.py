"""Prometheus metrics of every process; the names are a contract (docs/metrics.md).

Label values come from bounded sets only (unit codes from the catalog, reason codes, kinds,
topic names and partitions), never from free text or personal data.
"""

from __future__ import annotations

import ssl
import time
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from creditbus.errors import ConfigError
from creditbus.security.secretfile import SecretFileError, tls_pair
from creditbus.settings import Settings, SettingsError

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
                   30.0, 60.0, 300.0)
"""0.75 and 1.5 around the 1 s latency objective, so its quantiles read finer there."""

EVENTS_IN = Counter("creditbus_events_in", "Inbound messages read, by unit and topic.",
                    ["unit", "topic"])
EVENTS_VALID = Counter("creditbus_events_valid", "Inbound events that passed validation.",
                       ["unit"])
EVENTS_INVALID = Counter("creditbus_events_invalid", "Inbound messages rejected, by reason.",
                         ["unit", "reason"])
DUPLICATES = Counter("creditbus_duplicates", "Events dropped as duplicates, by kind.", ["kind"])
ARCHIVE_UPDATES = Counter("creditbus_archive_updates", "Archive updates emitted, by change kind.",
                          ["kind"])
REPLAYS = Counter("creditbus_replays",
                  "Messages processed again after a crash: their updates were already out.")
DEAD_LETTERS = Counter("creditbus_dead_letters", "Messages sent to a dead-letter topic.",
                       ["stage", "reason"])
PUBLISH_TO_UPDATE = Histogram("creditbus_publish_to_update_seconds",
                              "Time from an event's publication to its archive update.",
                              buckets=LATENCY_BUCKETS)
PUBLISH_TO_COMMIT = Histogram("creditbus_publish_to_commit_seconds",
                              "Time from an event's publication to its platform commit.",
                              buckets=LATENCY_BUCKETS)
SINK_BATCH_SIZE = Histogram("creditbus_sink_batch_size", "Updates per sink transaction.",
                            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000))
SINK_WRITE_SECONDS = Histogram("creditbus_sink_write_seconds",
                               "Time to write and commit one sink batch.",
                               buckets=LATENCY_BUCKETS)
SINK_ROWS = Counter("creditbus_sink_updates_applied",
                    "Archive updates applied by the sink (newer version).", [])
SINK_SKIPPED = Counter("creditbus_sink_updates_skipped",
                       "Archive updates the sink skipped as already applied.", [])
SINK_RETRIES = Counter("creditbus_sink_retries", "Transient write failures retried.", [])
SINK_CHAIN_BREAKS = Counter("creditbus_sink_chain_breaks",
                            "Updates applied although they do not continue the stored chain "
                            "(kind: gap = version skipped ahead, fork = previous hash differs).",
                            ["kind"])
SINK_LAST_SUCCESS = Gauge("creditbus_sink_last_success_timestamp_seconds",
                          "When the sink last committed a batch.")
CONSUMER_LAG = Gauge("creditbus_consumer_lag", "Messages behind the end of each partition.",
                     ["group", "topic", "partition"])
QUERIES = Counter("creditbus_queries", "Archive queries answered, by caller role and status.",
                  ["role", "status"])
QUERY_SECONDS = Histogram("creditbus_query_seconds",
                          "Seconds to answer an archive query, audit delivery included.",
                          buckets=LATENCY_BUCKETS)
QUERY_AUDIT_FAILURES = Counter("creditbus_query_audit_failures",
                               "Queries whose audit record was not delivered (answer withheld).")
PROCESS_UP = Gauge("creditbus_process_up", "1 while the process is healthy.", ["process"])
PROCESS_STARTED = Gauge("creditbus_process_start_timestamp_seconds",
                        "When the process started.", ["process"])


def serve(port: int, process: str, host: str | None = None) -> WSGIServer | None:
    """Expose /metrics on `host:port` (0 disables) and mark the process up; the server.

    `host` defaults to CREDITBUS_METRICS_HOST (127.0.0.1: only this machine can scrape; a
    container sets 0.0.0.0). HTTPS when CREDITBUS_METRICS_TLS_CERT and _KEY name a certificate
    chain and its key (owner-only file). ConfigError when the address is taken or a
    certificate setting is unusable (the process's one-line error).
    """
    server = None
    if port:
        settings = Settings.from_env()
        address = host or settings.metrics_host
        try:
            server, _thread = start_http_server(port, addr=address, **_tls_arguments(settings))
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {address}:{port}: "
                              f"{exc.strerror or exc}") from None
    PROCESS_UP.labels(process).set(1)
    PROCESS_STARTED.labels(process).set(time.time())
    return server


def _tls_arguments(settings: Settings) -> dict[str, Any]:
    try:
        pair = tls_pair(settings.metrics_tls_cert, settings.metrics_tls_key,
                        "CREDITBUS_METRICS_TLS")
    except SecretFileError as exc:
        raise SettingsError(str(exc)) from None
    if pair is None:
        return {}
    cert, key = pair
    return {"certfile": str(cert), "keyfile": str(key),
            "tls_min_version": ssl.TLSVersion.TLSv1_2}
