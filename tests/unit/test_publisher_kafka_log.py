"""librdkafka's own log lines go through Python logging in every confluent-kafka client of the
project (publisher, topic admin, the sink's consumer and dead-letter producer), never raw to the
terminal; transient conditions are DEBUG, identity numbers are masked by the log handlers.

The clients talk to the discard port of this machine, where nothing listens: librdkafka's real
"Connection refused" lines, no broker needed.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from creditbus.connectors.consuming import BatchLoop, LoopOptions
from creditbus.connectors.deadletters import DeadLetters
from creditbus.connectors.updates import Incoming

from creditbus.devtools.sample import sample_rows, write_rows
from creditbus.kafka.admin import admin_client
from creditbus.kafka.clientconf import confluent_config
from creditbus.kafka.clientlog import LOGGER_NAME, is_transient, kafka_logger
from creditbus.logsetup import FORMAT, RedactingFormatter
from creditbus.publish import CreditPublisher
from creditbus.publish.row_events import RowConverter, keyed_row
from creditbus.settings import Settings

NOWHERE = "127.0.0.1:9"  # the discard port: nothing listens
RAW_LINE = "%3|"  # how librdkafka starts an error line it writes to stderr itself
GETPID = ("[thrd:main]: Failed to acquire idempotence PID from broker 127.0.0.1:9092/1: "
          "Coordinator load in progress: retrying")


def _serve(poll: Callable[[float], Any], seconds: float = 1.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        poll(0.1)


def _publisher_client(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], Any]:
    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", NOWHERE)
    publisher = CreditPublisher(Settings.from_env(), "市司法局",
                                producer_config={"message.timeout.ms": 1000})
    monkeypatch.setattr(publisher, "ensure_topic", lambda: None)
    row = sample_rows("justice", 1, seed=1)[0]
    publisher.publish(RowConverter(publisher.catalog, "justice").convert(keyed_row(row)))
    return publisher.poll


def _admin_client(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], Any]:
    admin = admin_client(NOWHERE)
    with pytest.raises(Exception):  # noqa: B017 - any Kafka error: nothing listens
        admin.list_topics(timeout=1.0)
    return admin.poll


def _dead_letters(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], Any]:
    dlq = DeadLetters(NOWHERE, "t.sink.deadletter")
    dlq.send(Incoming("t.archive.updates", 0, 7, b"k", b"v", ()), "BAD", "bad update")
    return dlq.producer.poll


def _sink_consumer(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], Any]:
    loop = BatchLoop(LoopOptions(NOWHERE, "t.archive.updates", "t-sink"), writer=None)  # type: ignore[arg-type]
    loop.consumer.subscribe(["t.archive.updates"])
    return loop.consumer.poll


@pytest.fixture()
def client_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    yield caplog


@pytest.mark.parametrize("client", [_publisher_client, _admin_client, _dead_letters,
                                    _sink_consumer])
def test_every_client_logs_librdkafka_through_python(
    client: Callable[[pytest.MonkeyPatch], Callable[[float], Any]],
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    client_log: pytest.LogCaptureFixture,
) -> None:
    _serve(client(monkeypatch))
    raw = capfd.readouterr().err
    assert RAW_LINE not in raw and "|FAIL|" not in raw, raw
    refused = [r for r in client_log.records
               if r.name == LOGGER_NAME and "Connection refused" in r.getMessage()]
    assert refused, [r.getMessage() for r in client_log.records]
    assert {r.levelno for r in refused} == {logging.DEBUG}  # transient: not on the terminal


def test_without_the_logger_librdkafka_writes_raw_lines(capfd: pytest.CaptureFixture[str]) -> None:
    """What the clients did before: the check above would have caught it."""
    producer = Producer({"bootstrap.servers": NOWHERE})
    _serve(producer.poll)
    assert RAW_LINE in capfd.readouterr().err
    assert confluent_config(Settings.from_env())["logger"] is kafka_logger()


def test_transient_lines_are_debug_lasting_ones_keep_their_level(
    client_log: pytest.LogCaptureFixture,
) -> None:
    log = kafka_logger()
    log.log(logging.WARNING, "%s [%s] %s", "GETPID", "creditbus-sink-dlq#producer-2", GETPID)
    log.log(logging.ERROR, "%s [%s] %s", "TOPICAUTH", "rdkafka#producer-1",
            "Topic credit.raw.tax: Broker: Topic authorization failed")
    levels = [(r.levelno, r.getMessage().split(" ")[0]) for r in client_log.records]
    assert levels == [(logging.DEBUG, "GETPID"), (logging.ERROR, "TOPICAUTH")]
    assert is_transient("Connect to ipv4#127.0.0.1:9 failed: Connection refused")
    assert not is_transient("SASL authentication error: Authentication failed")


def test_identity_numbers_in_client_lines_are_masked_by_the_handlers() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter(logging.Formatter(FORMAT)))
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        kafka_logger().log(logging.ERROR, "%s [%s] %s", "MSG", "rdkafka#producer-1",
                           "message key 360702198205140314 refused")
    finally:
        logger.removeHandler(handler)
    assert "360702********0314" in out.getvalue()
    assert "360702198205140314" not in out.getvalue()


def test_publish_without_a_broker_prints_no_librdkafka_lines(tmp_path: Path) -> None:
    """The rough edge as a user saw it: `creditbus publish` with nothing listening."""
    path = write_rows(tmp_path / "f.csv", sample_rows("justice", 3, seed=1))
    env = dict(os.environ, CREDITBUS_BOOTSTRAP=NOWHERE, CREDITBUS_HOME=str(tmp_path / "home"),
               CREDITBUS_LOG_LEVEL="INFO")
    done = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "publish", "--unit",
                           "市司法局", str(path)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot create or find topic credit.raw.justice")
    assert RAW_LINE not in done.stderr and "rdkafka" not in done.stderr, done.stderr
