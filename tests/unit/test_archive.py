"""The archive domain: applying events, dedup, replay, retraction, expiry, the hash chain,
the state encoding and its migration."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date

import pytest

from creditbus.archive.chain import chain_problems
from creditbus.archive.disclosure import disclosure_window
from creditbus.archive.event import (
    EnrichedEvent,
    MaintenanceTick,
    pack_internal,
    parse_internal,
    parse_internal_all,
)
from creditbus.archive.person import (
    APPLIED,
    DEAD_LETTER,
    DUPLICATE_CONTENT,
    DUPLICATE_EXACT,
    NOTHING,
    REPLAY,
    apply_event,
    apply_tick,
    counts_by_category,
)
from creditbus.archive.state import PersonState, decode_state, encode_state, seen_key
from creditbus.archive.timeutil import add_months, china_midnight_ms
from creditbus.contract.canonical import GENESIS_HASH

DAY_MS = 86_400_000
T0 = china_midnight_ms(date(2026, 3, 1)) + 10 * 3_600_000
HORIZON = 30 * DAY_MS


def event(**overrides: object) -> EnrichedEvent:
    base = dict(
        event_id="e1", unit="justice", action="UPSERT", record_id="r1", group="lawyer",
        category="practice_penalty", severity="general", domain=None, published_at=T0,
        occurred_at=T0 - DAY_MS, person_key="pk1", masked_id="360702********1234",
        name="张三", birth_date="1980-05-06", sex="M", division_code="360702",
        content_json='{"Penalty":{"decision_number":"赣司罚〔2026〕1号"}}', content_hash="h1",
        disclosure_start="2026-02-28", disclosure_end="2027-02-28",
        source_topic="credit.raw.justice",
        source_partition=0, source_offset=next(_OFFSETS),
    )
    base.update(overrides)
    return EnrichedEvent(**base)  # type: ignore[arg-type]


_OFFSETS = itertools.count()
"""Each event of a test is its own inbound message unless the test says otherwise."""


@pytest.fixture(autouse=True)
def _fresh_offsets() -> None:
    global _OFFSETS
    _OFFSETS = itertools.count()


def apply(state: PersonState | None, ev: EnrichedEvent):  # type: ignore[no-untyped-def]
    return apply_event(state, ev, horizon_ms=HORIZON)


def copy(state: PersonState | None) -> PersonState:
    assert state is not None
    return decode_state(state.person_key, encode_state(state))


def test_first_event_creates_version_1_on_the_genesis_hash() -> None:
    out = apply(None, event())
    assert out.result == APPLIED and out.version == 1
    [update] = out.updates
    assert update.version == 1
    assert update.datum["previous_hash"] == GENESIS_HASH
    assert update.kind == "UPSERT_RECORD"
    assert update.datum["change"]["record"]["public"] is True
    assert out.state is not None and out.state.head == update.hash
    assert counts_by_category(out.state) == {"practice_penalty": 1}


def test_exact_and_content_duplicates_change_nothing_but_updates_do() -> None:
    first = apply(None, event()).state
    exact = apply(copy(first), event(source_offset=7))
    assert exact.result == DUPLICATE_EXACT and not exact.updates
    assert exact.state is not None and exact.state.records == first.records  # only the mark
    assert exact.version == 1
    content = apply(copy(first), event(event_id="e2", published_at=T0 + 5, source_offset=8))
    assert content.result == DUPLICATE_CONTENT and not content.updates
    changed = apply(copy(first), event(event_id="e3", content_hash="h2", source_offset=9))
    assert changed.result == APPLIED
    assert changed.updates[0].version == 2
    assert changed.updates[0].datum["change"]["record"]["record_version"] == 2


def test_the_same_inbound_message_again_is_a_replay_that_sends_nothing() -> None:
    """Whichever stage repeats it after a crash, the same inbound position is a replay: its
    updates were out before the state remembering it was stored, so nothing is sent again."""
    first = apply(None, event(source_partition=3, source_offset=41)).state
    again = apply(copy(first), event(source_partition=3, source_offset=41))
    assert again.result == REPLAY and not again.updates and again.version == 1
    elsewhere = apply(copy(first), event(source_topic="credit.raw.other", source_partition=3,
                                         source_offset=41))
    assert elsewhere.result == DUPLICATE_EXACT


def test_processing_is_deterministic() -> None:
    def run() -> list[str]:
        state = None
        hashes = []
        for i, ev in enumerate([event(), event(event_id="e2", record_id="r2", content_hash="x"),
                                event(event_id="e3", action="RETRACT", published_at=T0 + 9)]):
            out = apply(state, dataclasses.replace(ev, source_offset=i))
            state = out.state or state
            hashes += [u.hash for u in out.updates]
        return hashes

    assert run() == run()
    assert len(set(run())) == 3


def test_retraction_leaves_the_current_view_and_keeps_a_tombstone() -> None:
    state = apply(None, event()).state
    out = apply(state, event(event_id="e9", action="RETRACT", source_offset=1))
    assert out.result == APPLIED
    [update] = out.updates
    assert update.kind == "RETRACT_RECORD"
    # the update carries the record as it stands, content included
    assert update.datum["change"]["record"]["content_json"].startswith('{"Penalty"')
    assert out.state is not None and out.state.current_records() == {}
    tombstone = out.state.records["justice/r1"]
    assert tombstone.retracted and tombstone.record_version == 2 and tombstone.content_json == ""
    again = apply(out.state, event(event_id="e10", action="RETRACT", source_offset=2))
    assert again.result == DUPLICATE_CONTENT


def test_retracting_an_unknown_record_is_a_dead_letter() -> None:
    out = apply(None, event(action="RETRACT"))
    assert out.result == DEAD_LETTER
    assert out.dead_letter_reason == "RETRACT_UNKNOWN_RECORD"
    # saved with its mark only: no record, no version
    assert out.state is not None and not out.state.records and out.state.version == 0


def test_a_decided_message_is_a_replay_even_after_later_changes() -> None:
    """After a crash the agent may meet a message again with a state that already holds later
    messages: it must not decide it a second time (a second, different receipt)."""
    refused = apply(None, event(action="RETRACT", source_offset=10))
    assert refused.result == DEAD_LETTER
    later = apply(refused.state, event(event_id="e2", source_offset=11))
    assert later.result == APPLIED
    again = apply(later.state, event(action="RETRACT", source_offset=10))
    assert again.result == REPLAY and not again.updates and again.dead_letter_reason is None
    # another inbound partition has marks of its own
    other = apply(later.state, event(event_id="e5", action="RETRACT", source_partition=1,
                                     source_offset=10))
    assert other.result == APPLIED


def test_marks_survive_encoding() -> None:
    state = apply(None, event(source_partition=2, source_offset=41)).state
    back = decode_state("pk1", encode_state(state))
    assert back.marks == state.marks and back.marks
    assert apply(back, event(event_id="e9", source_partition=2, source_offset=41)).result == REPLAY


def test_expiry_tick_moves_a_due_record_out_of_public_view() -> None:
    state = apply(None, event()).state
    early = apply_tick(copy(state), MaintenanceTick("pk1", "2027-02-27"), partition=0, offset=1,
                       horizon_ms=HORIZON)
    assert early.result == NOTHING
    due = apply_tick(copy(state), MaintenanceTick("pk1", "2027-02-28"), partition=0, offset=2,
                     horizon_ms=HORIZON)
    assert due.result == APPLIED
    [update] = due.updates
    assert update.kind == "DISCLOSURE_EXPIRED"
    assert update.datum["change"]["record"]["public"] is False
    assert update.datum["event_id"] is None
    assert due.state is not None and due.state.next_expiry is None
    assert len(due.state.current_records()) == 1  # still in the archive, only not public
    replay = apply_tick(copy(due.state), MaintenanceTick("pk1", "2027-02-28"), partition=0,
                        offset=2, horizon_ms=HORIZON)
    assert replay.result == REPLAY and not replay.updates
    again = apply_tick(due.state, MaintenanceTick("pk1", "2027-03-01"), partition=0, offset=3,
                       horizon_ms=HORIZON)
    assert again.result == NOTHING


def test_old_event_ids_are_forgotten_after_the_horizon() -> None:
    state = apply(None, event()).state
    assert state is not None and seen_key("e1") in state.seen
    later = apply(state, event(event_id="e5", record_id="r5", content_hash="z",
                               published_at=T0 + 31 * DAY_MS))
    assert later.state is not None and seen_key("e1") not in later.state.seen


def test_chain_verification_finds_tampering_gaps_and_a_wrong_head() -> None:
    state = None
    updates = []
    for i in range(4):
        out = apply(state, event(event_id=f"e{i}", record_id=f"r{i}", content_hash=str(i)))
        state = out.state
        updates += out.updates
    links = [(u.version, u.datum["previous_hash"], u.hash, u.body) for u in updates]
    assert chain_problems(links, head=updates[-1].hash) == []
    tampered = list(links)
    tampered[1] = (*links[1][:3], links[1][3].replace("张三".encode(), "李四".encode()))
    assert [v for v, _ in chain_problems(tampered)] == [2]
    assert chain_problems(links[:1] + links[2:])  # a removed update breaks the chain
    assert chain_problems(links, head=GENESIS_HASH)


def test_state_round_trips_and_stays_small() -> None:
    state = None
    for i in range(30):  # thirty changes of one record over 60 days: bounded by the horizon
        state = apply(state, event(event_id=f"e{i}", content_hash=f"h{i}",
                                   published_at=T0 + 2 * i * DAY_MS)).state
    assert state is not None and state.version == 30
    assert copy(state) == state
    assert len(state.seen) == 16 and len(state.records) == 1
    assert len(encode_state(state)) < 1_500


def test_state_of_the_first_release_is_migrated_when_read() -> None:
    import orjson

    old = {
        "person_key": "pk1", "masked_id": "360702********1234", "name": "张三",
        "birth_date": "1980-05-06", "sex": "M", "division_code": "360702",
        "groups": ["lawyer"], "version": 2, "head": "a" * 64,
        "first_update_ms": T0, "last_update_ms": T0,
        "records": {"justice/r1": {
            "unit": "justice", "record_id": "r1", "record_version": 2, "group": "lawyer",
            "category": "practice_penalty", "severity": "general", "domain": None,
            "occurred_at": T0, "published_at": T0, "disclosure_start": "2026-02-28",
            "disclosure_end": "2027-02-28", "public": True, "retracted": False,
            "content_json": "{}", "content_hash": "h1"}},
        "history": [[1, "UPSERT_RECORD", "justice/r1", 1, "e0", "b" * 64],
                    [2, "UPSERT_RECORD", "justice/r1", 2, "e1", "a" * 64]],
        "seen": {"e1": [2, 2, 0, 5, T0]}, "next_expiry": "2027-02-28",
        "recent": [[2, 5, "AAAA"]],
    }
    state = decode_state("pk1", orjson.dumps(old))
    assert (state.version, state.head, state.next_expiry) == (2, "a" * 64, "2027-02-28")
    assert state.records["justice/r1"].content_hash == "h1"
    duplicate = apply(state, event(event_id="e1", source_offset=99))
    assert duplicate.result == DUPLICATE_EXACT
    changed = apply(state, event(event_id="e7", content_hash="h7", source_offset=100))
    assert changed.updates[0].version == 3
    assert changed.updates[0].datum["previous_hash"] == "a" * 64


def test_disclosure_window_bounds() -> None:
    decided = date(2026, 1, 31)
    general = dict(dishonesty=True, min_months=3, max_months=12, decision_date=decided)
    assert disclosure_window(**general, unit_deadline=None).end == date(2027, 1, 31)
    assert disclosure_window(**general, unit_deadline=date(2026, 2, 1)).end == date(2026, 4, 30)
    assert disclosure_window(**general, unit_deadline=date(2026, 8, 1)).end == date(2026, 8, 1)
    assert disclosure_window(**general, unit_deadline=date(2030, 1, 1)).end == date(2027, 1, 31)
    assert disclosure_window(dishonesty=True, min_months=0, max_months=0, decision_date=decided,
                             unit_deadline=None) is None
    assert disclosure_window(**dict(general, dishonesty=False), unit_deadline=None) is None
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)


def test_internal_messages_round_trip() -> None:
    ev = event()
    assert parse_internal(ev.to_bytes()) == ev
    tick = MaintenanceTick("pk1", "2026-01-01")
    assert parse_internal(tick.to_bytes()) == tick
    assert dataclasses.asdict(parse_internal(ev.to_bytes()))["masked_id"].count("*") == 8


def test_packs_keep_order_and_split_under_the_size_limit() -> None:
    items = [event(event_id=f"e{i}", person_key=f"pk{i % 3}") for i in range(40)]
    items.insert(7, MaintenanceTick("pk1", "2026-01-01"))
    [whole] = pack_internal(items)
    assert parse_internal_all(whole) == items
    split = pack_internal(items, max_bytes=2_000)
    assert len(split) > 5 and all(len(p) < 3_000 + len(items[0].to_bytes()) for p in split)
    assert [i for p in split for i in parse_internal_all(p)] == items
    assert parse_internal_all(items[0].to_bytes()) == [items[0]]  # a single message is a list


def test_a_malformed_pack_is_refused_as_a_whole() -> None:
    for bad in (b'{"type":"pack","items":[]}', b'{"type":"pack"}', b"[1,2]",
                b'{"type":"pack","items":[{"type":"event"}]}', b'{"type":"other"}'):
        with pytest.raises((ValueError, TypeError)):
            parse_internal_all(bad)


def test_a_pack_of_the_first_release_still_parses() -> None:
    ev = event()
    old = b'{"items":[' + ev.to_bytes() + b'],"type":"pack"}'
    assert parse_internal_all(old) == [ev]


def test_person_partition_is_the_producers_partitioner() -> None:
    import random

    from aiokafka.partitioner import DefaultPartitioner
    from aiokafka.partitioner import murmur2 as reference
    from creditbus.streams.partitioning import murmur2, person_partition

    for i in range(500):
        key = f"{i:064x}"
        for n in (1, 4, 12):
            assert person_partition(key, n) == DefaultPartitioner()(
                key.encode(), list(range(n)), list(range(n)))
    rng = random.Random(5)
    for length in range(70):  # every tail length, any bytes
        data = rng.randbytes(length)
        assert murmur2(data) & 0x7FFFFFFF == reference(data) & 0x7FFFFFFF
