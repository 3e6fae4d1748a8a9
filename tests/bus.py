"""Helpers for tests that run the bus's real processes against the session broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from creditbus.devtools.kafka.ports import free_port


class BusProcess:
    """A `creditbus <command>` subprocess with its output in a log file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BusProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "creditbus.cli.main", *self.command],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash under test."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        return self.proc.returncode

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


TEST_WORKER_FAUST = {
    # Faust reads these from the environment. Its defaults suit a cluster, not a test that
    # starts, kills and adds workers on purpose: a 60 s session timeout keeps a SIGKILLed
    # worker's partitions (and its edge stage's, which follows the same timing) for a minute,
    # and every table recovery (at start and after each rebalance) first waits 3 s for more
    # rebalances to come.
    "BROKER_SESSION_TIMEOUT": "8",
    "BROKER_HEARTBEAT_INTERVAL": "1",
    "STREAM_RECOVERY_DELAY": "0",
}


def worker_env(bus_env: dict[str, str], state_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(bus_env)
    env.update(
        CREDITBUS_STATE_DIR=str(state_dir),
        CREDITBUS_WORKER_WEB_PORT=str(free_port()),
        CREDITBUS_WORKER_METRICS_PORT=str(free_port()),
        CREDITBUS_LOG_LEVEL="WARNING",
        **TEST_WORKER_FAUST,
    )
    env.update(extra)
    return env


def produce(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]]) -> int:
    """Produce (topic, key, value) in order with an idempotent producer; return the count."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 5})
    count = 0
    failures: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for topic, key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
    remaining = producer.flush(60)
    assert remaining == 0 and not failures, f"{remaining} undelivered, failures: {failures[:3]}"
    return count


def read_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> list[Message]:
    """Every message of `topic` up to its end as of now (high watermarks read first)."""
    return read_topics(bootstrap, [topic], timeout)[topic]


def read_topics(bootstrap: str, topics: Iterable[str], timeout: float = 60.0,
                ) -> dict[str, list[Message]]:
    """Every message of each topic up to its end as of now, with one consumer: the high
    watermarks are read first, and an empty topic costs no wait."""
    names = list(topics)
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
    })
    try:
        metadata = consumer.list_topics(timeout=30)
        ends: dict[tuple[str, int], int] = {}
        for topic in names:
            for p in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                if high > low:
                    ends[(topic, p)] = high
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        messages: dict[str, list[Message]] = {topic: [] for topic in names}
        done: set[tuple[str, int]] = set()
        deadline = time.monotonic() + timeout
        while len(done) < len(ends):
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {sorted(set(ends) - done)[:3]} took more than "
                                     f"{timeout:.0f} s")
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                where, off = (msg.topic(), msg.partition()), msg.offset()
                if off < ends[where]:
                    messages[where[0]].append(msg)
                if off >= ends[where] - 1:
                    done.add(where)
        return messages
    finally:
        consumer.close()


def consume_all(
    bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 120.0,
    idle: float = 3.0, done: Callable[[list[Message]], bool] | None = None,
) -> list[Message]:
    """Read a topic from the beginning until `expect` messages (or `done`), or until nothing
    new arrived for `idle` seconds once the topic's end was reached."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    metadata = consumer.list_topics(topic, timeout=30)
    partitions = metadata.topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                messages.append(msg)
                last_new = time.monotonic()
            if expect is not None and len(messages) >= expect:
                break
            if done is not None and done(messages):
                break
            if expect is None and done is None and time.monotonic() - last_new > idle:
                break
    finally:
        consumer.close()
    return messages


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stable_members(bootstrap: str, group: str) -> dict[str, int]:
    """Member id -> partitions owned, for the members of `group` once it is stable, else {}:
    what the broker's coordinator says, as `kafka-consumer-groups --describe` shows it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        description = admin.describe_consumer_groups(
            [group], request_timeout=10)[group].result(timeout=15)
    except (KafkaException, TimeoutError):  # the coordinator is loading or moving
        return {}
    if description.state != ConsumerGroupState.STABLE:
        return {}
    return {m.member_id: len(m.assignment.topic_partitions) for m in description.members}


def group_assignment(bootstrap: str, group: str) -> list[int]:
    """Partitions per member of `group` once it is stable (sorted), else []."""
    return sorted(stable_members(bootstrap, group).values())


def wait_for_members(bootstrap: str, groups: Iterable[str], members: int,
                     timeout: float = 60.0, *, not_of: Iterable[str] = ()) -> None:
    """Until each group is stable with `members` members that all own partitions, none of
    them one of the member ids `not_of` (members since replaced, e.g. by a restart)."""
    names = list(groups)
    old = set(not_of)

    def settled() -> bool:
        for group in names:
            owned = stable_members(bootstrap, group)
            if len(owned) != members or 0 in owned.values() or old & set(owned):
                return False
        return True

    wait_for(settled, timeout, f"{', '.join(names)} stable with {members} member(s) each",
             interval=0.2)
