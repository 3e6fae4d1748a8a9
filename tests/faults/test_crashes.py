"""Crashes: SIGKILL of the stream worker, of the sink, and of both, at random moments of a
seeded run; the platform must end exactly as after an uninterrupted run of the same input.

20,000 events by default (about a minute and a half on the shared 2-core machine, within
`make test`'s 10 minutes); the twelve kills and the row-for-row comparison are the same at any
size.
`CREDITBUS_FAULTS_EVENTS=100000` runs the full-size case the first fault issue asked for (about
4 minutes alone); `CREDITBUS_FAULTS_SEED` picks another run.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from creditbus.catalog import default_catalog
from creditbus.devtools.bench.workload import Workload
from creditbus.topics import raw_topic, unit_of_raw_topic
from tests.bus import BusProcess, produce
from tests.faults.conftest import Report
from tests.faults.harness import (
    FaultBus,
    OutputWatcher,
    PlatformState,
    assert_no_problems,
)

EVENTS = int(os.environ.get("CREDITBUS_FAULTS_EVENTS", "20000"))
SEED = int(os.environ.get("CREDITBUS_FAULTS_SEED", "20260"))
ROUNDS = ("worker", "sink", "both") * 3
"""Nine rounds, twelve SIGKILLs: the worker alone, the sink alone, both together, three times."""
CHUNKS = len(ROUNDS) + 1


def _retarget(messages: list[tuple[str, bytes, bytes]], source: str, target: str,
              ) -> list[tuple[str, bytes, bytes]]:
    """The same messages on the inbound topics of another prefix."""
    out = []
    for topic, key, value in messages:
        unit = unit_of_raw_topic(source, topic)
        assert unit is not None
        out.append((raw_topic(target, unit), key, value))
    return out


def _finish(bus: FaultBus, sink: BusProcess, watcher: OutputWatcher, counts: Any,
            timeout: float, problems: list[str]) -> PlatformState:
    """Let the worker finish (every update and dead letter out, its offsets committed), stop
    the long-running sink, write the rest with `sink --until-idle`, dump the platform."""
    if not watcher.wait(counts.valid, counts.bad, timeout):
        problems.append(f"{bus.prefix}: after {timeout:.0f} s only {len(watcher.updates)} of "
                        f"{counts.valid} updates and {len(watcher.dead)} of {counts.bad} dead "
                        "letters")
    # A worker restarted just before the end may still wait for the group to drop the member
    # it replaced (session timeout) and recover its table before it commits.
    return bus.settle(sink, problems, commit_wait=60)


@pytest.mark.timeout(max(900, EVENTS // 20))
def test_kills_of_worker_and_sink_leave_the_platform_as_an_uninterrupted_run(
    kafka_broker: Any, topic_prefix: str, tmp_path: Path, faults_report: Report,
) -> None:
    """`EVENTS` inbound messages (about 10 % exact duplicates and 2 % bad, from the seeded
    benchmark workload) into two buses on the same broker: one runs undisturbed (the
    reference), the other has its worker, its sink and both SIGKILLed at random moments while
    updates flow, twelve kills in nine rounds, each process restarted at once. Both end with
    `sink --until-idle`; their platform databases must hold the same persons, records,
    versions, chain heads and update logs, every valid event exactly once, and
    `creditbus verify` must pass on both."""
    started = time.monotonic()
    bootstrap = kafka_broker.bootstrap
    crashed = FaultBus.make(bootstrap, topic_prefix + "k", tmp_path / "crashed")
    reference = FaultBus.make(bootstrap, topic_prefix + "r", tmp_path / "reference")
    workload = Workload(default_catalog(), crashed.prefix, seed=SEED)
    messages = list(workload.messages(EVENTS))
    counts = workload.counts
    problems: list[str] = []
    watchers: list[OutputWatcher] = []
    try:
        for bus in (crashed, reference):
            bus.create_topics(raw_partitions=1)
            watchers.append(bus.watch())
        crashed_out, reference_out = watchers

        # The reference runs in the background all along (it uses the CPU while the crashed
        # bus waits for the group to notice a dead worker).
        reference.worker().start()
        ref_sink = reference.sink().start()
        produce(bootstrap, _retarget(messages, crashed.prefix, reference.prefix))

        rng = random.Random(SEED)
        worker = crashed.worker().start()
        sink = crashed.sink().start()
        size = -(-len(messages) // CHUNKS)
        chunks = [messages[i:i + size] for i in range(0, len(messages), size)]
        kills = 0
        for round_, target in enumerate(ROUNDS):
            produce(bootstrap, chunks[round_])
            # Kill while the processes work: once new updates flow, after a random delay.
            seen = crashed_out.messages
            deadline = time.monotonic() + 60
            while crashed_out.messages < seen + 50 and time.monotonic() < deadline:
                crashed_out.poll(0.2)
            time.sleep(rng.uniform(0.0, 2.0))
            if target in ("worker", "both"):
                worker.kill()
                kills += 1
            if target in ("sink", "both"):
                sink.kill()
                kills += 1
            if target in ("worker", "both"):
                worker = crashed.worker().start()
            if target in ("sink", "both"):
                sink = crashed.sink().start()
        for chunk in chunks[len(ROUNDS):]:
            produce(bootstrap, chunk)

        budget = max(420, EVENTS // 40)  # seconds for the rest of the output
        got = _finish(crashed, sink, crashed_out, counts, budget, problems)
        expected = _finish(reference, ref_sink, reference_out, counts, budget, problems)
        verified = [bus.verify() for bus in (crashed, reference)]
        problems += crashed.crashes_in_logs() + reference.crashes_in_logs()
        # A replay the worker could not re-emit (its updates no longer kept) is a promise
        # broken even when the original updates happened to be delivered before the kill.
        problems += [line for line in crashed.logs().splitlines()
                     if "cannot replay" in line or "replay of versions" in line]
    finally:
        for watcher in watchers:
            watcher.close()
        crashed.stop_all()
        reference.stop_all()
        crashed.delete_topics()
        reference.delete_topics()

    archived = len(got.event_ids)
    dead_lettered = len(crashed_out.dead)
    lost = (counts.valid - archived) + (counts.bad - dead_lettered)
    differences = got.differences(expected)
    print(f"crashes: {kills} kills in {len(ROUNDS)} rounds, {len(messages)} events, "
          f"{crashed_out.messages} updates on the topic for {len(crashed_out.updates)} "
          f"distinct, {time.monotonic() - started:.0f} s", flush=True)
    faults_report("crashes", events_in=len(messages), archived=archived,
                  dead_lettered=dead_lettered, lost=lost,
                  detail="\n".join(differences + problems))

    assert kills >= 10
    # Exactly as the uninterrupted run: persons, records, versions, chain heads, log.
    assert not differences, "\n".join(differences)
    # And as the input says: every valid event applied once, each record at version 1.
    for state in (expected, got):
        ids = state.event_ids
        assert len(ids) == counts.valid and set(ids.values()) == {1}
        assert len(state.records) == counts.valid
        assert {row[3] for row in state.records} == {1}  # record_version
    for result in verified:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # On the topic: replays after the kills may repeat an update, never change it; each
    # event caused one distinct update; every bad message was dead-lettered with a reason.
    assert not crashed_out.divergent, crashed_out.divergent[:5]
    assert len(crashed_out.updates) == counts.valid
    assert set(crashed_out.event_ids.values()) == {1}
    assert all(d.reason for d in crashed_out.dead.values())
    assert_no_problems(problems)


