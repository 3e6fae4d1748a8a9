"""Poison pills in the sink: archive updates the platform database refuses (well-formed and
correctly hash-chained, but breaking the schema's CHECK constraints: a name over 64
characters, a record id over 128, an event id over 128, a masked id over 32, a two-letter sex,
a seven-digit division), plus messages that are no update at all (a tampered hash, a
CreditEvent, random bytes), scattered through a stream of good updates with the duplicates the
streams produce after crashes. Each poison pill goes to the sink's dead-letter topic with
headers saying why; every good update lands, the stream is not blocked, and `creditbus verify`
passes.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from creditbus.archive.chain import hashed_bytes, link_hash
from creditbus.topics import sink_deadletter_topic, updates_topic
from tests.bus import produce
from tests.faults.conftest import Report
from tests.faults.harness import FaultBus, dead_letters, dump_platform
from tests.platform_data import encode, generate
from tests.streams_data import ScenarioBuilder

SEED = 20260
CONSTRAINT = "SINK_CONSTRAINT_VIOLATION"


def _poisoned(update: dict[str, Any], index: int, field: str, value: Any) -> dict[str, Any]:
    """A copy of a version-1 update of a new person with one field the database refuses,
    re-hashed so that it is a well-formed link of its (new) chain."""
    u = dict(update)
    u["change"] = {**update["change"], "record": dict(update["change"]["record"])}
    u["person_key"] = hashlib.sha256(f"poison-{index}".encode()).hexdigest()
    if field in ("record_id", "unit"):
        u["change"]["record"][field] = value
    else:
        u[field] = value
    u["hashed_body"] = hashed_bytes(u).decode()  # as the archive agent carries it
    u["hash"] = link_hash(u["previous_hash"], u["hashed_body"].encode())
    return u


@pytest.mark.timeout(300)
def test_updates_the_database_refuses_are_dead_lettered_and_the_rest_lands(
    kafka_broker: Any, topic_prefix: str, tmp_path: Path, faults_report: Report,
) -> None:
    started = time.monotonic()
    bootstrap = kafka_broker.bootstrap
    bus = FaultBus.make(bootstrap, topic_prefix, tmp_path / "bus")
    rng = random.Random(SEED)
    good = generate(400, 6000, seed=SEED)
    # A name with a NUL character: SQLite stores it (PostgreSQL would refuse it), so here it
    # is a good update that must land intact.
    firsts = [u for u in generate(60, 300, seed=SEED + 1).updates if u["version"] == 1]
    nul = _poisoned(firsts[0], 999, "name", "王\x00华")

    refused = [("name", "王" * 65), ("record_id", "R" * 129), ("event_id", "e" * 129),
               ("masked_id", "3" * 33), ("sex", "MF"), ("division_code", "3607021")]
    poison: list[tuple[bytes, bytes, str]] = []  # key, value, expected reason
    for i, base in enumerate(firsts[1:25]):
        field, value = refused[i % len(refused)]
        u = _poisoned(base, i, field, value)
        poison.append((u["person_key"].encode(), encode(u), CONSTRAINT))
    tampered = _poisoned(firsts[30], 100, "name", "张三")
    # after hashing: the hash no longer matches the content
    tampered["hashed_body"] = tampered["hashed_body"].replace("张三", "李四")
    poison.append((tampered["person_key"].encode(), encode(tampered), "SINK_HASH_MISMATCH"))
    builder = ScenarioBuilder(topic_prefix, b"test-secret", seed=SEED)
    number, name = builder.person()
    _t, _k, credit_event = builder.event(unit="justice", group="lawyer", category="career",
                                         record_id="X-1", id_number=number, name=name,
                                         marker="x")
    poison.append((b"stray", credit_event, "SINK_NOT_AN_ARCHIVE_UPDATE"))
    poison.append((b"junk", b"\x7f" + rng.randbytes(50), "WIRE_UNKNOWN_FRAMING"))

    messages = [*good.messages, (nul["person_key"].encode(), encode(nul))]
    for key, value, _reason in poison:
        messages.insert(rng.randrange(len(messages) + 1), (key, value))
    topic = updates_topic(topic_prefix)
    expected_log = {(u["person_key"], u["version"], u["hash"]) for u in [*good.updates, nul]}
    try:
        bus.create_topics()
        produce(bootstrap, [(topic, k, v) for k, v in messages])
        bus.run_sink_until_idle(timeout=240)
        state = dump_platform(bus.db_path)
        dead = dead_letters(bootstrap, sink_deadletter_topic(topic_prefix))
        verified = bus.verify()
        crashes = bus.crashes_in_logs()
    finally:
        bus.stop_all()
        bus.delete_topics()

    by_source = {d.source: d for d in dead}
    got_log = {(row[0], row[1], row[3]) for row in state.log}
    landed = len(expected_log & got_log)
    expected_reasons = Counter(reason for _k, _v, reason in poison)
    reasons = Counter(d.reason for d in by_source.values())
    lost = (len(expected_log) - landed) + sum((expected_reasons - reasons).values())
    print(f"sink-poison: {len(poison)} poison pills in {len(messages)} messages, "
          f"{time.monotonic() - started:.0f} s", flush=True)
    faults_report("sink-poison", events_in=len(messages), archived=landed,
                  dead_lettered=len(by_source), lost=lost,
                  detail=f"dead letters {dict(reasons)}, expected {dict(expected_reasons)}")

    assert got_log == expected_log  # every good update once, nothing of the poison
    assert reasons == expected_reasons
    for d in by_source.values():
        assert d.stage == "sink" and d.source[0] == topic and d.source[2] >= 0
        assert d.headers.get("message"), d.headers
        if d.reason in (CONSTRAINT, "SINK_HASH_MISMATCH"):
            assert len(d.headers.get("person.key", "")) == 64
            assert d.headers.get("person.version") == "1"
    constraint_messages = [d.headers["message"] for d in by_source.values()
                           if d.reason == CONSTRAINT]
    assert all("CHECK constraint failed" in m for m in constraint_messages), \
        constraint_messages[:3]
    names = {row[0]: row[2] for row in state.persons}
    assert names[nul["person_key"]] == "王\x00华"
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    assert not crashes, "\n".join(crashes[:20])
