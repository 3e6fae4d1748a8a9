"""The one place that creates topics: each set of creditbus.topics.TOPIC_SETS lands on the real
broker with its spec, once (a second call creates nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from creditbus.devtools.kafka.local import BrokerState
from creditbus.kafka.admin import bus_admin, delete_topics, ensure_bus_topics
from creditbus.settings import Settings
from creditbus.topics import (
    TOPIC_SETS,
    audit_topic,
    raw_topic,
    sink_deadletter_topic,
    updates_topic,
)


def test_topic_sets_are_created_once_with_their_partitions(
        kafka_broker: BrokerState, topic_prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", kafka_broker.bootstrap)
    monkeypatch.setenv("CREDITBUS_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("CREDITBUS_HOME", str(tmp_path))
    monkeypatch.setenv("CREDITBUS_PARTITIONS", "3")
    settings = Settings.from_env()
    admin = bus_admin(settings)
    made: list[str] = []
    try:
        made += ensure_bus_topics(settings, "sink")
        assert sorted(made) == sorted([updates_topic(topic_prefix),
                                       sink_deadletter_topic(topic_prefix)])
        made += ensure_bus_topics(settings, "raw", units=["justice"])
        assert made[-1] == raw_topic(topic_prefix, "justice")
        assert ensure_bus_topics(settings, "sink") == []  # existing topics are left alone

        made += ensure_bus_topics(settings)  # the whole bus: only what is still missing
        wanted = {s.name: s for s in TOPIC_SETS["bus"](topic_prefix, _units(settings), 3, 1)}
        assert set(made) == set(wanted) and len(made) == len(set(made))
        assert ensure_bus_topics(settings) == []
        listed = admin.list_topics(timeout=30).topics
        for name, spec in wanted.items():
            assert len(listed[name].partitions) == spec.partitions, name
        assert len(listed[audit_topic(topic_prefix)].partitions) == 1
        assert len(listed[updates_topic(topic_prefix)].partitions) == 3
    finally:
        delete_topics(admin, made)


def _units(settings: Settings) -> list[str]:
    from creditbus.catalog import default_catalog

    return [u.code for u in default_catalog(settings.catalog_dir).units]
