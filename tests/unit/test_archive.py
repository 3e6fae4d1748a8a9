"""The archive domain: applying events, dedup, replay, retraction, expiry, the hash chain."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from creditbus.archive.chain import chain_problems, hashed_bytes
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
    current_records,
)
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
        source_partition=0, source_offset=0,
    )
    base.update(overrides)
    return EnrichedEvent(**base)  # type: ignore[arg-type]


def test_first_event_creates_version_1_on_the_genesis_hash() -> None:
    out = apply_event(None, event(), partition=0, offset=0, horizon_ms=HORIZON)
    assert out.result == APPLIED
    [update] = out.updates
    assert update["version"] == 1
    assert update["previous_hash"] == GENESIS_HASH
    assert update["change"]["kind"] == "UPSERT_RECORD"
    assert update["change"]["record"]["public"] is True
    assert out.archive is not None and out.archive["head"] == update["hash"]
    assert counts_by_category(out.archive) == {"practice_penalty": 1}


def test_exact_and_content_duplicates_change_nothing_but_updates_do() -> None:
    first = apply_event(None, event(), partition=0, offset=0, horizon_ms=HORIZON).archive
    exact = apply_event(first, event(), partition=0, offset=7, horizon_ms=HORIZON)
    assert exact.result == DUPLICATE_EXACT and not exact.updates
    content = apply_event(first, event(event_id="e2", published_at=T0 + 5), partition=0,
                          offset=8, horizon_ms=HORIZON)
    assert content.result == DUPLICATE_CONTENT and not content.updates
    changed = apply_event(first, event(event_id="e3", content_hash="h2"), partition=0, offset=9,
                          horizon_ms=HORIZON)
    assert changed.result == APPLIED
    assert changed.updates[0]["version"] == 2
    assert changed.updates[0]["change"]["record"]["record_version"] == 2


def test_the_same_message_again_is_a_replay_of_its_versions() -> None:
    first = apply_event(None, event(), partition=3, offset=41, horizon_ms=HORIZON).archive
    again = apply_event(first, event(), partition=3, offset=41, horizon_ms=HORIZON)
    assert again.result == REPLAY
    assert again.replay_versions == (1, 1)


def test_in_a_pack_the_place_tells_a_replay_from_an_exact_duplicate() -> None:
    first = apply_event(None, event(), partition=3, offset=41, horizon_ms=HORIZON,
                        index=2).archive
    # The same event id again, at another place of the same pack: a producer's retry.
    duplicate = apply_event(first, event(), partition=3, offset=41, horizon_ms=HORIZON,
                            index=5)
    assert duplicate.result == DUPLICATE_EXACT and not duplicate.updates
    # The pack processed again after a crash: the same place is a replay.
    again = apply_event(first, event(), partition=3, offset=41, horizon_ms=HORIZON, index=2)
    assert again.result == REPLAY and again.replay_versions == (1, 1)


def test_processing_is_deterministic() -> None:
    def run() -> list[str]:
        archive = None
        hashes = []
        for i, ev in enumerate([event(), event(event_id="e2", record_id="r2", content_hash="x"),
                                event(event_id="e3", action="RETRACT", published_at=T0 + 9)]):
            out = apply_event(archive, ev, partition=0, offset=i, horizon_ms=HORIZON)
            archive = out.archive or archive
            hashes += [u["hash"] for u in out.updates]
        return hashes

    assert run() == run()
    assert len(set(run())) == 3


def test_retraction_leaves_current_view_and_stays_in_history() -> None:
    archive = apply_event(None, event(), partition=0, offset=0, horizon_ms=HORIZON).archive
    out = apply_event(archive, event(event_id="e9", action="RETRACT"), partition=0, offset=1,
                      horizon_ms=HORIZON)
    assert out.result == APPLIED
    assert out.updates[0]["change"]["kind"] == "RETRACT_RECORD"
    assert out.archive is not None
    assert current_records(out.archive) == []
    assert [h[1] for h in out.archive["history"]] == ["UPSERT_RECORD", "RETRACT_RECORD"]
    assert out.archive["records"]["justice/r1"]["retracted"] is True


def test_retracting_an_unknown_record_is_a_dead_letter() -> None:
    out = apply_event(None, event(action="RETRACT"), partition=0, offset=0, horizon_ms=HORIZON)
    assert out.result == DEAD_LETTER
    assert out.dead_letter_reason == "RETRACT_UNKNOWN_RECORD"
    assert out.archive is None


def test_expiry_tick_moves_a_due_record_out_of_public_view() -> None:
    archive = apply_event(None, event(), partition=0, offset=0, horizon_ms=HORIZON).archive
    early = apply_tick(archive, MaintenanceTick("pk1", "2027-02-27"), partition=0, offset=1,
                       horizon_ms=HORIZON)
    assert early.result == NOTHING
    due = apply_tick(archive, MaintenanceTick("pk1", "2027-02-28"), partition=0, offset=2,
                     horizon_ms=HORIZON)
    assert due.result == APPLIED
    [update] = due.updates
    assert update["change"]["kind"] == "DISCLOSURE_EXPIRED"
    assert update["change"]["record"]["public"] is False
    assert update["event_id"] is None
    assert due.archive is not None and due.archive["next_expiry"] is None
    assert len(current_records(due.archive)) == 1  # still in the archive, only not public
    again = apply_tick(due.archive, MaintenanceTick("pk1", "2027-03-01"), partition=0, offset=3,
                       horizon_ms=HORIZON)
    assert again.result == NOTHING


def test_old_event_ids_are_forgotten_after_the_horizon() -> None:
    archive = apply_event(None, event(), partition=0, offset=0, horizon_ms=HORIZON).archive
    assert archive is not None and "e1" in archive["seen"]
    later = apply_event(archive, event(event_id="e5", record_id="r5", content_hash="z",
                                       published_at=T0 + 31 * DAY_MS),
                        partition=0, offset=1, horizon_ms=HORIZON)
    assert later.archive is not None and "e1" not in later.archive["seen"]


def test_chain_verification_finds_tampering_gaps_and_a_wrong_head() -> None:
    archive = None
    updates = []
    for i in range(4):
        out = apply_event(archive, event(event_id=f"e{i}", record_id=f"r{i}", content_hash=str(i)),
                          partition=0, offset=i, horizon_ms=HORIZON)
        archive = out.archive
        updates += out.updates
    links = [(u["version"], u["previous_hash"], u["hash"], hashed_bytes(u)) for u in updates]
    assert chain_problems(links, head=updates[-1]["hash"]) == []
    tampered = list(links)
    tampered[1] = (*links[1][:3], links[1][3].replace("张三".encode(), "李四".encode()))
    assert [v for v, _ in chain_problems(tampered)] == [2]
    assert chain_problems(links[:1] + links[2:])  # a removed update breaks the chain
    assert chain_problems(links, head=GENESIS_HASH)


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
    assert len(split) > 5 and all(len(p) < 2_000 + len(items[0].to_bytes()) for p in split)
    assert [i for p in split for i in parse_internal_all(p)] == items
    assert parse_internal_all(items[0].to_bytes()) == [items[0]]  # a single message is a list


def test_a_malformed_pack_is_refused_as_a_whole() -> None:
    for bad in (b'{"type":"pack","items":[]}', b'{"type":"pack"}', b"[1,2]",
                b'{"type":"pack","items":[{"type":"event"}]}', b'{"type":"other"}'):
        with pytest.raises((ValueError, TypeError)):
            parse_internal_all(bad)


def test_person_partition_is_the_producers_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from streams.partitioning import person_partition

    for i in range(500):
        key = f"{i:064x}"
        for n in (1, 4, 12):
            assert person_partition(key, n) == DefaultPartitioner()(
                key.encode(), list(range(n)), list(range(n)))
