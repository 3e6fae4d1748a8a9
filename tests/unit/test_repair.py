"""Credit repair (信用修复): the archive's rule, its refusals, replay and idempotence, the hash
chain across schema versions, the state encoding, validation of REPAIR events, the catalog's
minimum periods and the path from inbound bytes to the archive."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from creditbus.archive import repair
from creditbus.archive.chain import chain_problems, hashed_bytes, link_hash
from creditbus.archive.event import EnrichedEvent, MaintenanceTick
from creditbus.archive.person import (
    APPLIED,
    DEAD_LETTER,
    DUPLICATE_CONTENT,
    DUPLICATE_EXACT,
    NOTHING,
    REPLAY,
    apply_event,
    apply_tick,
)
from creditbus.archive.state import PersonState, RecordState, decode_state, encode_state
from creditbus.archive.timeutil import china_midnight_ms
from creditbus.catalog import default_catalog
from creditbus.contract import reasons as R
from creditbus.contract.canonical import derive_event_id
from creditbus.contract.schemas import SchemaStore, tagged
from creditbus.contract.validation import EventRejected, validate_event
from creditbus.contract.wire import Wire
from creditbus.identity import make_resident_id
from creditbus.ingest import Ingestor

DAY_MS = 86_400_000
HORIZON = 30 * DAY_MS
CST = timezone(timedelta(hours=8))
DECIDED = date(2026, 1, 10)  # the penalty's decision date
MINIMUMS = default_catalog().repair_minimums()
WIRE = Wire()
ARCHIVE_UPDATE = "cn.gov.ganzhou.creditbus.ArchiveUpdate"


def at(day: date, hours: int = 10) -> int:
    return china_midnight_ms(day) + hours * 3_600_000


def penalty(severity: str | None = "general", **overrides: Any) -> EnrichedEvent:
    """A penalty of 市司法局 decided on DECIDED, published that afternoon."""
    base: dict[str, Any] = dict(
        event_id="p1", unit="justice", action="UPSERT", record_id="SFJ-1", group="lawyer",
        category="practice_penalty", severity=severity, domain=None,
        published_at=at(DECIDED, 15), occurred_at=china_midnight_ms(DECIDED),
        person_key="pk1", masked_id="360702********1234", name="张三",
        birth_date="1980-05-06", sex="M", division_code="360702",
        content_json='{"Penalty":{"decision_number":"赣司罚〔2026〕1号"}}', content_hash="h1",
        disclosure_start=DECIDED.isoformat() if severity in ("general", "serious") else None,
        disclosure_end=(date(2027, 1, 10) if severity == "general" else date(2029, 1, 10)
                        ).isoformat() if severity in ("general", "serious") else None,
        source_topic="credit.raw.justice", source_partition=0, source_offset=next(_OFFSETS),
    )
    base.update(overrides)
    return EnrichedEvent(**base)


_OFFSETS = itertools.count()
"""Each event of a test is its own inbound message unless the test says otherwise."""


@pytest.fixture(autouse=True)
def _fresh_offsets() -> None:
    global _OFFSETS
    _OFFSETS = itertools.count()


def repair_event(day: date, *, number: str = "赣司修〔2026〕3号", event_id: str = "r1",
                 offset: int | None = None, **overrides: Any) -> EnrichedEvent:
    content = {"CreditRepair": {"authority": "赣州市司法局", "authority_uscc": None,
                                "decision_date": day.isoformat(), "decision_number": number}}
    base: dict[str, Any] = dict(
        event_id=event_id, action="REPAIR", severity=None, published_at=at(day, 16),
        occurred_at=china_midnight_ms(day),
        content_json=json.dumps(content, ensure_ascii=False, sort_keys=True,
                                separators=(",", ":")),
        content_hash=f"repair-{event_id}", disclosure_start=None, disclosure_end=None,
        source_offset=next(_OFFSETS) if offset is None else offset)
    base.update(overrides)
    return penalty(**base)


def apply(state: PersonState | None, ev: EnrichedEvent, minimums: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    return apply_event(state, ev, horizon_ms=HORIZON,
                       repair_minimums=MINIMUMS if minimums is None else minimums)


def copy(state: PersonState | None) -> PersonState:
    assert state is not None
    return decode_state(state.person_key, encode_state(state))


def penalised(severity: str = "general") -> PersonState:
    out = apply(None, penalty(severity))
    assert out.result == APPLIED and out.state is not None
    return out.state


# -- the repair itself ------------------------------------------------------------------------


def test_a_repair_after_the_minimum_period_marks_the_record_repaired_and_not_public() -> None:
    state = penalised()
    before = dataclasses.replace(state.records["justice/SFJ-1"])
    assert before.public
    out = apply(copy(state), repair_event(date(2026, 4, 10)))  # 3 months after the decision
    assert out.result == APPLIED and out.version == 2
    [update] = out.updates
    assert update.kind == "REPAIR_RECORD"
    rec = update.datum["change"]["record"]
    assert rec["public"] is False and rec["retracted"] is False
    assert rec["repair"] == {"decision_number": "赣司修〔2026〕3号", "decision_date": "2026-04-10",
                             "authority": "赣州市司法局", "event_id": "r1"}
    # the record stays in the archive as it was: content, classification, window
    assert rec["content_json"] == before.content_json
    assert (rec["severity"], rec["disclosure_start"], rec["disclosure_end"]) == \
        ("general", "2026-01-10", "2027-01-10")
    assert rec["record_version"] == before.record_version + 1
    assert update.datum["event_id"] == "r1" and update.datum["unit"] == "justice"
    assert out.state is not None and out.state.next_expiry is None  # nothing public is left
    assert out.state.records["justice/SFJ-1"].repair == [
        "赣司修〔2026〕3号", "2026-04-10", "赣州市司法局", "r1"]


@pytest.mark.parametrize(("severity", "too_early", "first_day"), [
    ("general", date(2026, 4, 9), date(2026, 4, 10)),
    ("serious", date(2027, 1, 9), date(2027, 1, 10)),
    ("minor", date(2026, 1, 9), date(2026, 1, 10)),  # not disclosed: only not before the fact
])
def test_the_minimum_period_comes_from_the_catalog_severity(severity: str, too_early: date,
                                                            first_day: date) -> None:
    state = penalised(severity)
    early = apply(copy(state), repair_event(too_early))
    assert early.result == DEAD_LETTER and early.dead_letter_reason == R.REPAIR_TOO_EARLY
    assert not early.updates
    ok = apply(copy(state), repair_event(first_day))
    assert ok.result == APPLIED
    assert ok.updates[0].datum["change"]["record"]["public"] is False


def test_other_minimums_are_configuration_not_code() -> None:
    state = penalised()
    assert apply(copy(state), repair_event(date(2026, 4, 10)),
                 {"general": 6}).dead_letter_reason == R.REPAIR_TOO_EARLY
    assert apply(copy(state), repair_event(date(2026, 7, 10)), {"general": 6}).result == APPLIED
    catalog = default_catalog()
    assert catalog.repair_minimums() == {"minor": 0, "general": 3, "serious": 12}
    assert {s.code: s.repair_min_months for s in catalog.severities} == \
        {"minor": 0, "general": 3, "serious": 12}


def test_the_default_minimums_are_the_catalogs() -> None:
    state = penalised()
    out = apply_event(copy(state), repair_event(date(2026, 3, 1)), horizon_ms=HORIZON)
    assert out.dead_letter_reason == R.REPAIR_TOO_EARLY


# -- refusals ---------------------------------------------------------------------------------


def test_a_repair_of_an_unknown_record_is_refused() -> None:
    state = penalised()
    for ev in (repair_event(date(2026, 5, 1), record_id="SFJ-404"),
               repair_event(date(2026, 5, 1), unit="finance")):  # another unit's record
        out = apply(copy(state), ev)
        assert out.result == DEAD_LETTER and out.dead_letter_reason == R.REPAIR_UNKNOWN_RECORD
    first = apply(None, repair_event(date(2026, 5, 1)))
    assert first.dead_letter_reason == R.REPAIR_UNKNOWN_RECORD and not first.updates


def test_a_repair_of_a_retracted_record_is_refused() -> None:
    state = apply(penalised(), penalty(event_id="x", action="RETRACT", source_offset=5,
                                        published_at=at(date(2026, 2, 1)))).state
    out = apply(copy(state), repair_event(date(2026, 5, 1), offset=6))
    assert out.dead_letter_reason == R.REPAIR_RECORD_RETRACTED


def test_a_second_decision_is_refused_and_the_same_decision_is_a_duplicate() -> None:
    state = apply(penalised(), repair_event(date(2026, 5, 1))).state
    other = apply(copy(state), repair_event(date(2026, 6, 1), number="赣司修〔2026〕9号",
                                            event_id="r2", offset=2))
    assert other.result == DEAD_LETTER
    assert other.dead_letter_reason == R.REPAIR_ALREADY_REPAIRED
    again = apply(copy(state), repair_event(date(2026, 5, 1), event_id="r3", offset=3))
    assert again.result == DUPLICATE_CONTENT and not again.updates


def test_a_record_without_severity_cannot_be_repaired() -> None:
    state = apply(None, penalty(severity=None, category="reward",
                                content_json='{"Reward":{}}')).state
    out = apply(copy(state), repair_event(date(2026, 5, 1)))
    assert out.dead_letter_reason == R.REPAIR_NOT_APPLICABLE


def test_a_repair_without_its_decision_is_a_dead_letter_not_a_crash() -> None:
    out = apply(penalised(), repair_event(date(2026, 5, 1), content_json="null"))
    assert out.result == DEAD_LETTER and out.dead_letter_reason == R.CONTENT_MISMATCH


def test_every_archive_refusal_has_a_chinese_message() -> None:
    for code in R.ARCHIVE_REASONS:
        message = R.message_zh(code)
        assert message and any("\u4e00" <= ch <= "\u9fff" for ch in message), code
    assert set(R.ARCHIVE_REASONS) <= set(R.ALL_REASONS)
    assert R.message_zh("SCHEMA_MISMATCH") is None


# -- replay, duplicates, determinism ----------------------------------------------------------


def test_replay_and_exact_duplicates_of_a_repair_emit_nothing() -> None:
    state = penalised()
    ev = repair_event(date(2026, 5, 1))
    done = apply(copy(state), ev).state
    replay = apply(copy(done), ev)
    assert replay.result == REPLAY and replay.version == 2 and not replay.updates
    duplicate = apply(copy(done), dataclasses.replace(ev, source_offset=99))
    assert duplicate.result == DUPLICATE_EXACT and not duplicate.updates


def test_a_repair_applied_again_to_the_same_state_gives_the_same_bytes() -> None:
    state = penalised()
    ev = repair_event(date(2026, 5, 1))
    first, second = apply(copy(state), ev), apply(copy(state), ev)
    assert [u.body for u in first.updates] == [u.body for u in second.updates]
    assert [u.datum for u in first.updates] == [u.datum for u in second.updates]


def test_a_repaired_record_stays_repaired_through_corrections_and_ticks() -> None:
    state = apply(penalised(), repair_event(date(2026, 5, 1))).state
    corrected = apply(copy(state), penalty(event_id="p2", content_hash="h2", source_offset=4,
                                           published_at=at(date(2026, 5, 2))))
    assert corrected.result == APPLIED
    rec = corrected.updates[0].datum["change"]["record"]
    assert rec["public"] is False and rec["repair"]["decision_number"] == "赣司修〔2026〕3号"
    tick = apply_tick(copy(corrected.state), MaintenanceTick("pk1", "2027-02-01"), partition=0,
                      offset=1, horizon_ms=HORIZON)
    assert tick.result == NOTHING  # nothing public to expire
    retracted = apply(copy(corrected.state), penalty(event_id="x", action="RETRACT",
                                                     source_offset=6,
                                                     published_at=at(date(2026, 6, 1))))
    assert retracted.updates[0].datum["change"]["record"]["repair"] is not None
    again = apply(copy(retracted.state), penalty(event_id="p3", content_hash="h3",
                                                 source_offset=7,
                                                 published_at=at(date(2026, 6, 2))))
    assert "repair" not in again.updates[0].datum["change"]["record"]  # published afresh


# -- the hash chain and the schemas -----------------------------------------------------------


def _decoded(update_datum: dict[str, Any]) -> dict[str, Any]:
    return WIRE.decode(WIRE.encode(ARCHIVE_UPDATE, update_datum)).datum


def test_the_chain_holds_across_the_repair_and_consumers_recompute_it() -> None:
    out1 = apply(None, penalty())
    out2 = apply(copy(out1.state), repair_event(date(2026, 5, 1)))
    links = []
    for update in out1.updates + out2.updates:
        decoded = _decoded(update.datum)
        body = decoded["hashed_body"].encode()
        assert body == update.body == hashed_bytes(decoded)  # the reference rule agrees
        assert link_hash(decoded["previous_hash"], body) == decoded["hash"]
        links.append((decoded["version"], decoded["previous_hash"], decoded["hash"], body))
    assert chain_problems(links, head=out2.state.head) == []
    assert b'"repair":{' in out2.updates[0].body and b'"repair"' not in out1.updates[0].body
    tampered = out2.updates[0].body.replace(b"2026-05-01", b"2026-04-01")
    assert chain_problems([links[0], (*links[1][:3], tampered)]) != []


def test_updates_written_with_archive_update_v2_keep_their_hash() -> None:
    store = SchemaStore()
    v2 = next(v for v in store.versions("ArchiveUpdate") if v.version == 2)
    update = apply(None, penalty()).updates[0]
    datum = {k: v for k, v in update.datum.items()}
    buf = io.BytesIO()
    schemaless_writer(buf, v2.parsed, datum)
    decoded = WIRE.decode(b"\xc3\x01" + v2.fingerprint + buf.getvalue())
    assert decoded.writer_version == 2
    assert decoded.datum["change"]["record"]["repair"] is None  # the new field's default
    assert hashed_bytes(decoded.datum) == update.body
    decoded.datum["hashed_body"] = None  # as a v1 producer: rebuilt from the fields
    assert link_hash(decoded.datum["previous_hash"], hashed_bytes(decoded.datum)) == update.hash


def test_state_encoding_keeps_the_repair_and_reads_records_encoded_before() -> None:
    state = apply(penalised(), repair_event(date(2026, 5, 1))).state
    again = copy(state)
    assert again == state and again.records["justice/SFJ-1"].repair is not None
    old = penalised()
    encoded = json.loads(encode_state(old))
    assert len(encoded[10]["justice/SFJ-1"]) == 13  # a record never repaired: encoded as before
    assert decode_state("pk1", encode_state(old)).records["justice/SFJ-1"].repair is None


def test_the_rule_module_on_its_own() -> None:
    record = RecordState(1, False, True, "h", "lawyer", "practice_penalty", "serious", None,
                         china_midnight_ms(DECIDED), 0, None, None, "{}")
    assert repair.decision_day(record) == DECIDED  # no window: the day of the fact
    assert repair.earliest_repair(record, MINIMUMS) == date(2027, 1, 10)
    with pytest.raises(ValueError):
        repair.decision_of('{"Penalty":{}}')


# -- validation of REPAIR events --------------------------------------------------------------

ID = "360702198205140314"


def repair_datum(**overrides: Any) -> dict[str, Any]:
    datum: dict[str, Any] = {
        "event_id": "", "unit": "justice",
        "published_at": datetime(2026, 5, 1, 8, 0, tzinfo=CST),
        "occurred_at": datetime(2026, 5, 1, tzinfo=CST),
        "action": "REPAIR", "record_id": "SFJ-CF-2026-0001",
        "person": {"id_number": ID, "name": "刘建华", "organisation": None,
                   "organisation_uscc": None, "sealed": None},
        "group": "lawyer", "category": "practice_penalty", "severity": None, "domain": None,
        "source_ref": "赣司修〔2026〕3号",
        "content": tagged("CreditRepair", {"decision_number": "赣司修〔2026〕3号",
                                           "decision_date": date(2026, 5, 1),
                                           "authority": "赣州市司法局",
                                           "authority_uscc": None}),
    }
    datum.update(overrides)
    datum["event_id"] = derive_event_id(datum)
    return datum


NOW_MS = int(datetime(2026, 5, 2, tzinfo=CST).timestamp() * 1000)


def rejected(datum: dict[str, Any]) -> EventRejected:
    with pytest.raises(EventRejected) as caught:
        validate_event(datum, default_catalog(), now_ms=NOW_MS)
    return caught.value


def test_a_repair_event_is_valid_and_needs_no_severity() -> None:
    valid = validate_event(repair_datum(), default_catalog(), now_ms=NOW_MS,
                           topic_unit="justice")
    assert valid.dishonesty and valid.severity is None
    decoded = WIRE.decode(WIRE.encode("CreditEvent", repair_datum())).datum
    assert decoded["action"] == "REPAIR"
    assert decoded["content"][0] == "cn.gov.ganzhou.creditbus.CreditRepair"
    validate_event(decoded, default_catalog(), now_ms=NOW_MS, decoded=True)


def test_repair_events_that_break_the_contract() -> None:
    assert rejected(repair_datum(category="reward")).code == R.REPAIR_NOT_APPLICABLE
    assert rejected(repair_datum(content=None)).code == R.CONTENT_MISMATCH
    penalty_content = tagged("Penalty", {
        "decision_number": "x", "illegal_facts": "x", "legal_basis": "x",
        "penalty_types": ["警告"], "penalty_content": "x", "fine_amount": None,
        "decision_date": date(2026, 1, 1), "disclosure_until": None, "authority": "x",
        "authority_uscc": None})
    assert rejected(repair_datum(content=penalty_content)).code == R.CONTENT_MISMATCH
    upsert = rejected(repair_datum(action="UPSERT", severity="GENERAL"))
    assert upsert.code == R.CONTENT_MISMATCH  # repair content on an UPSERT
    later = repair_datum(published_at=datetime(2026, 4, 30, 9, 0, tzinfo=CST))
    assert rejected(later).code == R.DATE_ORDER and \
        rejected(later).field == "content.decision_date"
    blank = repair_datum(content=tagged("CreditRepair", {
        "decision_number": " ", "decision_date": date(2026, 5, 1), "authority": "赣州市司法局",
        "authority_uscc": None}))
    assert rejected(blank).code == R.EMPTY_FIELD
    bad_uscc = repair_datum(content=tagged("CreditRepair", {
        "decision_number": "n", "decision_date": date(2026, 5, 1), "authority": "赣州市司法局",
        "authority_uscc": "91360700MA35XXXXXX"}))
    assert rejected(bad_uscc).code.startswith("USCC_")


def test_v3_producers_keep_working() -> None:
    """An UPSERT written with CreditEvent v3 (before REPAIR) decodes and validates."""
    store = SchemaStore()
    v3 = next(v for v in store.versions("CreditEvent") if v.version == 3)
    datum = repair_datum(action="RETRACT", content=None)
    buf = io.BytesIO()
    schemaless_writer(buf, v3.parsed, datum)
    decoded = WIRE.decode(b"\xc3\x01" + v3.fingerprint + buf.getvalue())
    assert decoded.writer_version == 3 and decoded.datum["action"] == "RETRACT"
    validate_event(decoded.datum, default_catalog(), now_ms=NOW_MS, decoded=True)


# -- from inbound bytes to the archive ---------------------------------------------------------


def test_an_inbound_repair_is_enriched_and_applied() -> None:
    ingestor = Ingestor(default_catalog(), WIRE, b"secret", "credit")
    number = make_resident_id("360702", date(1982, 5, 14), 31)
    person = {"id_number": number, "name": "刘建华", "organisation": None,
              "organisation_uscc": None, "sealed": None}
    published = datetime.now(UTC) - timedelta(days=400)
    upsert: dict[str, Any] = {
        "event_id": "", "unit": "justice", "published_at": published,
        "occurred_at": published, "action": "UPSERT", "record_id": "SFJ-9", "person": person,
        "group": "lawyer", "category": "practice_penalty", "severity": "GENERAL",
        "domain": None, "source_ref": None,
        "content": tagged("Penalty", {
            "decision_number": "赣司罚〔2025〕9号", "illegal_facts": "事实", "legal_basis": "依据",
            "penalty_types": ["警告"], "penalty_content": "警告", "fine_amount": None,
            "decision_date": published.astimezone(CST).date(), "disclosure_until": None,
            "authority": "赣州市司法局", "authority_uscc": None})}
    upsert["event_id"] = derive_event_id(upsert)
    today = datetime.now(CST)
    fix = repair_datum(record_id="SFJ-9", person=person, published_at=today,
                       occurred_at=today, content=tagged("CreditRepair", {
                           "decision_number": "赣司修〔2026〕1号", "decision_date": today.date(),
                           "authority": "赣州市司法局", "authority_uscc": None}))
    state = None
    kinds = []
    for offset, datum in enumerate((upsert, fix)):
        enriched = ingestor.process(WIRE.encode("CreditEvent", datum), "credit.raw.justice", 0,
                                    offset)
        assert isinstance(enriched, EnrichedEvent), enriched
        out = apply_event(state, enriched, horizon_ms=HORIZON)
        assert out.result == APPLIED, out
        state = out.state
        kinds.append(out.updates[0].kind)
    assert kinds == ["UPSERT_RECORD", "REPAIR_RECORD"]
    rec = state.records["justice/SFJ-9"]
    assert rec.repair is not None and rec.repair[0] == "赣司修〔2026〕1号" and not rec.public


# -- what the query service shows -------------------------------------------------------------


def test_the_query_views_show_a_repaired_record_as_repaired_and_never_publicly() -> None:
    from creditbus.services.query.access import (
        Principal,
        archive_view,
        in_public_view,
        record_status,
    )

    row = {"person_key": "pk1", "unit": "justice", "record_id": "SFJ-1", "record_version": 2,
           "group_code": "lawyer", "category": "practice_penalty", "severity": "general",
           "domain": None, "occurred_at": "2026-01-09T16:00:00.000Z",
           "published_at": "2026-05-01T08:00:00.000Z", "disclosure_start": "2026-01-10",
           "disclosure_end": "2027-01-10", "is_public": True, "is_retracted": False,
           "content_json": '{"Penalty":{}}', "person_version": 2, "is_repaired": True,
           "repair_decision_number": "赣司修〔2026〕3号", "repair_date": "2026-05-01",
           "repair_authority": "赣州市司法局"}
    person = {"person_key": "pk1", "masked_id": "360702********1234", "name": "张三",
              "birth_date": "1980-05-06", "sex": "M", "division_code": "360702",
              "groups": '["lawyer"]', "archive_version": 2, "updated_at": "x", "chain_head": "h"}
    today = date(2026, 6, 1)
    # even a row still flagged public (an old sink, a tick not yet run) is not shown publicly
    assert not in_public_view(row, today) and record_status(row, today) == "repaired"
    catalog = default_catalog()
    assert archive_view(Principal("网站", "public"), person, [row], [], catalog, today) is None
    office = archive_view(Principal("信用办", "office"), person, [row], [], catalog, today)
    assert office is not None
    [shown] = office["records"]
    assert shown["status_name"] == "已修复" and shown["repaired"] is True
    assert shown["repair"] == {"decision_number": "赣司修〔2026〕3号",
                               "decision_date": "2026-05-01", "authority": "赣州市司法局"}
    before = dict(row, is_repaired=False, repair_decision_number=None, repair_date=None,
                  repair_authority=None)
    assert in_public_view(before, today) and record_status(before, today) == "public"
    view = archive_view(Principal("网站", "public"), person, [before], [], catalog, today)
    assert view is not None and view["records"][0]["status_name"] == "公示中"


# -- the spreadsheet import and the JSON form ----------------------------------------------------


def test_a_spreadsheet_row_with_operation_repair_becomes_a_valid_repair_event() -> None:
    from creditbus.publish.row_events import RowConverter, keyed_row, map_headers

    row = {"姓名": "刘建华", "身份证号码": ID, "人群类别": "律师", "信息类别": "执业处罚情况",
           "记录编号": "SFJ-CF-2026-0001", "操作(新增/撤销)": "修复",
           "修复决定文书号": "赣司修〔2026〕3号", "修复决定日期": "2026年5月1日",
           "修复决定单位": "赣州市司法局"}
    assert set(map_headers(list(row)).positions) >= {
        "repair_decision_number", "repair_decision_date", "repair_authority"}
    datum = RowConverter(default_catalog(), "justice").convert(keyed_row(row))
    assert datum["action"] == "REPAIR" and datum["severity"] is None
    assert datum["content"] == ("cn.gov.ganzhou.creditbus.CreditRepair", {
        "decision_number": "赣司修〔2026〕3号", "decision_date": date(2026, 5, 1),
        "authority": "赣州市司法局", "authority_uscc": None})
    assert datum["occurred_at"] == datetime(2026, 5, 1, tzinfo=CST)  # from the decision date
    datum.update(published_at=datetime(2026, 5, 1, 9, tzinfo=CST))
    datum["event_id"] = derive_event_id(datum)
    validate_event(datum, default_catalog(), now_ms=NOW_MS, topic_unit="justice")


def test_the_json_form_of_a_repair() -> None:
    from creditbus.contract.jsonform import from_json, to_json

    store = SchemaStore()
    schema = store.current("CreditEvent")
    datum = repair_datum()
    text = to_json(schema, datum)
    assert text["action"] == "REPAIR"
    assert text["content"] == {"CreditRepair": {
        "decision_number": "赣司修〔2026〕3号", "decision_date": "2026-05-01",
        "authority": "赣州市司法局", "authority_uscc": None}}
    again = from_json(schema, json.loads(json.dumps(text, ensure_ascii=False)))
    assert derive_event_id(again) == datum["event_id"]
    validate_event(again, default_catalog(), now_ms=NOW_MS)


# -- any sequence of changes ------------------------------------------------------------------

OPS = st.lists(st.tuples(st.sampled_from(("UPSERT", "RETRACT", "REPAIR", "TICK")),
                         st.integers(0, 2), st.integers(1, 200)), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_any_sequence_keeps_the_chain_and_never_shows_a_repaired_record(
        ops: list[tuple[str, int, int]]) -> None:
    state: PersonState | None = None
    day = DECIDED
    links: list[tuple[int, str, str, bytes]] = []
    for step, (action, index, days) in enumerate(ops):
        day += timedelta(days=days)
        record_id = f"SFJ-{index}"
        if action == "TICK":
            out = apply_tick(state, MaintenanceTick("pk1", day.isoformat()), partition=0,
                             offset=step, horizon_ms=HORIZON)
        elif action == "REPAIR":
            out = apply(state, repair_event(day, record_id=record_id, event_id=f"e{step}",
                                            number=f"修{step}", offset=step))
        else:
            out = apply(state, penalty(action=action, record_id=record_id, event_id=f"e{step}",
                                       content_hash=f"h{step}", source_offset=step,
                                       published_at=at(day)))
        for update in out.updates:
            decoded = _decoded(update.datum)
            assert hashed_bytes(decoded) == update.body
            links.append((decoded["version"], decoded["previous_hash"], decoded["hash"],
                          update.body))
            rec = decoded["change"]["record"]
            if rec["repair"] is not None:
                assert rec["public"] is False
        if out.state is not None:
            state = copy(out.state)
            assert state == out.state
    if state is not None:
        assert chain_problems(links, head=state.head) == []
        assert all(not r.public for r in state.records.values() if r.repair is not None)
