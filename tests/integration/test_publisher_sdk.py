"""docs/publisher.md against the real broker: every Python sample of the page runs, in order,
in one interpreter, and the events it publishes are on the unit's topic."""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from creditbus.contract.wire import Wire
from creditbus.devtools.kafka.local import BrokerState
from creditbus.kafka.admin import admin_client, delete_topics
from creditbus.security.keys import generate_key_files
from creditbus.topics import raw_topic

PAGE = Path(__file__).resolve().parents[2] / "docs" / "publisher.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_HEADING = re.compile(r"^## (.+)$", re.M)


def samples(text: str) -> list[tuple[str, str]]:
    """(section heading, code) of every Python block of the page."""
    headings = [(m.start(), m[1]) for m in _HEADING.finditer(text)]
    out = []
    for block in _BLOCK.finditer(text):
        if block[1] == "python":
            section = [h for start, h in headings if start < block.start()][-1]
            out.append((section, block[2]))
    return out


def expected_output(code: str) -> list[str]:
    """The output a sample shows in trailing comments (`# ID_CHECKSUM ... ...`), up to `...`."""
    lines = code.rstrip().splitlines()
    shown: list[str] = []
    while lines and lines[-1].startswith("# "):
        shown.insert(0, lines.pop()[2:].split(" ...")[0])
    return shown


def _topic_values(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        values: list[bytes] = []
        while len(values) < sum(ends.values()):
            for msg in consumer.consume(100, timeout=5.0) or []:
                assert msg.error() is None
                values.append(msg.value())
        return values
    finally:
        consumer.close()


def test_every_sample_of_the_publisher_page_runs(
    kafka_broker: BrokerState, topic_prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", kafka_broker.bootstrap)
    monkeypatch.setenv("CREDITBUS_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("CREDITBUS_PARTITIONS", "1")
    monkeypatch.delenv("CREDITBUS_FIELD_PUBLIC_KEY", raising=False)
    key = generate_key_files(tmp_path / "keys")  # what the bus's operators hand out
    blocks = samples(PAGE.read_text("utf-8"))
    assert [section for section, _ in blocks] == [
        "Publishing one event in the JSON form",
        "Publishing one event in the Python form",
        "Idempotency: publishing again is safe",
        "Errors",
        "Errors",
        "Field protection",
    ]
    namespace: dict[str, object] = {"__name__": "publisher_page"}
    topic = raw_topic(topic_prefix, "justice")
    try:
        for section, code in blocks:
            if section == "Field protection":
                monkeypatch.setenv("CREDITBUS_FIELD_PUBLIC_KEY", str(key.public_path))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{PAGE.name}: {section}", "exec"), namespace)
            for line in expected_output(code):
                assert line in out.getvalue(), (section, out.getvalue())

        # what the page published: the penalty four times (JSON, Python, again, sent with a
        # ref, sealed: the same id), its correction, its withdrawal
        wire = Wire()
        decoded = [wire.decode(v).datum for v in _topic_values(kafka_broker.bootstrap, topic)]
        ids = Counter(d["event_id"] for d in decoded)
        event_id = namespace["event_id"]
        assert ids[event_id] == 5 and len(ids) == 3
        assert {d["action"] for d in decoded} == {"UPSERT", "RETRACT"}
        sealed = [d for d in decoded if d["person"]["sealed"] is not None]
        assert len(sealed) == 1 and sealed[0]["person"]["id_number"] == "[sealed]"
    finally:
        delete_topics(admin_client(kafka_broker.bootstrap), [topic])
