"""The stream workers on the real broker: exact archives, dead letters, dedup, crash, expiry,
scale-out."""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.topics import deadletter_topic, updates_topic
from tests.bus import BusProcess, consume_all, produce, wait_for, worker_env
from tests.conftest import Topics
from tests.streams_data import Scenario, ScenarioBuilder

SECRET = b"test-secret"
wire = Wire()


def decoded_updates(bootstrap: str, prefix: str, expect: int, timeout: float = 180.0,
                    ) -> list[dict[str, Any]]:
    messages = consume_all(bootstrap, updates_topic(prefix), expect=expect, timeout=timeout)
    return [wire.decode(m.value()).datum for m in messages]


def fold(updates: list[dict[str, Any]]) -> tuple[dict, dict[str, list[int]]]:
    """Final record states and the version sequence of every person, from the updates."""
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    versions: dict[str, list[int]] = defaultdict(list)
    for u in updates:
        rec = u["change"]["record"]
        versions[u["person_key"]].append(u["version"])
        records[(u["person_key"], rec["unit"], rec["record_id"])] = rec
    return records, versions


def assert_archives_match(scenario: Scenario, updates: list[dict[str, Any]]) -> None:
    records, versions = fold(updates)
    expected = {k: (t.versions, t.retracted, t.category) for k, t in scenario.records.items()}
    got = {k: (r["record_version"], r["retracted"], r["category"]) for k, r in records.items()}
    assert got == expected
    for key, truth in scenario.records.items():
        if not truth.retracted:
            assert truth.marker in records[key]["content_json"], key
    for pk, seq in versions.items():
        distinct = sorted(set(seq))
        assert distinct == list(range(1, len(distinct) + 1)), f"gap in versions of {pk[:8]}"
    assert {pk: max(seq) for pk, seq in versions.items()} == scenario.expected_versions()


def expected_update_count(scenario: Scenario) -> int:
    return sum(t.versions for t in scenario.records.values())


def test_mixed_stream_yields_exact_archives_dead_letters_and_duplicate_counts(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str], tmp_path: Path,
) -> None:
    builder = ScenarioBuilder(topic_prefix, SECRET, seed=11)
    scenario = builder.mixed(persons=80)
    env = worker_env(bus_env, tmp_path / "state")
    worker = BusProcess(["worker"], env, tmp_path / "worker.log").start()
    try:
        wait_for(lambda: topic_prefix + ".raw.justice" in topics.admin.list_topics(
            timeout=10).topics, 60, "the worker to create the topics")
        produce(kafka_broker.bootstrap, scenario.messages)
        updates = decoded_updates(kafka_broker.bootstrap, topic_prefix,
                                  expected_update_count(scenario))
        assert_archives_match(scenario, updates)

        dead = consume_all(kafka_broker.bootstrap, deadletter_topic(topic_prefix),
                           expect=sum(scenario.dead_letter_reasons.values()), timeout=60)
        reasons = Counter(header_dict(m.headers())["reason"] for m in dead)
        assert reasons == scenario.dead_letter_reasons
        for m in dead:
            headers = header_dict(m.headers())
            assert headers["source.topic"].startswith(topic_prefix + ".raw.")
            assert int(headers["source.offset"]) >= 0 and headers["message"]

        metrics = scrape(env["CREDITBUS_WORKER_METRICS_PORT"])
        assert metrics.get('creditbus_duplicates_total{kind="exact"}') == \
            scenario.exact_duplicates
        assert metrics.get('creditbus_duplicates_total{kind="content"}') == \
            scenario.content_duplicates
        invalid: Counter[str] = Counter()
        dead: Counter[str] = Counter()
        for name, value in metrics.items():
            if name.startswith("creditbus_events_invalid_total{"):
                invalid[name.split('reason="')[1].split('"')[0]] += int(value)
            if name.startswith("creditbus_dead_letters_total{"):
                dead[name.split('reason="')[1].split('"')[0]] += int(value)
        ingest_rejects = scenario.dead_letter_reasons - Counter({"RETRACT_UNKNOWN_RECORD": 10**6})
        assert invalid == ingest_rejects
        assert dead == scenario.dead_letter_reasons
        updates_total = sum(v for k, v in metrics.items()
                            if k.startswith("creditbus_archive_updates_total{"))
        assert updates_total == expected_update_count(scenario)
        events_in = sum(v for k, v in metrics.items() if k.startswith("creditbus_events_in_total{"))
        assert events_in == len(scenario.messages)
        time.sleep(2)  # nothing more may arrive: no duplicate updates in effect
        again = decoded_updates(kafka_broker.bootstrap, topic_prefix, 10**9, timeout=5)
        assert len(again) == expected_update_count(scenario)
    finally:
        worker.stop()
    assert "Traceback" not in worker.output(), worker.output()[-3000:]


def scrape(port: str) -> dict[str, float]:
    from urllib.request import urlopen

    text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_worker_killed_mid_stream_recovers_without_loss_or_duplicate_effects(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str], tmp_path: Path,
) -> None:
    builder = ScenarioBuilder(topic_prefix, SECRET, seed=23)
    scenario = builder.mixed(persons=400, bad_fraction=0.0)
    env = worker_env(bus_env, tmp_path / "state")
    log = tmp_path / "worker.log"
    worker = BusProcess(["worker"], env, log).start()
    rng = random.Random(5)
    try:
        wait_for(lambda: topic_prefix + ".raw.justice" in topics.admin.list_topics(
            timeout=10).topics, 60, "the worker to create the topics")
        half = len(scenario.messages) // 2
        produce(kafka_broker.bootstrap, scenario.messages[:half])
        for _kill in range(2):
            time.sleep(rng.uniform(2.0, 6.0))
            worker.kill()
            worker = BusProcess(["worker"], env, log).start()
        produce(kafka_broker.bootstrap, scenario.messages[half:])
        total = expected_update_count(scenario)

        distinct: set[tuple[str, int]] = set()
        seen = 0

        def complete(messages: list) -> bool:
            nonlocal seen
            for m in messages[seen:]:
                u = wire.decode(m.value()).datum
                distinct.add((u["person_key"], u["version"]))
            seen = len(messages)
            return len(distinct) >= total

        messages = consume_all(kafka_broker.bootstrap, updates_topic(topic_prefix),
                               done=complete, timeout=240)
        updates = [wire.decode(m.value()).datum for m in messages]
        # Replays after a crash may repeat an update; a repeat must be byte-identical.
        by_version: dict[tuple[str, int], str] = {}
        for u in updates:
            key = (u["person_key"], u["version"])
            assert by_version.setdefault(key, u["hash"]) == u["hash"], "divergent update"
        assert_archives_match(scenario, updates)
    finally:
        worker.stop()


def test_expired_general_record_leaves_public_view_and_stays_in_history(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str], tmp_path: Path,
) -> None:
    builder = ScenarioBuilder(topic_prefix, SECRET, seed=3)
    number, name = builder.person()
    published = datetime(2025, 1, 10, 2, 0, tzinfo=UTC)
    penalty = builder.event(unit="justice", group="lawyer", category="practice_penalty",
                            record_id="SFJ-1", id_number=number, name=name, marker="x",
                            published=published, content_date=date(2025, 1, 5))
    env = worker_env(bus_env, tmp_path / "state", CREDITBUS_MAINTENANCE_INTERVAL_S="1")
    worker = BusProcess(["worker"], env, tmp_path / "worker.log").start()
    try:
        wait_for(lambda: topic_prefix + ".raw.justice" in topics.admin.list_topics(
            timeout=10).topics, 60, "the worker to create the topics")
        produce(kafka_broker.bootstrap, [penalty])
        updates = decoded_updates(kafka_broker.bootstrap, topic_prefix, 2, timeout=120)
    finally:
        worker.stop()
    first, second = updates
    assert first["change"]["kind"] == "UPSERT_RECORD"
    assert first["change"]["record"]["public"] is True  # public when published in 2025-01
    assert first["change"]["record"]["disclosure_end"] == date(2026, 1, 5)  # 一般: 1 year max
    assert second["change"]["kind"] == "DISCLOSURE_EXPIRED"
    assert second["version"] == 2 and second["previous_hash"] == first["hash"]
    record = second["change"]["record"]
    assert record["public"] is False and record["retracted"] is False  # kept in the archive
    assert record["record_id"] == "SFJ-1"


def test_two_workers_build_the_same_archives_as_one(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str], tmp_path: Path,
) -> None:
    builder = ScenarioBuilder(topic_prefix, SECRET, seed=31)
    scenario = builder.mixed(persons=300, bad_fraction=0.0)
    first = BusProcess(["worker"], worker_env(bus_env, tmp_path / "s1"), tmp_path / "w1.log")
    second = BusProcess(["worker"], worker_env(bus_env, tmp_path / "s2"), tmp_path / "w2.log")
    first.start()
    second.start()
    try:
        wait_for(lambda: topic_prefix + ".raw.justice" in topics.admin.list_topics(
            timeout=10).topics, 60, "the worker to create the topics")
        time.sleep(5)  # let the group settle with both members
        produce(kafka_broker.bootstrap, scenario.messages)
        updates = decoded_updates(kafka_broker.bootstrap, topic_prefix,
                                  expected_update_count(scenario), timeout=240)
        assert_archives_match(scenario, updates)
    finally:
        first.stop()
        second.stop()
    assert first.output().count("Traceback") == 0 and second.output().count("Traceback") == 0
