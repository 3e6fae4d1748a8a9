"""What the engine and the broker cost apart from the domain work, measured on the bench's topics.

- `records_written`: Kafka records each topic kind received during the run (high watermarks),
  so that records per inbound event are known for by-person, changelog, updates, dead letters.
- `consumer_floor`: a confluent-kafka consumer that reads the given topics and does nothing:
  records/s and CPU µs per record of the cheapest possible stage on those topics.
- `faust_floor`: the same for a Faust agent on the project's transport that does nothing with
  the batches it takes (`python -m creditbus.devtools.bench.floors faust ...` in a process of
  its own, so that its CPU is its own; the figures come back in a file, as Faust's worker
  takes over the process's standard output).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition


def _partitions(consumer: Consumer, topics: list[str]) -> list[TopicPartition]:
    metadata = consumer.list_topics(timeout=30)
    return [TopicPartition(t, p) for t in topics if t in metadata.topics
            for p in metadata.topics[t].partitions]


def records_written(client: dict[str, Any], topics: dict[str, list[str]]) -> dict[str, int]:
    """Records appended to each kind of topic so far (sum of the partitions' end offsets)."""
    consumer = Consumer({**client, "group.id": f"bench-watermarks-{uuid.uuid4().hex}"})
    try:
        out = {}
        for kind, names in topics.items():
            total = 0
            for tp in _partitions(consumer, names):
                _low, high = consumer.get_watermark_offsets(tp, timeout=30)
                total += max(high, 0)
            out[kind] = total
        return out
    finally:
        consumer.close()


def consumer_floor(client: dict[str, Any], topics: list[str], expect: int,
                   timeout: float = 300.0) -> dict[str, float]:
    """Read `expect` records of `topics` from the start, doing nothing with them."""
    consumer = Consumer({**client, "group.id": f"bench-floor-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "fetch.max.bytes": 52428800})
    try:
        consumer.assign([TopicPartition(tp.topic, tp.partition, 0)
                         for tp in _partitions(consumer, topics)])
        seen = 0
        deadline = time.perf_counter() + timeout
        while not seen and time.perf_counter() < deadline:  # timed from the first record on
            seen = sum(1 for m in consumer.consume(10000, 0.05) if m.error() is None)
        cpu, wall = time.process_time(), time.perf_counter()
        while seen < expect and time.perf_counter() < deadline:
            seen += sum(1 for m in consumer.consume(10000, 0.05) if m.error() is None)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        consumer.close()
    return {"records": seen, "records_per_s": round(seen / wall, 1) if wall else 0.0,
            "cpu_us_per_record": round(cpu / seen * 1e6, 2) if seen else 0.0}


def faust_floor(env: dict[str, str], topic: str, expect: int,
                timeout: float = 300.0) -> dict[str, float]:
    """`expect` records of `topic` through a do-nothing Faust agent, in a process of its own."""
    with tempfile.TemporaryDirectory(prefix="creditbus-floor-") as tmp:
        figures = Path(tmp) / "floor.json"
        out = subprocess.run(
            [sys.executable, "-m", "creditbus.devtools.bench.floors", "faust", topic, str(expect),
             str(timeout), str(figures)], env=env, capture_output=True, text=True,
            timeout=timeout + 120, check=False)
        if out.returncode != 0 or not figures.exists():
            raise RuntimeError(f"the Faust floor failed ({out.returncode}): "
                               f"{out.stderr[-2000:]}")
        return json.loads(figures.read_text())


def _run_faust_floor(topic: str, expect: int, timeout: float, figures: Path) -> None:
    import faust

    from creditbus.settings import Settings
    from creditbus.streams.app import create_app

    settings = Settings.from_env()
    app: faust.App = create_app(settings, app_id=f"bench-floor-{uuid.uuid4().hex[:8]}")
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")
    seen = {"records": 0, "cpu": 0.0, "wall": 0.0}

    @app.agent(source)
    async def nothing(stream: faust.StreamT) -> None:
        # from the first batch on: the steady cost, not the app's start-up
        async for events in stream.take_events(200, within=0.05):
            if not seen["records"]:
                seen["wall"], seen["cpu"] = time.perf_counter(), time.process_time()
            seen["records"] += len(events)
            if seen["records"] >= expect:
                wall = max(time.perf_counter() - seen["wall"], 1e-6)
                used = time.process_time() - seen["cpu"]
                figures.write_text(json.dumps({
                    "records": seen["records"],
                    "records_per_s": round(seen["records"] / wall, 1),
                    "cpu_us_per_record": round(used / seen["records"] * 1e6, 2)}))
                os._exit(0)  # the figure is out; nothing to commit or clean up

    @app.timer(timeout, on_leader=False)
    async def give_up() -> None:
        print(f"floor: {seen['records']} of {expect} records in {timeout:.0f} s",
              file=sys.stderr, flush=True)
        os._exit(1)

    worker = faust.Worker(app, loglevel="warn", quiet=True)
    worker.execute_from_commandline()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("engine", choices=["faust"])
    parser.add_argument("topic")
    parser.add_argument("expect", type=int)
    parser.add_argument("timeout", type=float)
    parser.add_argument("figures", type=Path, help="where to write the figures (JSON)")
    args = parser.parse_args(argv)
    _run_faust_floor(args.topic, args.expect, args.timeout, args.figures)


if __name__ == "__main__":
    main()
