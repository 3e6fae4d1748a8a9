"""The edge stage's receipts on the real broker, in process (seconds): every message it
rejects gets one receipt on its unit's receipts topic, with the import row the publisher named;
reading the same messages again (as after a crash before the offsets were committed) writes
byte-identical receipts under the same keys, which readers count once; each dead letter is
logged once, with reason and position only."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from creditbus.streams.edge import EdgeStage
from creditbus.streams.output import Output

from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.devtools.kafka.local import BrokerState
from creditbus.ingest import Ingestor
from creditbus.kafka.admin import admin_client, ensure_topics
from creditbus.receipts import ROW_HEADER, Receipt, read_receipts, summarize
from creditbus.settings import Settings
from creditbus.topics import (
    by_person_topic,
    deadletter_topic,
    raw_topic,
    receipts_topic,
    worker_topics,
)
from tests.streams_data import ScenarioBuilder

SECRET = b"test-secret"


def _settings(bootstrap: str, prefix: str, home: Path) -> Settings:
    import os

    saved = dict(os.environ)
    os.environ.update(CREDITBUS_BOOTSTRAP=bootstrap, CREDITBUS_TOPIC_PREFIX=prefix,
                      CREDITBUS_HOME=str(home))
    try:
        return Settings.from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_edge(bootstrap: str, prefix: str, group: str, until: Any) -> None:
    """An edge stage in a thread with consumer group `group`, until `until()` holds."""
    catalog = default_catalog()
    stop = threading.Event()
    stage = EdgeStage(
        Ingestor(catalog, Wire(), SECRET, prefix),
        {"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 6000},
        Output({"bootstrap.servers": bootstrap}),
        inbound=[raw_topic(prefix, u) for u in ("justice", "edu")],
        by_person=by_person_topic(prefix), deadletters=deadletter_topic(prefix),
        stop=stop, report=lambda _counts: None)
    thread = threading.Thread(target=stage.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not until():
            assert thread.is_alive(), "the edge stage stopped"
            assert time.monotonic() < deadline, "no receipts within 60 s"
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(30)


def _raw_receipts(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every message on `topic` (one partition) as (key, value), repeats included."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False})
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 20
        while len(out) < high and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append((msg.key(), msg.value()))
        return out
    finally:
        consumer.close()


def test_edge_rejections_get_one_deterministic_receipt_each(
    kafka_broker: BrokerState, topic_prefix: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bootstrap, prefix = kafka_broker.bootstrap, topic_prefix
    units = [u.code for u in default_catalog().units]
    ensure_topics(admin_client(bootstrap), worker_topics(prefix, units, 1, 1))
    builder = ScenarioBuilder(prefix, SECRET, seed=5)
    number, name = builder.person()
    broken = number[:17] + ("0" if number[17] != "0" else "1")
    args = dict(unit="justice", group="lawyer", category="career", id_number=number,
                name=name, marker="m")
    messages = [  # (topic, key, value, import row)
        (raw_topic(prefix, "justice"), None, b"\x7fnot avro at all", 2),
        (*builder.event(**dict(args, record_id="R-CHECK", id_number=broken)), 3),
        (*builder.event(**args, record_id="R-TOPIC", topic_unit="edu"), None),
        (*builder.event(**args, record_id="R-GOOD"), 5),
    ]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for topic, key, value, row in messages:
        headers = [(ROW_HEADER, str(row).encode())] if row is not None else None
        producer.produce(topic, value, key, headers=headers)
    assert producer.flush(30) == 0
    settings = _settings(bootstrap, prefix, tmp_path / "home")

    def received() -> list[Receipt]:
        return read_receipts(settings, ["justice", "edu"], timeout_s=30)

    caplog.set_level(logging.INFO, logger="creditbus.worker")
    _run_edge(bootstrap, prefix, f"{prefix}-edge-1", lambda: len(received()) >= 3)
    first = {(r.unit, r.reason, r.source_row, r.record_id, r.field, r.value)
             for r in received()}
    masked = broken[:6] + "*" * 8 + broken[-4:]
    assert first == {
        ("justice", "WIRE_UNKNOWN_FRAMING", 2, None, None, None),
        ("justice", "ID_CHECKSUM", 3, "R-CHECK", "person.id_number", masked),
        ("edu", "TOPIC_UNIT_MISMATCH", None, "R-TOPIC", "unit", "justice"),
    }
    assert all(r.outcome == "rejected" and r.message and r.decided_at > 0 for r in received())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dead letter:")]
    assert sorted(line.split(" source=")[0] for line in lines) == [
        "dead letter: stage=ingest reason=ID_CHECKSUM",
        "dead letter: stage=ingest reason=TOPIC_UNIT_MISMATCH",
        "dead letter: stage=ingest reason=WIRE_UNKNOWN_FRAMING",
    ]
    assert not any(number in line or broken in line or name in line for line in lines)

    # the same messages read again by a stage of another group: the same receipts, repeated
    before = _raw_receipts(bootstrap, receipts_topic(prefix, "justice"))
    assert len(before) == 2
    _run_edge(bootstrap, prefix, f"{prefix}-edge-2",
              lambda: len(_raw_receipts(bootstrap, receipts_topic(prefix, "justice"))) >= 4)
    after = _raw_receipts(bootstrap, receipts_topic(prefix, "justice"))
    assert Counter(after) == Counter({pair: 2 for pair in before})
    assert len(received()) == 3  # readers count each (key, position) once
    # the office's view: every unit of the catalog (the others' receipts topics are empty)
    counts = {(unit, outcome): n for unit, _day, outcome, n in summarize(settings)}
    assert counts == {("justice", "rejected"): 2, ("edu", "rejected"): 1}
    for _key, value in after:
        assert broken.encode() not in value and number.encode() not in value


def test_publish_wait_without_a_worker_names_every_row_unanswered_and_exits_1(
    kafka_broker: BrokerState, topic_prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No worker runs: every delivered row is 未回执 (NO_RECEIPT) in both reports, exit 1."""
    import argparse
    import io

    from creditbus.cli import publish_cmd
    from creditbus.devtools.sample import sample_rows, write_rows
    from creditbus.publish.receipt_report import read_receipt_report

    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", kafka_broker.bootstrap)
    monkeypatch.setenv("CREDITBUS_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("CREDITBUS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CREDITBUS_PARTITIONS", "1")
    ensure_topics(admin_client(kafka_broker.bootstrap),
                  [s for s in worker_topics(topic_prefix, ["justice"], 1, 1)
                   if s.name == receipts_topic(topic_prefix, "justice")])
    seen: set[str] = set()
    rows = [r for r in sample_rows("justice", 8, seed=3) if r["操作(新增/撤销)"] == "新增"
            and not (r["记录编号"] in seen or seen.add(r["记录编号"]))][:3]
    path = write_rows(tmp_path / "j.csv", rows)
    parser = argparse.ArgumentParser()
    publish_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["publish", "--unit", "justice", "--wait", "--wait-timeout", "2",
                              str(path)])
    err = io.StringIO()
    assert publish_cmd.run(args, out=err) == 1, err.getvalue()
    said = err.getvalue()
    assert "3 rows: 0 accepted, 0 duplicate, 0 rejected (0 before sending, 0 by the bus), " \
        "3 unanswered" in said, said
    outcomes = read_receipt_report(tmp_path / "j.csv.receipts.csv")
    assert [(r["row"], r["outcome"], r["code"]) for r in outcomes] == [
        ("2", "未回执", "NO_RECEIPT"), ("3", "未回执", "NO_RECEIPT"), ("4", "未回执", "NO_RECEIPT")]
    errors = publish_cmd.read_report(tmp_path / "j.csv.errors.csv")
    assert [e["code"] for e in errors] == ["NO_RECEIPT"] * 3
    assert "2 秒内未收到总线的回执" in errors[0]["message"]
