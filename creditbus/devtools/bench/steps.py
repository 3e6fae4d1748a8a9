"""CPU per event of each domain step, without Kafka: what the bus costs apart from the engine.

The benchmark's workload runs through the same functions the processes call, batch by batch
as they do: the edge stage's `Ingestor.process` and packing, the archive agent's state load,
`apply_event` and state save, the update's Avro encoding, and the sink's `prepare` and its
write into a real SQLite platform database. Each step's CPU time (this process, all threads)
is summed over the run and divided by the inbound messages, so the figures add up to the
domain work of one event and compare directly with the processes' CPU per event.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from creditbus.archive import person
from creditbus.archive.event import EnrichedEvent, pack_internal, parse_internal_all
from creditbus.archive.state import decode_state, encode_state
from creditbus.catalog import Catalog
from creditbus.connectors.platform.sink import PlatformWriter
from creditbus.connectors.updates import Incoming
from creditbus.constants import ARCHIVE_UPDATE
from creditbus.contract.wire import Wire
from creditbus.devtools.bench.workload import Workload
from creditbus.ingest import Ingestor
from creditbus.platformdb.db import open_db
from creditbus.streams.partitioning import person_partition

STEPS = ("ingest", "partition + pack", "unpack", "state load + save", "apply", "encode update",
         "sink prepare", "sink write")
BATCH = 2000
HORIZON_MS = 30 * 86_400_000


class _NoDeadLetters:
    def send(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the step benchmark's updates are all valid")

    def flush(self) -> None:
        """Nothing is ever sent."""


def _batches(items: Iterator[tuple[str, bytes, bytes]], size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk


def measure_steps(catalog: Catalog, events: int, partitions: int = 4,
                  seed: int = 8) -> dict[str, float]:
    """µs of CPU per inbound message for each step in `STEPS`."""
    workload = Workload(catalog, "bench", seed=seed)
    wire = Wire()
    ingestor = Ingestor(catalog, wire, b"bench-secret", "bench")
    spent = dict.fromkeys(STEPS, 0.0)
    table: dict[str, bytes] = {}
    offset = 0
    with tempfile.TemporaryDirectory(prefix="creditbus-steps-") as tmp:
        db = open_db(f"sqlite:///{Path(tmp) / 'platform.db'}")
        db.migrate()
        writer = PlatformWriter(db, wire, _NoDeadLetters(), "bench", "bench.updates")  # type: ignore[arg-type]
        clock = time.process_time
        for batch in _batches(workload.messages(events), BATCH):
            t0 = clock()
            results = [ingestor.process(value, topic, 0, offset + i)
                       for i, (topic, _key, value) in enumerate(batch)]
            offset += len(batch)
            t1 = clock()
            per_partition: dict[int, list[EnrichedEvent]] = {}
            for r in results:
                if isinstance(r, EnrichedEvent):
                    per_partition.setdefault(person_partition(r.person_key, partitions),
                                             []).append(r)
            packs = [p for items in per_partition.values() for p in pack_internal(items)]
            t2 = clock()
            items = [item for pack in packs for item in parse_internal_all(pack)]
            t3 = clock()
            load = apply = 0.0
            states = {}
            updates = []
            for item in items:
                assert isinstance(item, EnrichedEvent)
                a = clock()
                if item.person_key not in states:
                    stored = table.get(item.person_key)
                    states[item.person_key] = (
                        decode_state(item.person_key, stored) if stored else None)
                b = clock()
                out = person.apply_event(states[item.person_key], item, horizon_ms=HORIZON_MS)
                if out.state is not None:
                    states[item.person_key] = out.state
                updates += out.updates
                c = clock()
                load += b - a
                apply += c - b
            a = clock()
            for pk, state in states.items():
                if state is not None:
                    table[pk] = encode_state(state)
            load += clock() - a
            t4 = clock()
            encoded = [wire.encode(ARCHIVE_UPDATE, u.datum) for u in updates]
            t5 = clock()
            prepared = writer.prepare([Incoming("bench.updates", 0, offset + i, None, v)
                                       for i, v in enumerate(encoded)])
            t6 = clock()
            writer.write(prepared)
            t7 = clock()
            for step, seconds in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, load, apply, t5 - t4,
                                             t6 - t5, t7 - t6), strict=True):
                spent[step] += seconds
        db.close()
    return {step: round(seconds / offset * 1e6, 1) for step, seconds in spent.items()}
