"""Broker restart: the broker stops (`down`, its data kept) in the middle of a run and starts
again on the same ports; the producer, the worker and the sink are not restarted and must
recover on their own, and the platform must end exactly as the input says.

The case uses a broker of its own (a `LocalBroker` in a temporary home), never the session
broker that the other tests share.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from creditbus.kafka.local import BrokerState, LocalBroker
from creditbus.publish.producer import PRODUCER_DEFAULTS
from creditbus.settings import Settings
from tests.faults.conftest import Report
from tests.faults.harness import (
    SECRET,
    FaultBus,
    assert_no_problems,
    dump_platform,
    scenario_problems,
)
from tests.streams_data import ScenarioBuilder

SEED = 20260
PERSONS = 800
OUTAGE_S = 8.0


def _bindable(port: int) -> bool:
    """Free for a server socket (SO_REUSEADDR, as the JVM binds): connections of the stopped
    broker left in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class SamePortsBroker(LocalBroker):
    """A LocalBroker that starts again on the ports of its first start.

    `LocalBroker.down()` deletes `broker.json`, and `up()` deletes a stale one before it
    chooses ports, so its "reuse the recorded ports" branch is never taken (and its
    `port_is_free` check, without SO_REUSEADDR, fails for a minute after a stop anyway): a
    restarted broker comes back on new ports, where running clients cannot find it. Reported
    with this suite (`test_a_restarted_local_broker_keeps_its_ports`); the case pins the ports.
    """

    ports: tuple[int, int] | None = None

    def _choose_ports(self, previous: BrokerState | None) -> tuple[int, int]:
        if self.ports and all(_bindable(p) for p in self.ports):
            return self.ports
        self.ports = super()._choose_ports(previous)
        return self.ports


@pytest.fixture()
def own_broker(tmp_path: Path) -> Iterator[SamePortsBroker]:
    settings = Settings.from_env()
    broker = SamePortsBroker(tmp_path / "kafka-home", settings.cache, settings.kafka_version,
                             heap="384m")
    broker.up(quiet=True)
    try:
        yield broker
    finally:
        broker.down(purge=True)


class PacedProducer(threading.Thread):
    """Produces the messages in order, a slice at a time, with an idempotent producer (the
    publisher SDK's settings); keeps going while the broker is away."""

    def __init__(self, bootstrap: str, messages: list[tuple[str, bytes | None, bytes]],
                 seconds: float) -> None:
        super().__init__(daemon=True)
        # log_level 0: the connection refusals while the broker is away are expected.
        self.producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS,
                                  "log_level": 0})
        self.messages = messages
        self.seconds = seconds
        self.failures: list[str] = []
        self.delivered = 0
        self.remaining = -1

    def _report(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))
        else:
            self.delivered += 1

    def run(self) -> None:
        slices = 50
        size = -(-len(self.messages) // slices)
        for i in range(0, len(self.messages), size):
            for topic, key, value in self.messages[i:i + size]:
                self.producer.produce(topic, key=key, value=value, on_delivery=self._report)
            self.producer.poll(0)
            time.sleep(self.seconds / slices)
        self.remaining = self.producer.flush(180)


@pytest.mark.timeout(480)
def test_broker_stopped_and_started_mid_run_loses_and_doubles_nothing(
    own_broker: SamePortsBroker, topic_prefix: str, tmp_path: Path, faults_report: Report,
) -> None:
    started = time.monotonic()
    state = own_broker.status().state
    assert state is not None
    bootstrap = state.bootstrap
    bus = FaultBus.make(bootstrap, topic_prefix, tmp_path / "bus")
    scenario = ScenarioBuilder(topic_prefix, SECRET.encode(), seed=SEED).mixed(
        persons=PERSONS, bad_fraction=0.03)
    expected_updates = sum(scenario.expected_versions().values())
    expected_dead = sum(scenario.dead_letter_reasons.values())
    problems: list[str] = []
    bus.create_topics(raw_partitions=4)
    watcher = bus.watch()
    try:
        worker = bus.worker().start()
        sink = bus.sink().start()
        time.sleep(10)  # the worker has joined its group
        producer = PacedProducer(bootstrap, scenario.messages, seconds=20.0)
        producer.start()
        time.sleep(6)
        own_broker.down()  # clean stop, data kept
        time.sleep(OUTAGE_S)
        back = own_broker.up(quiet=True)
        assert back.bootstrap == bootstrap
        producer.join(240)
        assert not producer.is_alive() and producer.remaining == 0 and not producer.failures, \
            producer.failures[:5]
        processes_survived = worker.alive() and sink.alive()
        if not watcher.wait(expected_updates, expected_dead, 240):
            problems.append("the output did not complete in 240 s after the restart")
        problems += bus.commit_problem(30)
        if sink.stop() != 0:
            problems.append("the sink did not stop cleanly on SIGTERM")
        bus.run_sink_until_idle(idle=5.0)
        bus.stop_all()
        platform = dump_platform(bus.db_path)
        verified = bus.verify()
        problems += bus.crashes_in_logs()
    finally:
        watcher.close()
        bus.stop_all()

    wrong = scenario_problems(platform, scenario)
    reasons = watcher.reasons()
    missing_dead = sum((scenario.dead_letter_reasons - reasons).values())
    lost = max(0, expected_updates - len(platform.log)) + missing_dead
    print(f"broker-restart: {len(scenario.messages)} messages, broker away {OUTAGE_S:.0f} s, "
          f"{time.monotonic() - started:.0f} s", flush=True)
    faults_report("broker-restart", events_in=len(scenario.messages),
                  archived=len(platform.log), dead_lettered=sum(reasons.values()), lost=lost,
                  detail="\n".join(wrong + problems))

    assert processes_survived, bus.logs()[-4000:]
    assert not wrong, "\n".join(wrong[:20])
    assert reasons == scenario.dead_letter_reasons
    # Replays may repeat an update, never change it; each event caused one distinct update.
    assert not watcher.divergent and len(watcher.updates) == expected_updates
    assert set(watcher.event_ids.values()) == {1}
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    assert_no_problems(problems)


@pytest.mark.timeout(180)
def test_a_restarted_local_broker_keeps_its_ports(tmp_path: Path) -> None:
    """Minimal reproduction: `creditbus kafka down` then `up` moves the broker to new ports,
    so every running worker, sink and publisher (configured with the old bootstrap address)
    loses it for good. `LocalBroker._choose_ports` would reuse the recorded ports, but
    `down()` deletes broker.json and `up()` deletes a stale one (`_clean_stale`) before
    `_start` reads it; and its `port_is_free` (no SO_REUSEADDR) refuses a port for about a
    minute after a stop, while the broker's connections sit in TIME_WAIT."""
    settings = Settings.from_env()
    broker = LocalBroker(tmp_path / "kafka-home", settings.cache, settings.kafka_version,
                         heap="256m")
    try:
        first = broker.up(quiet=True)
        broker.down()
        second = broker.up(quiet=True)
    finally:
        broker.down(purge=True)
    assert second.bootstrap == first.bootstrap
