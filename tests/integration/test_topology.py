"""The worker's topology in-process against the real broker: the edge stage and the Faust app
(archive agent, table, maintenance timer) built by the worker's own code, driven by real
messages on real topics, checked on the real output topics. Seconds per case; the same worker
as a subprocess, crashed and restarted, is tests/faults/.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.kafka.admin import admin_client, delete_topics
from creditbus.kafka.lag import workers_lag
from creditbus.topics import deadletter_topic, updates_topic
from tests.bus import consume_all, produce, read_topic
from tests.inprocess import (
    InProcessWorker,
    metric_by_label,
    metric_total,
    run_async,
    wait_until,
    worker_settings,
)
from tests.integration.test_streams import assert_archives_match, expected_update_count
from tests.streams_data import ScenarioBuilder

SECRET = b"test-secret"
wire = Wire()
UNITS = [u.code for u in default_catalog().units]


def caught_up(bootstrap: str, prefix: str) -> bool:
    """The worker groups committed past every inbound and by-person message."""
    try:
        return workers_lag(bootstrap, prefix, UNITS, timeout=5) == 0
    except Exception:  # noqa: BLE001 - a group coordinator still loading: not yet
        return False


def updates_of(bootstrap: str, prefix: str) -> list[dict[str, Any]]:
    return [wire.decode(m.value()).datum for m in read_topic(bootstrap, updates_topic(prefix))]


@pytest.fixture()
def cleanup_prefix(kafka_broker: Any, topic_prefix: str) -> Iterator[str]:
    """The test's topic prefix; every topic of it (Faust's included) deleted afterwards."""
    yield topic_prefix
    admin = admin_client(kafka_broker.bootstrap)
    names = [t for t in admin.list_topics(timeout=10).topics
             if t.startswith(topic_prefix + ".") or t.startswith(topic_prefix + "-")]
    try:
        delete_topics(admin, names)
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def test_mixed_stream_yields_exact_archives_dead_letters_and_duplicate_counts_in_process(
    kafka_broker: Any, cleanup_prefix: str, tmp_path: Path,
) -> None:
    """Updates, retractions, exact and content duplicates and bad events of five reasons: every
    record at its version, retraction flag and content; every bad event dead-lettered once with
    its reason and source headers; each duplicate counted by kind and changing nothing; once
    the groups' commits caught up, no update more than the input implies."""
    bootstrap, prefix = kafka_broker.bootstrap, cleanup_prefix
    scenario = ScenarioBuilder(prefix, SECRET, seed=11).mixed(persons=120)
    settings = worker_settings(bootstrap, prefix, tmp_path / "state")
    before = {kind: metric_total("creditbus_duplicates_total", kind=kind)
              for kind in ("exact", "content")}
    dead_before = metric_by_label("creditbus_dead_letters_total", "reason")

    async def scenario_run() -> InProcessWorker:
        async with InProcessWorker(settings) as worker:
            produce(bootstrap, scenario.messages)
            await wait_until(lambda: caught_up(bootstrap, prefix), 60,
                             "the worker groups' commits to catch up")
            worker.check()
            return worker

    worker = run_async(scenario_run())

    updates = updates_of(bootstrap, prefix)
    assert len(updates) == expected_update_count(scenario)  # nothing doubled
    assert_archives_match(scenario, updates)
    dead = read_topic(bootstrap, deadletter_topic(prefix))
    assert Counter(header_dict(m.headers())["reason"] for m in dead) == \
        scenario.dead_letter_reasons
    for m in dead:
        headers = header_dict(m.headers())
        assert headers["source.topic"].startswith(prefix + ".raw.")
        assert int(headers["source.offset"]) >= 0 and headers["message"]
    assert metric_total("creditbus_duplicates_total", kind="exact") - before["exact"] == \
        scenario.exact_duplicates
    assert metric_total("creditbus_duplicates_total", kind="content") - before["content"] == \
        scenario.content_duplicates
    edge = worker.edge_counts
    assert sum(v for (name, _l), v in edge.items() if name == "EVENTS_IN") == \
        len(scenario.messages)
    invalid = Counter({labels[1]: v for (name, labels), v in edge.items()
                       if name == "EVENTS_INVALID"})
    assert invalid == scenario.dead_letter_reasons - Counter({"RETRACT_UNKNOWN_RECORD": 10**6})
    dead_counted = metric_by_label("creditbus_dead_letters_total", "reason")
    dead_counted.subtract(dead_before)
    assert +dead_counted == scenario.dead_letter_reasons


def test_expired_general_record_leaves_public_view_and_stays_in_history_in_process(
    kafka_broker: Any, cleanup_prefix: str, tmp_path: Path,
) -> None:
    """The maintenance timer finds a general (一般) penalty past its disclosure period and the
    archive agent turns it non-public, as version 2 chained to version 1, kept in the archive."""
    bootstrap, prefix = kafka_broker.bootstrap, cleanup_prefix
    builder = ScenarioBuilder(prefix, SECRET, seed=3)
    number, name = builder.person()
    published = datetime(2025, 1, 10, 2, 0, tzinfo=UTC)
    penalty = builder.event(unit="justice", group="lawyer", category="practice_penalty",
                            record_id="SFJ-1", id_number=number, name=name, marker="x",
                            published=published, content_date=date(2025, 1, 5))
    settings = worker_settings(bootstrap, prefix, tmp_path / "state",
                               CREDITBUS_MAINTENANCE_INTERVAL_S="0.5")

    async def scenario_run() -> list[Any]:
        async with InProcessWorker(settings) as worker:
            produce(bootstrap, [penalty])
            found: list[Any] = []

            def two_updates() -> bool:
                worker.check()
                found[:] = consume_all(bootstrap, updates_topic(prefix), expect=2, timeout=1)
                return len(found) >= 2

            await wait_until(two_updates, 60, "the expiry update")
            return found

    first, second = (wire.decode(m.value()).datum for m in run_async(scenario_run()))
    assert first["change"]["kind"] == "UPSERT_RECORD"
    assert first["change"]["record"]["public"] is True
    assert first["change"]["record"]["disclosure_end"] == date(2026, 1, 5)  # 一般: 1 year max
    assert second["change"]["kind"] == "DISCLOSURE_EXPIRED"
    assert second["version"] == 2 and second["previous_hash"] == first["hash"]
    record = second["change"]["record"]
    assert record["public"] is False and record["retracted"] is False
    assert record["record_id"] == "SFJ-1"
