"""No personal data in the wrong places: a full run, then every topic, log line and metric is
scanned for identity numbers.

With field protection on, publishers seal the identity number and name to the bus's key, so not
even the inbound topics hold a clear number; with it off, only the inbound topics may.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

from creditbus.catalog import default_catalog
from creditbus.devtools.kafka.ports import free_port
from creditbus.devtools.sample import sample_events
from creditbus.identity import IdentifierError, parse_resident_id
from creditbus.kafka.admin import admin_client
from creditbus.kafka.lag import workers_lag
from creditbus.publish import CreditPublisher
from creditbus.security.keys import generate_key_files
from creditbus.settings import Settings
from creditbus.topics import RAW_SEGMENT
from tests.bus import BusProcess, read_topics, wait_for, worker_env

ID_LIKE = re.compile(rb"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9Xx])")


def publish_sample(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                   count: int) -> tuple[set[str], int]:
    """Publish `count` valid sample events with the SDK; return their identity numbers."""
    for key, value in env.items():
        if key.startswith("CREDITBUS_"):
            monkeypatch.setenv(key, value)
    settings = Settings.from_env()
    numbers: set[str] = set()
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for unit, datum in sample_events(count, seed=99):
        by_unit.setdefault(unit, []).append(datum)
        numbers.add(datum["person"]["id_number"])
    published = 0
    for unit, datums in by_unit.items():
        publisher = CreditPublisher(settings, unit)
        for datum in datums:
            publisher.publish(datum)
        report = publisher.flush(60)
        assert not report.failed
        published += len(report.delivered)
    return numbers, published


def scan(data: bytes, numbers: set[str]) -> list[str]:
    """Clear identity numbers in `data`: the known ones, or any valid one (GB 11643)."""
    hits = [n for n in numbers if n.encode() in data]
    for match in ID_LIKE.finditer(data):  # any valid resident ID, known or not
        try:
            parse_resident_id(match.group().decode())
        except IdentifierError:
            continue  # a digit run that is no identity number (a hash, a certificate number)
        hits.append(match.group().decode())
    return hits


def run_full_bus(env: dict[str, str], tmp_path: Path) -> str:
    """Worker and sink as real processes until every update is in the platform DB; return
    their logs and metrics as text."""
    wenv = worker_env(env, tmp_path / "state", CREDITBUS_LOG_LEVEL="INFO")
    worker = BusProcess(["worker"], wenv, tmp_path / "worker.log").start()
    try:
        prefix = env["CREDITBUS_TOPIC_PREFIX"]
        units = [u.code for u in default_catalog().units]
        wait_for(lambda: workers_lag(env["CREDITBUS_BOOTSTRAP"], prefix, units) == 0, 180,
                 "the worker to process everything")
        worker_metrics = urlopen(
            f"http://127.0.0.1:{wenv['CREDITBUS_WORKER_METRICS_PORT']}/metrics").read()
    finally:
        worker.stop()
    sink_port = free_port()
    sink = subprocess.run(
        [sys.executable, "-m", "creditbus.cli.main", "sink", "--until-idle", "3"],
        env=dict(env, CREDITBUS_SINK_METRICS_PORT=str(sink_port), CREDITBUS_LOG_LEVEL="DEBUG"),
        capture_output=True, timeout=300,
    )
    assert sink.returncode == 0, sink.stderr[-2000:]
    verify = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "verify"], env=env,
                            capture_output=True, timeout=120)
    assert verify.returncode == 0, verify.stdout[-2000:]
    return "\n".join([
        (tmp_path / "worker.log").read_text(errors="replace"), worker_metrics.decode(),
        sink.stdout.decode(errors="replace"), sink.stderr.decode(errors="replace"),
        verify.stdout.decode(errors="replace"),
    ])


def all_topics(bootstrap: str, prefix: str) -> list[str]:
    names = admin_client(bootstrap).list_topics(timeout=30).topics
    worker_prefix = f"{prefix}-archive-worker"  # Faust's changelogs
    return sorted(n for n in names if n.startswith(prefix + ".") or n.startswith(worker_prefix))


def test_with_field_protection_no_clear_identity_number_anywhere(
    kafka_broker: Any, topic_prefix: str, bus_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = generate_key_files(tmp_path / "keys")
    env = dict(bus_env, CREDITBUS_FIELD_PUBLIC_KEY=str(keys.public_path),
               CREDITBUS_FIELD_PRIVATE_KEYS=str(keys.private_path),
               CREDITBUS_DATABASE_URL=f"sqlite:///{tmp_path / 'platform.db'}")
    numbers, published = publish_sample(env, monkeypatch, 150)
    text = run_full_bus(env, tmp_path)

    findings: dict[str, list[str]] = {}
    scanned = 0
    everything = read_topics(kafka_broker.bootstrap, all_topics(kafka_broker.bootstrap,
                                                                topic_prefix))
    for topic, messages in everything.items():
        for msg in messages:
            scanned += 1
            for part in (msg.key() or b"", msg.value() or b"",
                         *[v or b"" for _, v in msg.headers() or []]):
                hits = scan(part, numbers)
                if hits:
                    findings.setdefault(topic, []).extend(h[:6] + "…" for h in hits)
    log_hits = scan(text.encode(), numbers)
    assert published > 100 and scanned > published
    assert findings == {}, f"clear identity numbers on topics: {findings}"
    assert log_hits == [], "clear identity numbers in logs or metrics"


def test_without_field_protection_only_the_inbound_topics_hold_clear_numbers(
    kafka_broker: Any, topic_prefix: str, bus_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = dict(bus_env, CREDITBUS_DATABASE_URL=f"sqlite:///{tmp_path / 'platform.db'}")
    numbers, _published = publish_sample(env, monkeypatch, 100)
    text = run_full_bus(env, tmp_path)
    inbound_hits = 0
    everything = read_topics(kafka_broker.bootstrap, all_topics(kafka_broker.bootstrap,
                                                                topic_prefix))
    for topic, messages in everything.items():
        inbound = topic.startswith(f"{topic_prefix}.{RAW_SEGMENT}.")
        for msg in messages:
            hits = scan(msg.value() or b"", numbers) + scan(msg.key() or b"", numbers)
            if inbound:
                inbound_hits += len(hits)
            else:
                assert hits == [], f"clear identity number on {topic}"
    assert inbound_hits > 0  # the scan does find numbers where they are allowed
    assert scan(text.encode(), numbers) == []
