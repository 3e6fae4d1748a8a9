"""Broker restart: the broker stops (`down`, its data kept) in the middle of a run and starts
again on the same ports; the producer, the worker and the sink are not restarted and must
recover on their own, and the platform must end exactly as the input says.

The case uses a broker of its own (a `LocalBroker` in a temporary home), never the session
broker that the other tests share.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from creditbus.devtools.kafka.local import LocalBroker
from creditbus.publish.producer import PRODUCER_DEFAULTS
from creditbus.settings import Settings
from tests.faults.conftest import Report
from tests.faults.harness import (
    SECRET,
    FaultBus,
    assert_no_problems,
    scenario_lost,
    scenario_problems,
)
from tests.streams_data import ScenarioBuilder

SEED = 20260
PERSONS = 800
OUTAGE_S = 8.0


@pytest.fixture()
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this case's own; `LocalBroker` comes back on its ports after `down`."""
    settings = Settings.from_env()
    broker = LocalBroker(tmp_path / "kafka-home", settings.cache, settings.kafka_version,
                         heap="384m", jvm_options=settings.kafka_jvm_options)
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
    own_broker: LocalBroker, topic_prefix: str, tmp_path: Path, faults_report: Report,
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
        bus.wait_for_workers(1)
        bus.wait_for_sink()
        producer = PacedProducer(bootstrap, scenario.messages, seconds=20.0)
        producer.start()
        watcher.wait_for_updates(expected_updates // 10)  # the bus is at work: stop it now
        own_broker.down()  # clean stop, data kept
        time.sleep(OUTAGE_S)
        back = own_broker.up(quiet=True)
        # the same ports, so the running worker, sink and producer find it again (regression:
        # it once moved, broker.json deleted before the ports were chosen and a port check
        # without SO_REUSEADDR refusing ports in TIME_WAIT)
        assert back.bootstrap == bootstrap
        producer.join(240)
        assert not producer.is_alive() and producer.remaining == 0 and not producer.failures, \
            producer.failures[:5]
        processes_survived = worker.alive() and sink.alive()
        if not watcher.wait(expected_updates, expected_dead, 240):
            problems.append("the output did not complete in 240 s after the restart")
        platform = bus.settle(sink, problems)
        verified = bus.verify()
        problems += bus.crashes_in_logs()
    finally:
        watcher.close()
        bus.stop_all()

    wrong = scenario_problems(platform, scenario)
    reasons = watcher.reasons()
    lost = scenario_lost(platform, scenario, reasons)
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
