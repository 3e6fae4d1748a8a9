"""The stream worker as a process (`creditbus worker`) on the real broker: exact archives, dead
letters, dedup and its metrics endpoint, a crash, scale-out. The topology's behaviour in-process
(expiry among it) is tests/integration/test_topology.py."""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.kafka.lag import workers_lag
from creditbus.topics import deadletter_topic, edge_group_id, updates_topic, worker_app_id
from tests.bus import (
    BusProcess,
    consume_all,
    produce,
    read_topic,
    stable_members,
    wait_for,
    wait_for_members,
    worker_env,
)
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

        # Once the groups committed past every input, every batch of it was processed and
        # counted (a batch of duplicates sends nothing), and all its output is out (flushed
        # before the commits): nothing more can arrive, no duplicate update in effect.
        units = [u.code for u in default_catalog().units]
        wait_for(lambda: workers_lag(kafka_broker.bootstrap, topic_prefix, units) == 0, 60,
                 "the worker groups' commits to catch up")
        # the edge stage's counts reach the worker's endpoint within its relay period
        wait_for(lambda: events_counted(env) == len(scenario.messages), 10,
                 "the edge stage's counts on the worker's endpoint", interval=0.2)
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
        again = read_topic(kafka_broker.bootstrap, updates_topic(topic_prefix))
        assert len(again) == expected_update_count(scenario)
    finally:
        worker.stop()
    assert "Traceback" not in worker.output(), worker.output()[-3000:]


def events_counted(env: dict[str, str]) -> float:
    metrics = scrape(env["CREDITBUS_WORKER_METRICS_PORT"])
    return sum(v for k, v in metrics.items() if k.startswith("creditbus_events_in_total{"))


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
        # first kill while it works (once its updates flow), the second once the restarted
        # worker owns its partitions again (its table recovered), each at a random moment
        wait_for(lambda: len(consume_all(kafka_broker.bootstrap, updates_topic(topic_prefix),
                                         idle=0.5, timeout=5)) >= 50, 90, "the first updates")
        groups = [worker_app_id(topic_prefix), edge_group_id(topic_prefix)]
        killed = {m for g in groups for m in stable_members(kafka_broker.bootstrap, g)}
        time.sleep(rng.uniform(0.0, 1.0))
        worker.kill()
        worker = BusProcess(["worker"], env, log).start()
        wait_for_members(kafka_broker.bootstrap, groups, 1, 90, not_of=killed)
        time.sleep(rng.uniform(0.0, 1.0))
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
        wait_for_members(kafka_broker.bootstrap, [worker_app_id(topic_prefix),
                                                  edge_group_id(topic_prefix)], 2, 90)
        produce(kafka_broker.bootstrap, scenario.messages)
        updates = decoded_updates(kafka_broker.bootstrap, topic_prefix,
                                  expected_update_count(scenario), timeout=240)
        assert_archives_match(scenario, updates)
    finally:
        first.stop()
        second.stop()
    assert first.output().count("Traceback") == 0 and second.output().count("Traceback") == 0
