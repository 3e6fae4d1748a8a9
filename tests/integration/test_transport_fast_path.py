"""CPU per record of a do-nothing Faust agent on Faust's own transport and on the owned one
(fast path), on the real broker. Each run is a fresh process and consumer group reading the
same single records; the CPU is the process's (all threads) from the first record to the last.

`CREDITBUS_TRANSPORT_BENCH_RECORDS` (default 10000) and `CREDITBUS_TRANSPORT_BENCH_RUNS`
(default 1) set the size; docs/faust-transport.md has the figures of a 100,000-record run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import faust
import pytest
from confluent_kafka import Producer

from tests.conftest import Topics
from tests.integration.test_transport import delete_app_topics, new_app

ROOT = Path(__file__).resolve().parents[2]
RECORDS = int(os.environ.get("CREDITBUS_TRANSPORT_BENCH_RECORDS", "10000"))
RUNS = int(os.environ.get("CREDITBUS_TRANSPORT_BENCH_RUNS", "1"))


async def measure(bootstrap: str, topic: str, records: int, app_id: str,
                  owned: bool) -> dict[str, Any]:
    """Consume `records` records with `async for value in stream: pass`; CPU per record."""
    app = new_app(bootstrap, app_id, owned=owned, broker_commit_interval=1.0)
    marks: dict[str, float] = {}
    count = 0
    done = asyncio.Event()

    async def agent(stream: faust.StreamT) -> None:
        nonlocal count
        async for _value in stream:
            count += 1
            if count == 1:
                marks["cpu0"], marks["wall0"] = time.process_time(), time.monotonic()
            elif count == records:
                marks["cpu1"], marks["wall1"] = time.process_time(), time.monotonic()
                done.set()

    app.agent(app.topic(topic, value_serializer="raw"), name="idle")(agent)
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), 600)
    finally:
        await app.stop()
    cpu = marks["cpu1"] - marks["cpu0"]
    return {"transport": "owned" if owned else "faust", "records": count,
            "cpu_us_per_record": round(cpu / (records - 1) * 1e6, 1),
            "records_per_s": round((records - 1) / (marks["wall1"] - marks["wall0"]))}


def run_in_process(bootstrap: str, topic: str, records: int, app_id: str,
                   owned: bool) -> dict[str, Any]:
    """`measure` in a fresh Python process, so that no run shares threads or caches."""
    code = ("import asyncio, json, sys; "
            "from tests.integration.test_transport_fast_path import measure; "
            "print(json.dumps(asyncio.run(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]), "
            "sys.argv[4], sys.argv[5] == 'owned'))))")
    out = subprocess.run([sys.executable, "-c", code, bootstrap, topic, str(records), app_id,
                          "owned" if owned else "faust"], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def produce_single_records(bootstrap: str, topic: str, records: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "compression.type": "lz4"})
    for i in range(records):
        while True:
            try:
                producer.produce(topic, value=b"record %08d" % i)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def test_the_fast_path_costs_less_cpu_per_record_than_faust(
        kafka_broker: Any, topics: Topics, record_property: Any) -> None:
    topic = topics.create("cpu")
    produce_single_records(kafka_broker.bootstrap, topic, RECORDS)
    results: list[dict[str, Any]] = []
    try:
        for run in range(RUNS):
            for owned in (False, True):
                app_id = f"{topics.prefix}-{'owned' if owned else 'faust'}-{run}"
                results.append(run_in_process(kafka_broker.bootstrap, topic, RECORDS, app_id,
                                              owned))
    finally:
        delete_app_topics(topics)
    for result in results:
        print("faust-transport:", json.dumps(result))
    record_property("faust_transport_cpu", json.dumps(results))
    assert all(r["records"] == RECORDS for r in results)
    faust_cpu = min(r["cpu_us_per_record"] for r in results if r["transport"] == "faust")
    owned_cpu = max(r["cpu_us_per_record"] for r in results if r["transport"] == "owned")
    if faust_cpu < 50:
        pytest.fail(f"Faust's own transport took only {faust_cpu} µs per record: "
                    "has upstream removed the per-record wait_first?")
    assert owned_cpu < 0.75 * faust_cpu, results
