"""Helpers of the fault-injection suite: the bus's real processes on one topic prefix and one
SQLite platform database, crashes, completion waits and the platform state as comparable data.

Everything runs the project's own commands (`creditbus worker`, `creditbus sink`,
`creditbus verify`) as subprocesses, exactly as an operator runs them; a crash is SIGKILL of the
process group.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.kafka.admin import TopicSpec, admin_client, delete_topics, ensure_topics
from creditbus.kafka.lag import workers_lag
from creditbus.topics import (
    by_person_topic,
    deadletter_topic,
    edge_group_id,
    raw_topic,
    sink_deadletter_topic,
    updates_topic,
    worker_app_id,
    worker_groups,
)
from tests.bus import BusProcess, read_topic, wait_for_members, worker_env

SECRET = "test-secret"
"""The person-key secret of every process of the suite (so two runs' person keys agree)."""

PARTITIONS = 4
"""Partitions of the by-person and updates topics (as the bus's default)."""

_wire = Wire()


def units() -> list[str]:
    return [u.code for u in default_catalog().units]


@dataclass
class PlatformState:
    """The platform tables that carry the archives, sorted by primary key; wall-clock columns
    (`committed_at`) and the sink's offsets left out, so that two runs compare equal."""

    persons: list[tuple[Any, ...]]
    records: list[tuple[Any, ...]]
    log: list[tuple[Any, ...]]

    @property
    def event_ids(self) -> Counter[str]:
        """Event ids in the update log (column 5), each counted as often as it was applied."""
        return Counter(row[5] for row in self.log if row[5] is not None)

    def differences(self, other: PlatformState, limit: int = 5) -> list[str]:
        """Human-readable differences (first `limit` per table)."""
        out: list[str] = []
        for name in ("persons", "records", "log"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine == theirs:
                continue
            a, b = set(mine), set(theirs)
            out.append(f"{name}: {len(mine)} rows vs {len(theirs)}; "
                       f"{len(a - b)} only here, {len(b - a)} only there")
            out += [f"  here only: {row[:4]}" for row in sorted(a - b)[:limit]]
            out += [f"  there only: {row[:4]}" for row in sorted(b - a)[:limit]]
        return out


def dump_platform(db_path: Path) -> PlatformState:
    """cb_person, cb_record and cb_update_log, read in one snapshot, sorted."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        conn.execute("BEGIN")
        persons = conn.execute("SELECT * FROM cb_person ORDER BY person_key").fetchall()
        records = conn.execute(
            "SELECT * FROM cb_record ORDER BY person_key, unit, record_id").fetchall()
        log = conn.execute(
            "SELECT person_key, version, previous_hash, hash, body, event_id, kind "
            "FROM cb_update_log ORDER BY person_key, version").fetchall()
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return PlatformState(persons, records, log)


@dataclass
class DeadLetter:
    reason: str
    stage: str
    source: tuple[str, int, int]  # topic, partition, offset
    headers: dict[str, str]
    value: bytes | None


def dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    out = []
    for msg in read_topic(bootstrap, topic):
        h = header_dict(msg.headers())
        out.append(DeadLetter(h.get("reason", ""), h.get("stage", ""),
                              (h.get("source.topic", ""), int(h.get("source.partition", -1)),
                               int(h.get("source.offset", -1))), h, msg.value()))
    return out


@dataclass
class FaultBus:
    """The bus's processes on one topic prefix and one SQLite platform database."""

    bootstrap: str
    prefix: str
    workdir: Path
    base_env: dict[str, str]
    processes: list[BusProcess] = field(default_factory=list)

    @classmethod
    def make(cls, bootstrap: str, prefix: str, workdir: Path) -> FaultBus:
        workdir.mkdir(parents=True, exist_ok=True)
        # Nothing of the developer's own bus configuration (a registry, field protection...).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CREDITBUS_") or k == "CREDITBUS_CACHE"}
        env.update(
            CREDITBUS_BOOTSTRAP=bootstrap, CREDITBUS_TOPIC_PREFIX=prefix,
            CREDITBUS_HOME=str(workdir / "home"), CREDITBUS_PERSON_KEY_SECRET=SECRET,
            CREDITBUS_LOG_LEVEL="INFO", CREDITBUS_PARTITIONS=str(PARTITIONS),
            CREDITBUS_DATABASE_URL=f"sqlite:///{workdir / 'platform.db'}",
            CREDITBUS_SINK_METRICS_PORT="0",
        )
        return cls(bootstrap, prefix, workdir, env)

    @property
    def db_path(self) -> Path:
        return self.workdir / "platform.db"

    # -- topics ---------------------------------------------------------------------------------

    def create_topics(self, raw_partitions: int = 1) -> None:
        """Every topic of the bus, before any process starts. `raw_partitions=1` keeps the
        inbound order of each unit total, so that a person's changes (all from one unit) reach
        the archive in the same order in every run and two runs' hash chains are comparable
        (across partitions of one topic Kafka promises no order)."""
        specs = [TopicSpec(raw_topic(self.prefix, u), raw_partitions) for u in units()]
        specs += [TopicSpec(by_person_topic(self.prefix), PARTITIONS),
                  TopicSpec(updates_topic(self.prefix), PARTITIONS),
                  TopicSpec(deadletter_topic(self.prefix), 1),
                  TopicSpec(sink_deadletter_topic(self.prefix), 1)]
        ensure_topics(admin_client(self.bootstrap), specs)

    def topic_names(self) -> list[str]:
        """Every topic of this prefix, Faust's changelogs included."""
        topics = admin_client(self.bootstrap).list_topics(timeout=10).topics
        return sorted(t for t in topics
                      if t.startswith(self.prefix + ".") or t.startswith(self.prefix + "-"))

    def delete_topics(self) -> None:
        try:
            delete_topics(admin_client(self.bootstrap), self.topic_names())
        except Exception:  # noqa: BLE001 - cleanup only; the broker may be gone
            pass

    # -- processes ------------------------------------------------------------------------------

    def worker(self, name: str = "w1", **extra: str) -> BusProcess:
        """A worker process (not started). Its state directory and ports are fixed per name,
        so a restarted worker finds its RocksDB state again, as on a real host."""
        env_file = self.workdir / f"{name}.env.json"
        if env_file.exists():
            env = json.loads(env_file.read_text())
        else:
            env = worker_env(self.base_env, self.workdir / f"state-{name}", **extra)
            env_file.write_text(json.dumps(env))
        proc = BusProcess(["worker"], env, self.workdir / f"{name}.log")
        self.processes.append(proc)
        return proc

    def sink(self, *options: str, name: str = "sink", log: str | None = None) -> BusProcess:
        """A platform sink process (not started), with static membership (instance id `name`)
        so that a restarted sink gets its partitions back at once."""
        proc = BusProcess(["sink", "--instance-id", name, *options], dict(self.base_env),
                          self.workdir / f"{log or name}.log")
        self.processes.append(proc)
        return proc

    def run_sink_until_idle(self, idle: float = 2.0, timeout: float = 240.0) -> None:
        """`creditbus sink --until-idle`: write everything the updates topic holds, then exit.

        It takes the long-running sink's place (the same instance id): a static member that
        stopped stays in the group until its session times out (45 s), so a sink of another
        id would wait that long for its first assignment."""
        proc = self.sink("--until-idle", str(idle), log="sink-final").start()
        assert proc.proc is not None
        try:
            code = proc.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"sink --until-idle did not finish in {timeout:.0f} s:\n"
                                 + proc.output()[-3000:]) from None
        assert code == 0, f"sink exited {code}:\n{proc.output()[-3000:]}"

    def settle(self, sink: BusProcess, problems: list[str], commit_wait: float = 30.0,
               ) -> PlatformState:
        """Once the output is out: check the worker group's commits, stop the long-running sink
        (SIGTERM), write the rest with `sink --until-idle`, stop everything, dump the platform.
        """
        problems += self.commit_problem(commit_wait)
        if sink.stop() != 0:
            problems.append(f"{self.prefix}: the sink did not stop cleanly on SIGTERM")
        self.run_sink_until_idle()
        self.stop_all()
        return dump_platform(self.db_path)

    def verify(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "creditbus.cli.main", "verify"],
                              env=self.base_env, capture_output=True, text=True, timeout=300)

    def stop_all(self) -> None:
        for proc in self.processes:
            proc.stop(timeout=30)

    def logs(self) -> str:
        """Every log of this bus's processes (workers, sinks), with file names."""
        parts = []
        for path in sorted(self.workdir.glob("*.log")):
            parts.append(f"==> {path.name} <==\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def crashes_in_logs(self) -> list[str]:
        """Log lines that show a process crashing (not a SIGKILL of ours, which leaves none)."""
        bad = []
        for path in sorted(self.workdir.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if "Traceback" in line or "Crashed" in line:
                    bad.append(f"{path.name}: {line[:300]}")
        return bad

    # -- progress -------------------------------------------------------------------------------

    def wait_for_workers(self, members: int, timeout: float = 90.0) -> None:
        """Until both worker groups (the Faust app's, the edge stage's) are stable with
        `members` members, each owning partitions: workers joined or left, tables moved."""
        wait_for_members(self.bootstrap, [worker_app_id(self.prefix),
                                          edge_group_id(self.prefix)], members, timeout)

    def wait_for_sink(self, timeout: float = 60.0) -> None:
        """Until the long-running sink's group is stable with its partitions assigned."""
        wait_for_members(self.bootstrap, [f"{self.prefix}-platform-sink"], 1, timeout)

    def worker_lag(self) -> int:
        return workers_lag(self.bootstrap, self.prefix, units())

    def lagging(self) -> list[str]:
        """'topic[partition] committed/end' of every worker partition not committed to its end."""
        out = []
        for group, topics in worker_groups(self.prefix, units()):
            consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                                 "enable.auto.commit": False})
            try:
                metadata = consumer.list_topics(timeout=10)
                parts = [TopicPartition(t, p) for t in topics if t in metadata.topics
                         for p in metadata.topics[t].partitions]
                for tp in consumer.committed(parts, timeout=10):
                    low, high = consumer.get_watermark_offsets(tp, timeout=10)
                    position = tp.offset if tp.offset >= 0 else low
                    if position < high:
                        out.append(f"{tp.topic[len(self.prefix) + 1:]}[{tp.partition}] "
                                   f"committed {position} of {high}")
            finally:
                consumer.close()
        return out

    def commit_problem(self, timeout: float = 30.0) -> list[str]:
        """[] once the worker group's commits caught up, else one line saying where not."""
        lag = self.wait_committed(timeout)
        if lag == 0:
            return []
        return [f"{self.prefix}: the worker group's commits stay {lag} messages behind "
                f"although all its output is out: {', '.join(self.lagging())}"]

    def wait_committed(self, timeout: float = 30.0) -> int:
        """Wait until the worker group has committed past every inbound and by-person message;
        return the lag left (0 when it caught up)."""
        deadline = time.monotonic() + timeout
        lag = -1
        while time.monotonic() < deadline:
            try:
                lag = self.worker_lag()
            except Exception:  # noqa: BLE001 - the broker may be restarting
                lag = -1
            if lag == 0:
                return 0
            time.sleep(1.0)
        return lag

    def watch(self) -> OutputWatcher:
        return OutputWatcher(self.bootstrap, self.prefix)


class OutputWatcher:
    """Follows the updates and dead-letter topics of a prefix from their beginning, keeping
    the distinct updates ((person key, version) -> hash; a repeat must be identical) and the
    distinct dead letters (by source position: dead letters are at-least-once)."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": f"faults-{uuid.uuid4().hex}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "log_level": 0,  # quiet while a broker restart is under test
        })
        self.updates_topic = updates_topic(prefix)
        assignment = []
        for topic in (self.updates_topic, deadletter_topic(prefix)):
            assignment += [TopicPartition(topic, p, 0) for p in self._partitions(topic)]
        self.consumer.assign(assignment)
        self.updates: dict[tuple[str, int], str] = {}
        self.event_ids: Counter[str] = Counter()
        self.divergent: list[tuple[str, int]] = []
        self.messages = 0
        self.dead: dict[tuple[str, int, int], DeadLetter] = {}

    def _partitions(self, topic: str, timeout: float = 30.0) -> list[int]:
        """The partitions of `topic`, once the broker knows them all (right after a topic was
        created its metadata may list none yet)."""
        deadline = time.monotonic() + timeout
        while True:
            metadata = self.consumer.list_topics(topic, timeout=10).topics[topic]
            partitions = metadata.partitions
            if metadata.error is None and partitions and \
                    all(p.error is None and p.leader >= 0 for p in partitions.values()):
                return sorted(partitions)
            if time.monotonic() > deadline:
                raise AssertionError(f"no metadata for {topic} after {timeout:.0f} s")
            time.sleep(0.5)

    def poll(self, seconds: float) -> int:
        """Read for `seconds`; return how many messages arrived."""
        end = time.monotonic() + seconds
        got = 0
        while (left := end - time.monotonic()) > 0:
            for msg in self.consumer.consume(1000, min(left, 0.5)):
                if msg.error():
                    continue
                got += 1
                if msg.topic() == self.updates_topic:
                    self._update(msg)
                else:
                    h = header_dict(msg.headers())
                    source = (h.get("source.topic", ""), int(h.get("source.partition", -1)),
                              int(h.get("source.offset", -1)))
                    self.dead.setdefault(source, DeadLetter(
                        h.get("reason", ""), h.get("stage", ""), source, h, msg.value()))
        return got

    def _update(self, msg: Message) -> None:
        self.messages += 1
        u = _wire.decode(msg.value()).datum
        key = (u["person_key"], u["version"])
        known = self.updates.get(key)
        if known is None:
            self.updates[key] = u["hash"]
            if u["event_id"] is not None:
                self.event_ids[u["event_id"]] += 1  # distinct updates per event: must be 1
        elif known != u["hash"]:
            self.divergent.append(key)

    def wait_for_updates(self, updates: int, timeout: float = 60.0) -> None:
        """Until at least `updates` distinct updates arrived: the bus is at work."""
        deadline = time.monotonic() + timeout
        while len(self.updates) < updates:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.updates)} of {updates} updates after "
                                     f"{timeout:.0f} s")
            self.poll(0.2)

    def wait(self, updates: int, dead_letters: int, timeout: float, quiet: float = 3.0) -> bool:
        """Until at least `updates` distinct updates and `dead_letters` distinct dead letters
        arrived and then nothing more for `quiet` seconds; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(1.0)
            if len(self.updates) >= updates and len(self.dead) >= dead_letters:
                while time.monotonic() < deadline and self.poll(quiet):
                    pass
                return True
        return False

    def reasons(self) -> Counter[str]:
        return Counter(d.reason for d in self.dead.values())

    def close(self) -> None:
        self.consumer.close()


def scenario_lost(state: PlatformState, scenario: Any, reasons: Counter[str]) -> int:
    """Updates missing from the platform plus dead letters missing from the topic."""
    missing_dead = sum((scenario.dead_letter_reasons - reasons).values())
    return max(0, sum(scenario.expected_versions().values()) - len(state.log)) + missing_dead


def scenario_problems(state: PlatformState, scenario: Any) -> list[str]:
    """How the platform differs from what a `tests.streams_data.Scenario` says by construction:
    every record at its version, retraction flag, category and latest content; every person at
    the number of changes made to it; every change applied exactly once."""
    problems: list[str] = []
    records = {(r[0], r[1], r[2]): r for r in state.records}
    for key, truth in scenario.records.items():
        row = records.pop(key, None)
        if row is None:
            problems.append(f"record {key[1]}/{key[2]} of {key[0][:12]} missing")
            continue
        got = (row[3], bool(row[13]), row[5])
        want = (truth.versions, truth.retracted, truth.category)
        if got != want:
            problems.append(f"record {key[1]}/{key[2]}: (version, retracted, category) {got} "
                            f"instead of {want}")
        elif not truth.retracted and truth.marker not in row[14]:
            problems.append(f"record {key[1]}/{key[2]}: not the latest content")
    problems += [f"record {k[1]}/{k[2]} not in the input" for k in list(records)[:10]]
    versions = {r[0]: r[7] for r in state.persons}
    expected = scenario.expected_versions()
    if versions != expected:
        wrong = [pk for pk in set(versions) | set(expected) if versions.get(pk) != expected.get(pk)]
        problems.append(f"{len(wrong)} persons at the wrong version, e.g. "
                        f"{[(pk[:12], versions.get(pk), expected.get(pk)) for pk in wrong[:5]]}")
    if len(state.log) != sum(expected.values()):
        problems.append(f"{len(state.log)} updates applied instead of {sum(expected.values())}")
    return problems


def assert_no_problems(problems: list[str]) -> None:
    """Fail on any problem, a worker group whose commits stopped advancing included (the
    stuck commit of stock faust-streaming after a rebalance, fixed by streams/transport.py)."""
    assert not problems, "\n".join(problems[:20])
