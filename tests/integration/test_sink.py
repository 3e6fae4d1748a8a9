"""The platform sink on the real broker and real databases (SQLite and PostgreSQL).

Updates are made by the core itself (tests/platform_data.py), produced keyed by person key with
the duplicates the streams produce after a crash, and the sink must land them exactly: every
person's version and chain head, every record row, and `creditbus verify` clean.
"""

from __future__ import annotations

import io
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from creditbus.connectors.backoff import Backoff
from creditbus.connectors.consuming import LoopOptions
from creditbus.connectors.platform import verify as verify_mod
from creditbus.connectors.platform.sink import run_platform_sink
from prometheus_client import REGISTRY

from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.kafka.admin import TopicSpec, admin_client, delete_topics, ensure_topics
from creditbus.platformdb.db import open_db
from creditbus.topics import sink_deadletter_topic, updates_topic
from tests.bus import BusProcess, consume_all, produce
from tests.conftest import Topics
from tests.platform_data import (
    Generator,
    Person,
    UpdateStream,
    encode,
    expected_rows,
    generate,
    with_replays,
)

PARTITIONS = 4
BIG_UPDATES = 15_000
"""Enough for every partition to carry a backlog the lag metric shows and hundreds of batches
(50,000 proved nothing more and cost a minute to generate, per run)."""


def _cached(fn: Callable[[], UpdateStream]) -> Callable[[], UpdateStream]:
    made: list[UpdateStream] = []

    def get() -> UpdateStream:
        if not made:
            made.append(fn())
        return made[0]

    return get


big_stream = _cached(lambda: generate(1000, BIG_UPDATES, seed=3))
kill_stream = _cached(lambda: generate(1200, 20_000, seed=5))


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels or None) or 0.0


def make_topics(topics: Topics, prefix: str) -> str:
    topics.create("archive.updates", PARTITIONS)
    topics.create("sink.deadletter", 1)
    return updates_topic(prefix)


def run_sink(bootstrap: str, prefix: str, url: str, *, group: str | None = None,
             until_idle: float = 3.0, batch_size: int = 500) -> tuple[int, float]:
    """The sink in this process until idle; (exit code, seconds)."""
    options = LoopOptions(bootstrap=bootstrap, topic=updates_topic(prefix),
                          group=group or f"sink-{uuid.uuid4().hex[:8]}", batch_size=batch_size,
                          batch_ms=200, until_idle=until_idle,
                          backoff=Backoff(initial=0.05, factor=2.0, cap=1.0))
    started = time.monotonic()
    code = run_platform_sink(options, url, sink_deadletter_topic(prefix), Wire())
    return code, time.monotonic() - started


def table_dump(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every table, with the wall-clock columns and the group name left out."""
    db = open_db(url)
    try:
        with db.snapshot():
            logs = [{k: v for k, v in r.items() if k != "committed_at"}
                    for r in db.iter_rows("cb_update_log")]
            offsets = [{"topic": r["topic"], "partition": r["partition"],
                        "next_offset": r["next_offset"]} for r in db.iter_rows("cb_sink_offset")]
            return {"cb_person": db.dump("cb_person"), "cb_record": db.dump("cb_record"),
                    "cb_update_log": logs, "cb_sink_offset": offsets}
    finally:
        db.close()


def assert_lands_exactly(url: str, stream: UpdateStream) -> None:
    persons, records = expected_rows(stream.updates)
    dump = table_dump(url)
    got_persons = {r["person_key"]: r for r in dump["cb_person"]}
    got_records = {(r["person_key"], r["unit"], r["record_id"]): r for r in dump["cb_record"]}
    assert len(got_persons) == len(persons)
    wrong = [k for k in persons if got_persons.get(k) != persons[k]]
    assert not wrong, f"{len(wrong)} persons differ, e.g. {got_persons.get(wrong[0])}"
    assert set(got_records) == set(records)
    wrong_r = [k for k in records if got_records[k] != records[k]]
    assert not wrong_r, f"{len(wrong_r)} records differ, e.g. {wrong_r[0]}"
    assert len(dump["cb_update_log"]) == len(stream.updates)


def verify_quietly(url: str) -> tuple[int, str]:
    out = io.StringIO()
    code = verify_mod.run(url, out=out)
    return code, out.getvalue()


def verify_cli(url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "creditbus.cli.main", "verify"],
                          env=dict(env, CREDITBUS_DATABASE_URL=url), capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/platform.db"
    make = request.getfixturevalue("fresh_postgres_url")
    return str(make())


@pytest.fixture(scope="module")
def big_topic(kafka_broker: Any) -> Iterator[str]:
    """`BIG_UPDATES` updates (plus replayed duplicates) on a 4-partition topic, shared by the
    module."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    admin = admin_client(kafka_broker.bootstrap)
    names = [updates_topic(prefix), sink_deadletter_topic(prefix)]
    ensure_topics(admin, [TopicSpec(names[0], PARTITIONS), TopicSpec(names[1], 1)])
    produce(kafka_broker.bootstrap, big_stream().topic_messages(names[0]))
    try:
        yield prefix
    finally:
        delete_topics(admin, names)


# -- the whole stream lands exactly ------------------------------------------------------------

class LagSampler(threading.Thread):
    """Samples `creditbus_consumer_lag` of one group while the sink runs."""

    def __init__(self, group: str) -> None:
        super().__init__(daemon=True)
        self.group = group
        self.samples: list[dict[str, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            sample = {s.labels["partition"]: s.value
                      for m in REGISTRY.collect() if m.name == "creditbus_consumer_lag"
                      for s in m.samples if s.labels.get("group") == self.group}
            if sample:
                self.samples.append(sample)


def test_a_large_stream_lands_exactly_and_verifies(
    kafka_broker: Any, big_topic: str, database_url: str, bus_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = big_stream()
    applied, skipped = metric("creditbus_sink_updates_applied_total"), \
        metric("creditbus_sink_updates_skipped_total")
    group = f"big-{uuid.uuid4().hex[:8]}"
    lag = LagSampler(group)
    lag.start()
    started = time.time()
    code, _seconds = run_sink(kafka_broker.bootstrap, big_topic, database_url, group=group,
                              until_idle=3.0)
    busy = metric("creditbus_sink_last_success_timestamp_seconds") - started
    lag.done.set()
    lag.join()
    assert code == 0
    assert_lands_exactly(database_url, stream)
    assert metric("creditbus_sink_updates_applied_total") - applied == len(stream.updates)
    assert metric("creditbus_sink_updates_skipped_total") - skipped == stream.duplicates
    assert metric("creditbus_publish_to_commit_seconds_count") >= len(stream.updates)
    assert any(v > 0 for sample in lag.samples for v in sample.values()), "lag never seen"
    complete = [s for s in lag.samples if len(s) == PARTITIONS]  # not while revoking
    assert complete[-1] == {str(p): 0.0 for p in range(PARTITIONS)}

    check = verify_cli(database_url, bus_env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"1000 persons, {len(stream.updates)} updates" in check.stdout
    with capsys.disabled():
        print(f"\n[sink {database_url.split(':')[0]}] {len(stream.messages)} messages "
              f"({len(stream.updates)} updates) in {busy:.1f} s from start to last commit: "
              f"{len(stream.messages) / busy:.0f} messages/s")


# -- crashes -----------------------------------------------------------------------------------

def _log_count(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM cb_update_log").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_sigkill_at_random_moments_ends_as_an_uninterrupted_run(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str],
    tmp_path: Path,
) -> None:
    stream = kill_stream()
    topic = make_topics(topics, topic_prefix)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))

    reference = f"sqlite:///{tmp_path}/reference.db"
    assert run_sink(kafka_broker.bootstrap, topic_prefix, reference, until_idle=2.0)[0] == 0

    path = tmp_path / "killed.db"
    env = dict(bus_env, CREDITBUS_DATABASE_URL=f"sqlite:///{path}",
               CREDITBUS_SINK_METRICS_PORT="0", CREDITBUS_LOG_LEVEL="WARNING")
    command = ["sink", "--until-idle", "2", "--instance-id", "kill-test", "--batch-size", "100",
               "--batch-ms", "50"]
    rng = random.Random(20220519)
    kills = 0
    for round_ in range(8):
        before = _log_count(path)
        proc = BusProcess(command, env, tmp_path / "sink.log").start()
        deadline = time.monotonic() + 60
        while proc.alive() and _log_count(path) <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        if not proc.alive():
            break
        proc.kill()
        kills += 1
        print(f"kill {round_ + 1}: {before} -> {_log_count(path)} updates")
    assert kills >= 5, f"only {kills} kills before the sink finished"
    assert _log_count(path) < len(stream.updates), "the kills came too late to matter"

    final = BusProcess(command, env, tmp_path / "sink.log").start()
    assert final.proc is not None
    assert final.proc.wait(120) == 0, final.output()[-3000:]

    assert table_dump(f"sqlite:///{path}") == table_dump(reference)
    assert_lands_exactly(reference, stream)
    check = verify_cli(f"sqlite:///{path}", bus_env)
    assert check.returncode == 0, check.stdout + check.stderr


def test_sigterm_finishes_the_batch_and_exits_0_and_a_restart_completes_exactly(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str],
    tmp_path: Path,
) -> None:
    stream = generate(500, 8000, seed=51)
    topic = make_topics(topics, topic_prefix)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    path = tmp_path / "term.db"
    url = f"sqlite:///{path}"
    env = dict(bus_env, CREDITBUS_DATABASE_URL=url, CREDITBUS_SINK_METRICS_PORT="0")
    proc = BusProcess(["sink", "--batch-size", "100", "--batch-ms", "50"], env,
                      tmp_path / "sink.log").start()
    deadline = time.monotonic() + 60
    while proc.alive() and _log_count(path) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.stop(timeout=30) == 0, proc.output()[-3000:]
    assert "SIGTERM received: finishing the current batch" in proc.output()
    assert 0 < _log_count(path) < len(stream.updates)
    assert verify_quietly(url)[0] == 0
    assert run_sink(kafka_broker.bootstrap, topic_prefix, url,
                    group=f"{topic_prefix}-platform-sink", until_idle=2.0)[0] == 0
    assert_lands_exactly(url, stream)


# -- tampering is found ------------------------------------------------------------------------

class _NoDeadLetters:
    def send(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("no dead letter expected")

    def flush(self) -> None:
        pass


def _fill(url: str, stream: UpdateStream) -> None:
    from creditbus.connectors.platform.sink import PlatformWriter
    from creditbus.connectors.updates import Incoming

    db = open_db(url)
    try:
        db.migrate()
        writer = PlatformWriter(db, Wire(), _NoDeadLetters(), "g", "t")  # type: ignore[arg-type]
        msgs = [Incoming("t", 0, i, k, v) for i, (k, v) in enumerate(stream.messages)]
        for i in range(0, len(msgs), 200):
            writer.write(writer.prepare(msgs[i:i + 200]))
    finally:
        db.close()


def _execute(url: str, sql: str, params: tuple[Any, ...]) -> int:
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql, params).rowcount
    with psycopg.connect(url, autocommit=True) as pg:
        return pg.execute(sql.replace("?", "%s"), params).rowcount


def test_verify_names_rows_altered_deleted_or_inserted_outside_the_bus(
    database_url: str, bus_env: dict[str, str],
) -> None:
    stream = generate(40, 600, seed=9)
    _fill(database_url, stream)
    check = verify_cli(database_url, bus_env)
    assert check.returncode == 0, check.stdout + check.stderr

    dump = table_dump(database_url)
    victim = dump["cb_record"][7]
    assert _execute(database_url, "UPDATE cb_record SET content_json = ? WHERE person_key = ? "
                    "AND unit = ? AND record_id = ?",
                    ('{"Note":{"title":"forged"}}', victim["person_key"], victim["unit"],
                     victim["record_id"])) == 1
    check = verify_cli(database_url, bus_env)
    assert check.returncode == 1
    line = (f"person {victim['person_key']} version {victim['person_version']} record "
            f"{victim['unit']}/{victim['record_id']}: cb_record differs from the log in "
            "content_json")
    assert line in check.stdout, check.stdout
    assert "1 problem(s)" in check.stdout

    persons = {p["person_key"]: p for p in dump["cb_person"]}
    deleted = next(r for r in dump["cb_update_log"]
                   if r["person_key"] != victim["person_key"] and r["version"] == 2
                   and persons[r["person_key"]]["archive_version"] >= 3)
    assert _execute(database_url, "DELETE FROM cb_update_log WHERE person_key = ? AND "
                    "version = ?", (deleted["person_key"], 2)) == 1
    check = verify_cli(database_url, bus_env)
    assert check.returncode == 1
    assert (f"person {deleted['person_key']} version 3: update log: version 3 where 2 was "
            "expected") in check.stdout, check.stdout

    forger = next(k for k in persons if k not in (victim["person_key"],
                                                  deleted["person_key"]))
    row = dict(victim, person_key=forger, record_id="FORGED-1", person_version=1)
    columns = list(row)
    _execute(database_url, f"INSERT INTO cb_record ({', '.join(columns)}) VALUES "
             f"({', '.join('?' * len(columns))})", tuple(row.values()))
    check = verify_cli(database_url, bus_env)
    assert check.returncode == 1
    assert (f"person {forger} version 1 record {victim['unit']}/FORGED-1: cb_record row not "
            "backed by the log") in check.stdout, check.stdout


# -- transient failures ------------------------------------------------------------------------

def _has_rows(url: str) -> bool:
    try:
        if url.startswith("sqlite:"):
            with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=5) as conn:
                return conn.execute("SELECT 1 FROM cb_update_log LIMIT 1").fetchone() is not None
        with psycopg.connect(url, autocommit=True) as pg:
            return pg.execute("SELECT 1 FROM cb_update_log LIMIT 1").fetchone() is not None
    except (sqlite3.Error, psycopg.Error):
        return False


def _when_rows_exist(url: str, action: Callable[[], None]) -> threading.Thread:
    """Run `action` in a thread as soon as the sink has committed its first batch."""
    def wait_then_act() -> None:
        deadline = time.monotonic() + 60
        while not _has_rows(url) and time.monotonic() < deadline:
            time.sleep(0.02)
        action()

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def test_sqlite_locked_for_a_while_loses_nothing(
    kafka_broker: Any, topics: Topics, topic_prefix: str, tmp_path: Path,
) -> None:
    stream = generate(300, 5000, seed=13)
    topic = make_topics(topics, topic_prefix)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    held: list[float] = []

    def hold_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        time.sleep(2.5)
        conn.execute("COMMIT")
        conn.close()
        held.append(time.monotonic() - started)

    retries = metric("creditbus_sink_retries_total")
    locker = _when_rows_exist(url, hold_lock)
    assert run_sink(kafka_broker.bootstrap, topic_prefix, url, batch_size=100)[0] == 0
    locker.join(30)
    assert held and held[0] >= 2.5
    assert metric("creditbus_sink_retries_total") - retries >= 1
    assert_lands_exactly(url, stream)
    assert verify_quietly(url)[0] == 0


@pytest.mark.postgres
def test_postgres_connection_terminated_loses_nothing(
    kafka_broker: Any, topics: Topics, topic_prefix: str,
    fresh_postgres_url: Callable[[], str], postgres_cluster: Any,
) -> None:
    stream = generate(300, 5000, seed=17)
    topic = make_topics(topics, topic_prefix)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    url = fresh_postgres_url()
    database = url.rsplit("/", 1)[1]
    terminated: list[int] = []

    def outage() -> None:
        with psycopg.connect(postgres_cluster.admin_url(), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
            try:
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name = 'creditbus-sink'",
                    (database,)).fetchall()
                terminated.append(len(rows))
                time.sleep(2.0)
            finally:
                admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')

    retries = metric("creditbus_sink_retries_total")
    thread = _when_rows_exist(url, outage)
    assert run_sink(kafka_broker.bootstrap, topic_prefix, url, batch_size=100)[0] == 0
    thread.join(30)
    assert terminated == [1]
    assert metric("creditbus_sink_retries_total") - retries >= 1
    assert_lands_exactly(url, stream)
    assert verify_quietly(url)[0] == 0


# -- poison pills ------------------------------------------------------------------------------

def _changes(gen: Generator, person: Person, count: int = 1) -> list[dict[str, Any]]:
    """Exactly `count` updates of `person` (a step may yield none: a sweep with nothing due)."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        out += gen.step(person)[:count - len(out)]
    return out


def _poisoned(names: list[str]) -> tuple[UpdateStream, list[dict[str, Any]], dict[str, Any]]:
    """A small stream plus updates the database refuses: one person per bad name (their only
    update), and one person whose middle update is bad (so the next one skips a version)."""
    gen = Generator(seed=21)
    people = [gen.person(i) for i in range(60)]
    updates: list[dict[str, Any]] = []
    for _ in range(500):
        updates += gen.step(people[gen.rng.randrange(len(people))])
    bad: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        p = gen.person(100 + i)
        p.name = name
        bad += _changes(gen, p)
    middle = gen.person(200)
    healthy = middle.name
    updates += _changes(gen, middle)
    middle.name = names[-1]
    bad += _changes(gen, middle)
    middle.name = healthy
    after = _changes(gen, middle)
    updates += after
    ordered = updates[:250] + bad + updates[250:]
    stream = with_replays(ordered, random.Random(4), 0.0)
    good = [u for u in ordered if u not in bad]
    return UpdateStream(good, stream.messages, 0), bad, after[0]


def test_poison_pills_go_to_the_sink_dead_letter_topic_and_the_rest_lands(
    kafka_broker: Any, topics: Topics, topic_prefix: str, database_url: str,
) -> None:
    long_name = "欧阳" * 40  # 80 characters, over the 64 of cb_person.name
    names = [long_name] if database_url.startswith("sqlite") else ["王\x00明", long_name]
    stream, bad, gap_update = _poisoned(names)
    topic = make_topics(topics, topic_prefix)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    gaps = metric("creditbus_sink_chain_breaks_total", kind="gap")
    dead = metric("creditbus_dead_letters_total", stage="sink",
                  reason="SINK_CONSTRAINT_VIOLATION") + \
        metric("creditbus_dead_letters_total", stage="sink", reason="SINK_INVALID_VALUE")

    assert run_sink(kafka_broker.bootstrap, topic_prefix, database_url)[0] == 0

    letters = consume_all(kafka_broker.bootstrap, sink_deadletter_topic(topic_prefix),
                          expect=len(bad), timeout=30)
    assert len(letters) == len(bad)
    bad_values = {encode(u): u for u in bad}
    for letter in letters:
        headers = header_dict(letter.headers())
        update = bad_values[letter.value()]
        assert headers["stage"] == "sink"
        assert headers["reason"] in ("SINK_CONSTRAINT_VIOLATION", "SINK_INVALID_VALUE")
        assert headers["source.topic"] == topic
        assert headers["person.key"] == update["person_key"]
        assert headers["person.version"] == str(update["version"])
        assert headers["message"]
    expected_reason = "SINK_CONSTRAINT_VIOLATION" if database_url.startswith("sqlite") \
        else "SINK_INVALID_VALUE"
    assert {header_dict(m.headers())["reason"] for m in letters} == {expected_reason}
    assert metric("creditbus_dead_letters_total", stage="sink",
                  reason="SINK_CONSTRAINT_VIOLATION") + \
        metric("creditbus_dead_letters_total", stage="sink",
               reason="SINK_INVALID_VALUE") - dead == len(bad)

    # Everything else landed; the update after the refused one was applied over the gap...
    assert_lands_exactly(database_url, stream)
    assert metric("creditbus_sink_chain_breaks_total", kind="gap") - gaps == 1
    # ... and verify reports that person's broken chain, and nothing else.
    code, output = verify_quietly(database_url)
    assert code == 1
    problems = [line for line in output.splitlines() if line.startswith("person ")]
    assert problems and all(line.startswith(f"person {gap_update['person_key']} version "
                                            f"{gap_update['version']}") for line in problems)


def test_an_older_version_never_overwrites_a_newer_one(
    kafka_broker: Any, topics: Topics, topic_prefix: str, tmp_path: Path,
) -> None:
    gen = Generator(seed=31)
    person = gen.person(0)
    updates = _changes(gen, person, 6)
    topic = make_topics(topics, topic_prefix)
    key = person.key.encode()
    late = [updates[0], updates[2], updates[1]]  # older versions after newer ones
    produce(kafka_broker.bootstrap,
            [(topic, key, encode(u)) for u in updates] + [(topic, key, encode(u)) for u in late])
    url = f"sqlite:///{tmp_path}/order.db"
    assert run_sink(kafka_broker.bootstrap, topic_prefix, url, until_idle=2.0)[0] == 0
    assert_lands_exactly(url, UpdateStream(updates, [], 0))
    assert verify_quietly(url)[0] == 0

