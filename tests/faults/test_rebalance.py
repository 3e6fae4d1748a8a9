"""Rebalance: one worker, a second one joining mid-run, then the first leaving (SIGTERM) while
the input keeps coming; the platform ends exactly as the input says."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.bus import produce
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
PERSONS = 1500


@pytest.mark.timeout(480)
def test_a_worker_joining_and_one_leaving_mid_run_change_nothing_in_effect(
    kafka_broker: Any, topic_prefix: str, tmp_path: Path, faults_report: Report,
) -> None:
    """A mixed stream (updates, retractions, exact and content duplicates, bad events) in
    three slices: the first to worker 1 (worker 2 joins while it works on it), the second to
    the two once both own partitions and tables, the third after worker 1 was stopped with
    SIGTERM (a clean leave) and worker 2 took over all its partitions and tables. The sink
    runs throughout. Every record must end at its version, retraction flag and latest
    content, every person at its number of changes, each change applied once, every bad
    event dead-lettered with its reason, `creditbus verify` clean."""
    started = time.monotonic()
    bootstrap = kafka_broker.bootstrap
    bus = FaultBus.make(bootstrap, topic_prefix, tmp_path / "bus")
    scenario = ScenarioBuilder(topic_prefix, SECRET.encode(), seed=SEED).mixed(
        persons=PERSONS, bad_fraction=0.03)
    # Persons one after another, then the duplicates and bad events: the last slice, after
    # the handover, tests the dedup state worker 2 took over with the tables.
    messages = scenario.messages
    third = len(messages) // 3
    expected_updates = sum(scenario.expected_versions().values())
    expected_dead = sum(scenario.dead_letter_reasons.values())
    problems: list[str] = []
    bus.create_topics(raw_partitions=4)
    watcher = bus.watch()
    try:
        first = bus.worker("w1").start()
        sink = bus.sink().start()
        produce(bootstrap, messages[:third])
        watcher.wait_for_updates(expected_updates // 10)  # worker 1 at work
        second = bus.worker("w2").start()  # joins: the group rebalances, tables move
        bus.wait_for_workers(2)  # both own partitions: tables and partitions moved once
        watcher.poll(0.5)
        before = len(watcher.updates)
        produce(bootstrap, messages[third:2 * third])
        watcher.wait_for_updates(before + 100, 120)  # the two at work on the second slice
        first_exit = first.stop(timeout=60)  # leaves: worker 2 takes over everything
        produce(bootstrap, messages[2 * third:])
        if not watcher.wait(expected_updates, expected_dead, 300):
            problems.append("the output did not complete in 300 s")
        second_alive = second.alive()
        state = bus.settle(sink, problems)
        verified = bus.verify()
        problems += bus.crashes_in_logs()
    finally:
        watcher.close()
        bus.stop_all()
        bus.delete_topics()

    wrong = scenario_problems(state, scenario)
    reasons = watcher.reasons()
    lost = scenario_lost(state, scenario, reasons)
    print(f"rebalance: {len(messages)} messages, worker 1 exit {first_exit}, "
          f"{time.monotonic() - started:.0f} s", flush=True)
    faults_report("rebalance", events_in=len(messages), archived=len(state.log),
                  dead_lettered=sum(reasons.values()), lost=lost,
                  detail="\n".join(wrong + problems))

    assert not wrong, "\n".join(wrong[:20])
    assert reasons == scenario.dead_letter_reasons
    # Replays may repeat an update, never change it; each event caused one distinct update.
    assert not watcher.divergent and len(watcher.updates) == expected_updates
    assert set(watcher.event_ids.values()) == {1}
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    assert second_alive
    assert_no_problems(problems)
