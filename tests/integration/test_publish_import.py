"""`creditbus publish` against the real broker: a 10,000-row .xlsx with 5 % bad rows, then the
same file again; and the publisher SDK's delivery reports."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from creditbus.catalog import default_catalog
from creditbus.cli.publish_cmd import read_report
from creditbus.contract import reasons as R
from creditbus.contract.validation import EventRejected
from creditbus.contract.wire import Wire
from creditbus.devtools.kafka.local import BrokerState
from creditbus.devtools.sample import sample_rows, write_rows
from creditbus.kafka.admin import admin_client, delete_topics
from creditbus.publish import CreditPublisher, DeliveryResult, PublishIncomplete
from creditbus.publish.producer import EventEncoder
from creditbus.publish.row_events import RowConverter, keyed_row
from creditbus.settings import Settings
from creditbus.topics import raw_topic

UNIT = "zhanggong"  # a county: publishes for all eleven groups of the notice
ROWS = 10_000
CATALOG = default_catalog()
_FULL_ID = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")


def _settings(monkeypatch: pytest.MonkeyPatch, broker: BrokerState, prefix: str) -> Settings:
    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("CREDITBUS_TOPIC_PREFIX", prefix)
    return Settings.from_env()


def _corrupt(rows: list[dict[str, Any]]) -> dict[int, str]:
    """Break 5 % of the rows (every 20th), each in one of several ways; index -> reason code."""
    ways = [
        ("身份证号码", lambda v: v[:17] + ("0" if v[17] != "0" else "1"), "ID_CHECKSUM"),
        ("身份证号码", lambda v: v[:6] + v[8:17], "ID_LEGACY_15"),
        ("人群类别", lambda v: "执业药师", R.UNIT_NOT_RESPONSIBLE),  # no unit publishes for it
        ("信息类别", lambda v: "不存在的类别", R.UNKNOWN_CATEGORY),
        ("发生日期", lambda v: "2999-01-01", R.FUTURE_DATE),
        ("姓名", lambda v: "  ", R.BAD_NAME),
        ("姓名", lambda v: v[0] + "\u200b" + v[1:], R.BAD_NAME),
        ("统一社会信用代码", lambda v: v[:10] + "O" + v[11:], "USCC_CHARSET"),
        ("发生日期", lambda v: "2024-13-45", "BAD_DATE"),
        ("记录编号", lambda v: None, R.EMPTY_FIELD),
    ]
    expected: dict[int, str] = {}
    for n, index in enumerate(range(7, len(rows), 20)):
        column, change, code = ways[n % len(ways)]
        rows[index] = dict(rows[index], **{column: change(rows[index].get(column))})
        expected[index] = code
    return expected


def _run_import(path: Path, report: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "creditbus.cli.main", "publish", "--unit", UNIT, str(path),
           "--error-report", str(report)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _consume(bootstrap: str, topic: str, wire: Wire) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Every message of the topic from the beginning up to its current end."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"test-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        ends = {}
        for p in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        remaining = {p for p, high in ends.items() if high > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error():
                    continue
                yield msg.key(), wire.decode(msg.value()).datum
                if msg.offset() + 1 >= ends[msg.partition()]:
                    remaining.discard(msg.partition())
        assert not remaining, f"partitions not read to the end: {remaining}"
    finally:
        consumer.close()


def test_import_of_ten_thousand_rows_and_reimport(
    kafka_broker: BrokerState, topic_prefix: str, bus_env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch, kafka_broker, topic_prefix)
    topic = raw_topic(settings.topic_prefix, UNIT)
    rows = sample_rows(UNIT, ROWS, seed=2024)
    bad = _corrupt(rows)
    assert len(bad) == ROWS // 20
    path = write_rows(tmp_path / "章贡区信用档案.xlsx", rows)
    report = tmp_path / "errors.csv"

    # what the good rows must become (the same conversion the command makes, without Kafka)
    encoder = EventEncoder(UNIT, CATALOG, Wire())
    converter = RowConverter(CATALOG, UNIT)
    expected: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        if index not in bad:
            prepared = encoder.prepare(converter.convert(keyed_row(row)))
            expected[prepared.event_id] = row
    assert len(expected) == ROWS - len(bad)  # no two good rows are the same event

    try:
        started = time.monotonic()
        first = _run_import(path, report, bus_env)
        assert first.returncode == 1, first.stderr
        assert f"{ROWS} rows: {len(expected)} published, {len(bad)} rejected" in first.stderr
        assert re.search(rf"\d+/{ROWS} rows, \d+ published, \d+ errors", first.stderr)
        import_seconds = time.monotonic() - started

        # every bad row is in the report, with its reason, and no clear ID anywhere
        text = report.read_bytes()
        assert text.startswith(b"\xef\xbb\xbf")
        assert not _FULL_ID.search(text.decode("utf-8-sig"))
        reported = {int(r["row"]) - 2: r for r in read_report(report)}
        assert set(reported) == set(bad)
        assert {i: r["code"] for i, r in reported.items()} == bad
        assert all(re.match(r"[\u4e00-\u9fff]", r["message"]) for r in reported.values())

        # every good row is on the topic exactly once
        wire = Wire()
        counts: Counter[str] = Counter()
        for key, datum in _consume(settings.bootstrap, topic, wire):
            counts[datum["event_id"]] += 1
            row = expected.get(datum["event_id"])
            assert row is not None, "an event that no good row produced"
            assert key == datum["record_id"].encode() == str(row["记录编号"]).encode()
            assert datum["person"]["id_number"] == row["身份证号码"]
            assert datum["unit"] == UNIT
        assert set(counts) == set(expected)
        assert set(counts.values()) == {1}

        # the same file again: no new distinct event ids on the topic
        second = _run_import(path, report, bus_env)
        assert second.returncode == 1, second.stderr
        again: Counter[str] = Counter(d["event_id"] for _, d in _consume(settings.bootstrap,
                                                                         topic, wire))
        assert set(again) == set(expected)
        assert sum(again.values()) == 2 * len(expected)
        assert import_seconds < 90, f"the import took {import_seconds:.0f} s"
    finally:
        delete_topics(admin_client(settings.bootstrap), [topic])


def test_publisher_reports_every_delivery(
    kafka_broker: BrokerState, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(monkeypatch, kafka_broker, topic_prefix)
    seen: list[DeliveryResult] = []
    rows = sample_rows("justice", 50, seed=1)
    converter = RowConverter(CATALOG, "justice")
    publisher = CreditPublisher(settings, "justice", on_delivery=seen.append)
    try:
        ids = [publisher.publish(converter.convert(keyed_row(r)), ref=i)
               for i, r in enumerate(rows)]
        with pytest.raises(EventRejected) as info:
            publisher.publish(converter.convert(keyed_row(dict(rows[0], 姓名=""))))
        assert info.value.code == R.BAD_NAME
        report = publisher.flush(30)
        assert report.ok and report.pending == 0
        assert sorted(r.ref for r in report.delivered) == list(range(50))
        assert {r.event_id for r in report.delivered} == set(ids)
        assert all(r.partition is not None and r.offset is not None for r in report.delivered)
        assert len(seen) == 50 and not report.failed
        assert publisher.flush(1).results == ()  # reported once
    finally:
        delete_topics(admin_client(settings.bootstrap), [publisher.topic])


def test_failed_deliveries_are_reported_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker that cannot be reached: every queued event comes back as failed."""
    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", "127.0.0.1:9")  # discard port: nothing listens
    settings = Settings.from_env()
    publisher = CreditPublisher(
        settings, "justice", producer_config={"message.timeout.ms": 1500}
    )
    monkeypatch.setattr(publisher, "ensure_topic", lambda: None)
    converter = RowConverter(CATALOG, "justice")
    rows = sample_rows("justice", 5, seed=3)
    for i, row in enumerate(rows):
        publisher.publish(converter.convert(keyed_row(row)), ref=i)
    report = publisher.flush(20)
    assert not report.ok
    assert sorted(r.ref for r in report.failed) == list(range(5))
    assert all(r.error for r in report.failed) and not report.delivered
    assert report.pending == 0

    # leaving a with-block with uncollected failures raises, with the report
    with pytest.raises(PublishIncomplete) as info:
        with CreditPublisher(settings, "justice",
                             producer_config={"message.timeout.ms": 1000}) as again:
            monkeypatch.setattr(again, "ensure_topic", lambda: None)
            again.publish(converter.convert(keyed_row(rows[0])), ref="only")
    assert [r.ref for r in info.value.report.failed] == ["only"]
