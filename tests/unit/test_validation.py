"""validate_event: every rule and reason code, messages without clear identity numbers, speed."""

from __future__ import annotations

import copy
import json
import math
import re
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from creditbus.catalog import default_catalog
from creditbus.contract import reasons as R
from creditbus.contract.canonical import derive_event_id
from creditbus.contract.jsonform import load_event
from creditbus.contract.limits import (
    ARRAY_MAX,
    EVENT_MAX_BYTES,
    ID_MAX,
    NAME_MAX,
    SHORT_TEXT_MAX,
    TEXT_MAX,
)
from creditbus.contract.models import CONTENT_MODELS, CreditEvent, Person
from creditbus.contract.schemas import SchemaStore, tagged
from creditbus.contract.validation import (
    EventRejected,
    ValidEvent,
    common_categories,
    validate_event,
)
from creditbus.contract.wire import Wire
from creditbus.devtools.sample import sample_events
from creditbus.identity import make_resident_id, make_uscc

REPO = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=CST)
NOW_MS = int(NOW.timestamp() * 1000)
ID = "360702198205140314"
ID_X = make_resident_id("360702", date(1985, 3, 14), 3)  # 36070219850314003X
ORG_USCC = make_uscc("MD0123454", "360702", "3", "1")
AUTHORITY_USCC = "11360700014567892J"
CATALOG = default_catalog()
ANY_ID = "ab" * 32

PENALTY: dict[str, Any] = {
    "decision_number": "赣市司罚决字〔2024〕7号",
    "illegal_facts": "代理民事案件期间私自接受委托、私自收取费用8000元。",
    "legal_basis": "《中华人民共和国律师法》第四十八条第（一）项",
    "penalty_types": ["警告", "罚款"],
    "penalty_content": "给予警告，处罚款人民币5000元。",
    "fine_amount": Decimal("5000.00"),
    "decision_date": date(2024, 2, 26),
    "disclosure_until": date(2025, 2, 26),
    "authority": "赣州市司法局",
    "authority_uscc": AUTHORITY_USCC,
}
CONTENTS: dict[str, dict[str, Any]] = {
    "Penalty": PENALTY,
    "Assessment": {"year": 2023, "result": "称职", "assessor": "江西赣江律师事务所"},
    "CareerEntry": {"organisation": "江西赣江律师事务所", "position": "专职律师",
                    "start_date": date(2016, 7, 1), "end_date": None},
    "Reward": {"title": "优秀律师", "level": "市级", "issuer": "赣州市司法局",
               "award_date": date(2023, 12, 5)},
    "Complaint": {"received_date": date(2024, 1, 8), "summary": "服务态度差", "outcome": None,
                  "substantiated": None},
    "Training": {"course": "律师继续教育", "provider": "赣州市律师协会", "hours": 16.5,
                 "completed_date": date(2023, 11, 24)},
    "Qualification": {"certificate_number": "13607201610123456", "qualification_name": "律师执业证",
                      "issuer": "江西省司法厅", "issued_date": date(2016, 7, 1),
                      "valid_until": None, "status": "有效"},
    "Note": {"title": "社会服务信息", "detail": "参加法律援助值班服务。",
             "event_date": date(2024, 3, 1), "attributes": {"hours": "24"}},
}
CATEGORY_OF = {  # a lawyer category per content type
    "Penalty": "practice_penalty", "Assessment": "annual_assessment", "CareerEntry": "career",
    "Reward": "reward", "Complaint": "complaint", "Training": "training",
    "Qualification": "qualification", "Note": "social_service",
}
UNIT_GROUP_OF = {  # lawyers have no training or qualification items: teachers do
    "Training": ("edu", "teacher"), "Qualification": ("edu", "teacher"),
}


def event(content_type: str | None = "Penalty", **overrides: Any) -> dict[str, Any]:
    """A valid lawyer event of 市司法局, as Wire.decode returns it."""
    category = CATEGORY_OF.get(content_type or "", "practice_penalty")
    unit, group = UNIT_GROUP_OF.get(content_type or "", ("justice", "lawyer"))
    datum: dict[str, Any] = {
        "event_id": "",
        "unit": unit,
        "published_at": datetime(2024, 3, 4, 1, 30, tzinfo=UTC),
        "occurred_at": datetime(2024, 2, 25, 16, 0, tzinfo=UTC),
        "action": "UPSERT" if content_type else "RETRACT",
        "record_id": "SFJ-CF-2024-0007",
        "person": {"id_number": ID, "name": "刘建华", "organisation": "江西赣江律师事务所",
                   "organisation_uscc": ORG_USCC},
        "group": group,
        "category": category,
        "severity": "GENERAL" if category == "practice_penalty" else None,
        "domain": "judicial_litigation",
        "source_ref": "赣市司罚决字〔2024〕7号",
        "content": tagged(content_type, dict(CONTENTS[content_type])) if content_type else None,
    }
    person = overrides.pop("person", None)
    content = overrides.pop("content_fields", None)
    datum.update(overrides)
    if person:
        datum["person"] = {**datum["person"], **person}
    if content:
        name, body = datum["content"]
        datum["content"] = (name, {**body, **content})
    datum["event_id"] = derive_event_id(datum) if not datum["event_id"] else datum["event_id"]
    return datum


def check(datum: dict[str, Any], **kwargs: Any) -> ValidEvent:
    kwargs.setdefault("now_ms", NOW_MS)
    return validate_event(datum, CATALOG, **kwargs)


def rejected(datum: dict[str, Any], code: str, field: str | None = "-", **kwargs: Any) -> str:
    with pytest.raises(EventRejected) as info:
        check(datum, **kwargs)
    exc = info.value
    assert exc.code == code, f"{exc.code}: {exc.message}"
    if field != "-":
        assert exc.field == field
    _assert_no_clear_id(exc, datum)
    return exc.message


_ID_RUN = re.compile(r"\d{15,17}[\dXx]?")


def _assert_no_clear_id(exc: EventRejected, datum: dict[str, Any]) -> None:
    number = datum["person"]["id_number"] if isinstance(datum.get("person"), dict) else ""
    text = f"{exc} {exc.message} {exc!r}"
    if isinstance(number, str) and len(number) >= 15:
        assert number not in text
    assert not _ID_RUN.search(text), text


# --- the valid cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [*CONTENTS, None])
def test_valid_events_of_every_content_type(content_type: str | None) -> None:
    datum = event(content_type)
    if content_type is None:
        datum["severity"] = None
    valid = check(datum, topic_unit=datum["unit"])
    assert valid.resident.number == ID
    assert valid.resident.birth_date == date(1982, 5, 14)
    assert valid.severity == ("general" if content_type == "Penalty" else None)
    assert valid.dishonesty is (CATEGORY_OF.get(content_type or "") in (None, "practice_penalty"))


def test_the_examples_validate_after_a_wire_round_trip() -> None:
    store = SchemaStore()
    wire = Wire(store)
    schema = store.current("CreditEvent")
    lines = (REPO / "examples" / "events.jsonl").read_text("utf-8").splitlines()
    for line in filter(str.strip, lines):
        datum = wire.decode(wire.encode("CreditEvent", load_event(schema, line))).datum
        for decoded in (False, True):
            valid = validate_event(datum, CATALOG, topic_unit=datum["unit"], decoded=decoded)
            assert valid.resident.in_ganzhou


def test_sparse_datum_of_the_json_form_validates() -> None:
    """Optional fields may be absent (the JSON form leaves them out), not only null."""
    datum = event("Note")
    for key in ("severity", "domain", "source_ref"):
        del datum[key]
    del datum["person"]["organisation"]
    check(datum)


def test_identity_number_with_x_check_character() -> None:
    assert ID_X.endswith("X")
    assert check(event(person={"id_number": ID_X})).resident.number == ID_X
    lower = ID_X[:-1] + "x"
    assert check(event(person={"id_number": lower})).resident.number == ID_X


# --- identity numbers and USCCs -----------------------------------------------------------------


def test_wrong_check_digit() -> None:
    wrong = ID[:17] + ("5" if ID[17] != "5" else "6")
    message = rejected(event(person={"id_number": wrong}), "ID_CHECKSUM", "person.id_number")
    assert "360702********" in message


def test_wrong_check_character_x() -> None:
    wrong = ID_X[:17] + "1"
    rejected(event(person={"id_number": wrong}), "ID_CHECKSUM", "person.id_number")


def test_impossible_birth_date() -> None:
    number = make_resident_id("360702", "19900230", 12)
    rejected(event(person={"id_number": number}), "ID_BIRTH_DATE", "person.id_number")


def test_birth_date_after_the_validation_day() -> None:
    number = make_resident_id("360702", date(2024, 6, 20), 12)
    rejected(event(person={"id_number": number}), "ID_BIRTH_DATE")


def test_fifteen_digit_legacy_number_is_rejected_with_a_clear_reason() -> None:
    legacy = "360702820514031"
    message = rejected(event(person={"id_number": legacy}), "ID_LEGACY_15", "person.id_number")
    assert "15-digit" in message and "18-digit" in message


@pytest.mark.parametrize("bad", ["36070219820514031", "3607021982051403145", ""])
def test_identity_number_of_the_wrong_length(bad: str) -> None:
    rejected(event(person={"id_number": bad}), "ID_LENGTH", "person.id_number")


def test_identity_number_with_letters() -> None:
    rejected(event(person={"id_number": "36070219820514A314"}), "ID_CHARSET")


def test_identity_number_with_an_impossible_province() -> None:
    rejected(event(person={"id_number": make_resident_id("990702", date(1982, 5, 14), 31)}),
             "ID_DIVISION")


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_uscc_with_excluded_letters(letter: str) -> None:
    bad = ORG_USCC[:10] + letter + ORG_USCC[11:]
    rejected(event(person={"organisation_uscc": bad}), "USCC_CHARSET", "person.organisation_uscc")
    rejected(event(content_fields={"authority_uscc": AUTHORITY_USCC[:9] + letter +
                                   AUTHORITY_USCC[10:]}),
             "USCC_CHARSET", "content.authority_uscc")


def test_uscc_with_a_wrong_check_character() -> None:
    last = "0" if ORG_USCC[-1] != "0" else "1"
    rejected(event(person={"organisation_uscc": ORG_USCC[:-1] + last}), "USCC_CHECKSUM")
    rejected(event(content_fields={"authority_uscc": "11360700014567892K"}), "USCC_CHECKSUM",
             "content.authority_uscc")


def test_uscc_of_the_wrong_length() -> None:
    rejected(event(person={"organisation_uscc": "9136070"}), "USCC_LENGTH")


def test_absent_usccs_are_fine() -> None:
    check(event(person={"organisation_uscc": None}, content_fields={"authority_uscc": None}))


# --- catalog rules ------------------------------------------------------------------------------


def test_unknown_codes() -> None:
    rejected(event(unit="no_such_unit"), R.UNKNOWN_UNIT, "unit")
    rejected(event(group="astronaut"), R.UNKNOWN_GROUP, "group")
    rejected(event(category="no_such_category"), R.UNKNOWN_CATEGORY, "category")
    rejected(event(domain="outer_space"), R.UNKNOWN_DOMAIN, "domain")


def test_unknown_severity_symbol() -> None:
    rejected(event(severity="CATASTROPHIC"), R.UNKNOWN_SEVERITY, "severity")


def test_unit_not_responsible_for_the_group() -> None:
    message = rejected(event(group="teacher", category="practice_penalty"),
                       R.UNIT_NOT_RESPONSIBLE, "group")
    assert "justice" in message and "teacher" in message
    # a unit the notice names for no group
    rejected(event(unit="hrss"), R.UNIT_NOT_RESPONSIBLE)
    # a county publishes for the groups of the notice
    check(event(unit="zhanggong"), topic_unit="zhanggong")


def test_topic_unit_mismatch() -> None:
    rejected(event(), R.TOPIC_UNIT_MISMATCH, "unit", topic_unit="edu")
    rejected(event(unit="assoc_lawyers"), R.TOPIC_UNIT_MISMATCH, topic_unit="justice")
    check(event(unit="assoc_lawyers"), topic_unit="assoc_lawyers")
    check(event())  # no topic: no check


def test_category_not_for_group() -> None:
    # tour guides: the notice has no annual assessment, complaints or 违法违纪违约 item
    guide = {"unit": "culture_tourism", "group": "tour_guide"}
    rejected(event("Assessment", **guide), R.CATEGORY_NOT_FOR_GROUP, "category")
    rejected(event("Complaint", **guide), R.CATEGORY_NOT_FOR_GROUP)
    check(event("CareerEntry", **guide))
    check(event("Penalty", category="forced_shopping", **guide))
    # a lawyer is no physician
    rejected(event(category="red_envelope"), R.CATEGORY_NOT_FOR_GROUP)


def test_common_categories_are_the_core_every_group_lists() -> None:
    core = common_categories(CATALOG)
    assert core == {"basic_info", "career", "reward", "punishment", "other"}
    kinds = {"basic_info": "Note", "other": "Note", "career": "CareerEntry", "reward": "Reward",
             "punishment": "Penalty"}
    for group in CATALOG.groups:
        units = CATALOG.responsible_units(group.code)
        if not units:
            continue
        for category in core:
            severity = "GENERAL" if category == "punishment" else None
            check(event(kinds[category], unit=units[0].code, group=group.code,
                        category=category, severity=severity))


def test_severity_rules() -> None:
    rejected(event(severity=None), R.SEVERITY_REQUIRED, "severity")
    rejected(event("Training", severity="MINOR"), R.SEVERITY_NOT_APPLICABLE, "severity")
    # a retraction of a dishonesty record needs no severity
    valid = check(event(None, severity=None))
    assert valid.severity is None
    assert check(event(severity="SERIOUS")).severity == "serious"


def test_content_must_fit_the_category() -> None:
    message = rejected(event("Note", category="practice_penalty", severity="GENERAL"),
                       R.CONTENT_MISMATCH, "content")
    assert "Penalty" in message and "Note" in message
    rejected(event("Penalty", category="career", severity=None), R.CONTENT_MISMATCH)
    rejected(event(None, action="UPSERT"), R.CONTENT_MISMATCH, "content")
    check(event(None))  # RETRACT without content
    check(event("Penalty", action="RETRACT"))  # RETRACT with the right content is fine
    rejected(event("Note", action="RETRACT", category="practice_penalty"), R.CONTENT_MISMATCH)


def test_event_id_format() -> None:
    rejected(event(event_id="x"), R.BAD_EVENT_ID, "event_id")
    valid_id = derive_event_id(event())
    rejected(event(event_id=valid_id.upper()), R.BAD_EVENT_ID)
    rejected(event(event_id="3fa85f64-5717-4562-b3fc-2c963f66afa6"), R.BAD_EVENT_ID)
    datum = event()
    datum["event_id"] = ""
    rejected(datum, R.BAD_EVENT_ID)


# --- dates and numbers ---------------------------------------------------------------------------


def test_future_dates() -> None:
    tomorrow_plus = NOW + timedelta(days=1, minutes=1)
    rejected(event(occurred_at=tomorrow_plus), R.FUTURE_DATE, "occurred_at")
    check(event(occurred_at=NOW + timedelta(hours=23)))
    rejected(event(published_at=tomorrow_plus), R.FUTURE_DATE, "published_at")
    rejected(event(content_fields={"decision_date": date(2024, 6, 3)}), R.FUTURE_DATE,
             "content.decision_date")
    check(event(content_fields={"decision_date": date(2024, 6, 2),
                                "disclosure_until": date(2025, 6, 2)}))
    rejected(event("Training", content_fields={"completed_date": date(2030, 1, 1)}),
             R.FUTURE_DATE, "content.completed_date")
    rejected(event("Assessment", content_fields={"year": 2025}), R.FUTURE_DATE, "content.year")
    # a deadline in the future is normal
    check(event(content_fields={"disclosure_until": date(2027, 2, 26)}))
    check(event("Qualification", content_fields={"valid_until": date(2031, 7, 1)}))


def test_future_is_measured_from_now_by_default() -> None:
    datum = event(occurred_at=datetime.now(UTC) + timedelta(days=2))
    with pytest.raises(EventRejected) as info:
        validate_event(datum, CATALOG)
    assert info.value.code == R.FUTURE_DATE


def test_date_order() -> None:
    rejected(event("CareerEntry", content_fields={"end_date": date(2016, 6, 30)}), R.DATE_ORDER,
             "content.end_date")
    rejected(event("Qualification", content_fields={"valid_until": date(2015, 1, 1)}),
             R.DATE_ORDER, "content.valid_until")
    rejected(event(content_fields={"disclosure_until": date(2024, 2, 25)}), R.DATE_ORDER,
             "content.disclosure_until")
    rejected(event(occurred_at=datetime(1980, 1, 1, tzinfo=CST)), R.DATE_ORDER, "occurred_at")
    rejected(event("Reward", content_fields={"award_date": date(1981, 1, 1)}), R.DATE_ORDER,
             "content.award_date")
    rejected(event("Assessment", content_fields={"year": 1975}), R.DATE_ORDER)
    check(event("CareerEntry", content_fields={"end_date": date(2016, 7, 1)}))  # same day


def test_numbers_out_of_range() -> None:
    rejected(event(content_fields={"fine_amount": Decimal("-1.00")}), R.OUT_OF_RANGE,
             "content.fine_amount")
    rejected(event(content_fields={"fine_amount": Decimal("1.005")}), R.OUT_OF_RANGE)
    rejected(event(content_fields={"fine_amount": Decimal("1E+16")}), R.OUT_OF_RANGE)
    check(event(content_fields={"fine_amount": Decimal("0")}))
    check(event(content_fields={"fine_amount": None}))
    for hours in (0.0, -2.0, math.nan, 20000.0):
        rejected(event("Training", event_id=ANY_ID, content_fields={"hours": hours}),
                 R.OUT_OF_RANGE, "content.hours")
    rejected(event("Assessment", content_fields={"year": 1900}), R.OUT_OF_RANGE)


# --- text and sizes ------------------------------------------------------------------------------


def test_size_limits() -> None:
    rejected(event(person={"name": "张" * (NAME_MAX + 1)}), R.FIELD_TOO_LONG, "person.name")
    check(event(person={"name": "张" * NAME_MAX}))
    rejected(event(record_id="R" * (ID_MAX + 1)), R.FIELD_TOO_LONG, "record_id")
    rejected(event(person={"organisation": "单" * (SHORT_TEXT_MAX + 1)}), R.FIELD_TOO_LONG,
             "person.organisation")
    rejected(event(content_fields={"illegal_facts": "事" * (TEXT_MAX + 1)}), R.FIELD_TOO_LONG,
             "content.illegal_facts")
    check(event(content_fields={"illegal_facts": "事" * TEXT_MAX}))
    rejected(event(content_fields={"penalty_types": ["警告"] * (ARRAY_MAX + 1)}),
             R.FIELD_TOO_LONG, "content.penalty_types")
    rejected(event(content_fields={"penalty_types": ["警" * (NAME_MAX + 1)]}), R.FIELD_TOO_LONG,
             "content.penalty_types")
    many = {f"k{i}": "v" for i in range(ARRAY_MAX + 1)}
    rejected(event("Note", content_fields={"attributes": many}), R.FIELD_TOO_LONG,
             "content.attributes")


def _over_long_cases() -> list[tuple[str, str | None, dict[str, Any]]]:
    """(content type, field, override) for one value just over each size limit of the models."""
    cases: list[tuple[str, str | None, dict[str, Any]]] = [
        ("Penalty", f, {f: "A" * (ID_MAX + 1)})
        for f in ("event_id", "unit", "record_id", "group", "category", "severity", "domain")]
    cases.append(("Penalty", "source_ref", {"source_ref": "源" * (SHORT_TEXT_MAX + 1)}))
    for field, most in (("name", NAME_MAX), ("organisation", SHORT_TEXT_MAX),
                        ("organisation_uscc", ID_MAX), ("id_number", ID_MAX)):
        cases.append(("Penalty", f"person.{field}", {"person": {field: "9" * (most + 1)}}))
    for kind, body in CONTENTS.items():
        for field, value in body.items():
            if isinstance(value, str):
                limits = (NAME_MAX, ID_MAX, SHORT_TEXT_MAX, TEXT_MAX)
                for most in limits:  # the first that a one-longer value breaks is its limit
                    cases.append((kind, f"content.{field}",
                                  {"content_fields": {field: "字" * (most + 1)}}))
    cases.append(("Penalty", "content.penalty_types",
                  {"content_fields": {"penalty_types": ["警告"] * (ARRAY_MAX + 1)}}))
    cases.append(("Penalty", "content.penalty_types",
                  {"content_fields": {"penalty_types": ["警告", "警" * (NAME_MAX + 1)]}}))
    cases.append(("Note", "content.attributes",
                  {"content_fields": {"attributes": {"k" * (ID_MAX + 1): "v"}}}))
    cases.append(("Note", "content.attributes",
                  {"content_fields": {"attributes": {"k": "值" * (TEXT_MAX + 1)}}}))
    cases.append(("Note", "content.attributes",
                  {"content_fields": {"attributes": {f"k{i}": "v" for i in range(ARRAY_MAX + 1)}}}))
    return cases


@pytest.mark.parametrize(("content_type", "field", "override"), _over_long_cases())
def test_decoded_events_meet_the_same_size_limits_as_the_models(
    content_type: str, field: str | None, override: dict[str, Any],
) -> None:
    """The bus checks decoded events' sizes without building the models: the verdict, the
    reason code, the message and the field are those of validating the models."""
    datum = event(content_type, **copy.deepcopy(override))
    outcomes = []
    for decoded in (False, True):
        try:
            check(datum, decoded=decoded)
            outcomes.append(None)
        except EventRejected as exc:
            outcomes.append((exc.code, exc.message, exc.field))
    assert outcomes[0] == outcomes[1]


def test_whole_event_limit() -> None:
    # each field within its limit, the whole event above 64 KiB (Chinese: 3 bytes a character)
    big = {f"属性{i}": "值" * TEXT_MAX for i in range(8)}
    message = rejected(event("Note", content_fields={"attributes": big}), R.FIELD_TOO_LONG, None)
    assert str(EVENT_MAX_BYTES) in message
    # the same in ASCII is below the limit
    check(event("Note", content_fields={"attributes": {f"k{i}": "v" * TEXT_MAX for i in range(8)}}))
    # the encoded size, when the caller knows it, decides
    rejected(event(), R.FIELD_TOO_LONG, None, encoded_size=EVENT_MAX_BYTES + 1)
    check(event(), encoded_size=EVENT_MAX_BYTES)


def test_empty_fields() -> None:
    rejected(event(content_fields={"decision_number": "   "}), R.EMPTY_FIELD,
             "content.decision_number")
    rejected(event(record_id=""), R.EMPTY_FIELD, "record_id")
    rejected(event(content_fields={"penalty_types": []}), R.EMPTY_FIELD, "content.penalty_types")
    rejected(event(content_fields={"penalty_types": ["警告", " "]}), R.EMPTY_FIELD)
    # optional text: null, not blank
    rejected(event(person={"organisation": ""}), R.EMPTY_FIELD, "person.organisation")
    rejected(event(source_ref=" "), R.EMPTY_FIELD, "source_ref")
    rejected(event("Note", content_fields={"attributes": {" ": "x"}}), R.EMPTY_FIELD)


@pytest.mark.parametrize(
    "name", ["", "   ", "张\x00三", "张\x07三", "张\u200b三", "张\u202e三", "张\n三", "\ufeff张三"]
)
def test_bad_names(name: str) -> None:
    rejected(event(person={"name": name}), R.BAD_NAME, "person.name")


def test_good_names() -> None:
    for name in ("刘建华", "欧阳晓燕", "阿卜杜拉·艾尼", "Zhang San"):
        check(event(person={"name": name}))


def test_control_characters_in_text() -> None:
    rejected(event(content_fields={"decision_number": "赣\n7号"}), R.BAD_TEXT,
             "content.decision_number")
    rejected(event(content_fields={"illegal_facts": "事实\x00"}), R.BAD_TEXT)
    rejected(event(content_fields={"penalty_types": ["警\x01告"]}), R.BAD_TEXT)
    rejected(event(record_id="R\t1"), R.BAD_TEXT, "record_id")
    # free text may have line breaks and tabs
    check(event(content_fields={"illegal_facts": "一、私自收费；\r\n二、\t私自接受委托。"}))


# --- types (data that did not come through Avro) -------------------------------------------------


def test_wrong_types_are_schema_mismatches() -> None:
    rejected(event(person={"id_number": 360702198205140314}), R.SCHEMA_MISMATCH,
             "person.id_number")
    rejected(event(event_id=ANY_ID, occurred_at=datetime(2024, 2, 26)), R.SCHEMA_MISMATCH,
             "occurred_at")
    rejected(event(action="DELETE"), R.SCHEMA_MISMATCH, "action")
    rejected(event(content_fields={"fine_amount": 5000.0}), R.SCHEMA_MISMATCH,
             "content.fine_amount")
    rejected(event(content_fields={"decision_date": "2024-02-26"}), R.SCHEMA_MISMATCH)
    datum = event()
    del datum["record_id"]
    rejected(datum, R.SCHEMA_MISMATCH, "record_id")
    datum = event()
    datum["content"] = {"Penalty": PENALTY}
    rejected(datum, R.SCHEMA_MISMATCH, "content")
    datum["content"] = ("cn.gov.ganzhou.creditbus.Unknown", {})
    rejected(datum, R.SCHEMA_MISMATCH, "content")
    with pytest.raises(EventRejected) as info:
        validate_event([], CATALOG)  # type: ignore[arg-type]
    assert info.value.code == R.SCHEMA_MISMATCH


# --- no clear identity numbers -------------------------------------------------------------------


def test_no_message_contains_a_full_identity_number() -> None:
    """Every rejection of an event that carries a (valid or broken) ID, and an ID put where a
    code belongs, yields messages with at most the masked number."""
    broken_ids = [ID[:17] + "9", ID_X[:17] + "3", "360702820514031", ID + "1",
                  make_resident_id("360702", "19900230", 7)]
    cases: list[dict[str, Any]] = [event(person={"id_number": i}) for i in broken_ids]
    cases += [
        event(group=ID), event(unit=ID), event(category=ID), event(domain=ID),
        event(severity=ID), event(person={"organisation_uscc": ID}),
        event(content_fields={"authority_uscc": ID}), event(event_id=ID),
        event(person={"name": ID * 4}), event(record_id=ID * 8),
        event("Note", content_fields={"attributes": {ID * 8: "x"}}),
        event("Note", content_fields={"attributes": {ID: "x" * 5000}}),
    ]
    seen = Counter()
    for datum in cases:
        with pytest.raises(EventRejected) as info:
            check(datum)
        seen[info.value.code] += 1
        _assert_no_clear_id(info.value, datum)
        assert ID not in str(info.value) and ID_X not in str(info.value)
        assert info.value.message.isascii() or "〔" in info.value.message
    assert len(seen) >= 8


def test_rejection_pickles_with_its_fields() -> None:
    import pickle

    exc = EventRejected("ID_CHECKSUM", "m", "person.id_number")
    again = pickle.loads(pickle.dumps(exc))
    assert (again.code, again.message, again.field) == ("ID_CHECKSUM", "m", "person.id_number")
    assert isinstance(again, ValueError)


# --- the models mirror the schema ----------------------------------------------------------------


def test_models_mirror_the_avro_schema() -> None:
    raw = json.loads((REPO / "schemas" / "avro" / "credit_event.avsc").read_text("utf-8"))
    fields = {f["name"]: f for f in raw["fields"]}
    assert set(CreditEvent.model_fields) == set(fields)
    assert set(Person.model_fields) == {f["name"] for f in fields["person"]["type"]["fields"]}
    branches = [b for b in fields["content"]["type"] if isinstance(b, dict)]
    assert {f"cn.gov.ganzhou.creditbus.{b['name']}" for b in branches} == set(CONTENT_MODELS)
    for branch in branches:
        model = CONTENT_MODELS[f"cn.gov.ganzhou.creditbus.{branch['name']}"]
        names = {f["name"] for f in branch["fields"]}
        assert set(model.model_fields) == names, branch["name"]
        required = {f["name"] for f in branch["fields"] if "default" not in f}
        assert {n for n, i in model.model_fields.items() if i.is_required()} == required


def test_every_reason_code_is_documented() -> None:
    text = (REPO / "docs" / "contract.md").read_text("utf-8")
    section = text.split("## Validation reason codes", 1)
    assert len(section) == 2, "docs/contract.md lacks the 'Validation reason codes' section"
    for code in R.ALL_REASONS:
        assert f"`{code}`" in section[1], code


# --- sample data and speed -----------------------------------------------------------------------


def test_sample_events_are_valid_and_cover_the_groups() -> None:
    events = sample_events(400, seed=11)
    groups = set()
    for unit, datum in events:
        assert validate_event(datum, CATALOG, topic_unit=unit).resident.in_ganzhou
        groups.add(datum["group"])
    notice_groups = {g.code for g in CATALOG.groups if g.notice_item}
    assert notice_groups <= groups
    assert sample_events(400, seed=11) == events  # seeded


def test_sample_events_with_bad_ones() -> None:
    events = sample_events(300, seed=5, bad_fraction=0.2)
    codes: Counter[str] = Counter()
    for unit, datum in events:
        try:
            validate_event(datum, CATALOG, topic_unit=unit)
        except EventRejected as exc:
            codes[exc.code] += 1
    assert sum(codes.values()) == 60
    assert {"ID_CHECKSUM", "UNKNOWN_CATEGORY", "FUTURE_DATE"} <= set(codes)


def test_validation_is_fast_enough_for_the_hot_path() -> None:
    datum = Wire().decode(Wire().encode("CreditEvent", event())).datum
    validate_event(datum, CATALOG, now_ms=NOW_MS)
    n = 3000
    start = time.perf_counter()
    for _ in range(n):
        validate_event(datum, CATALOG, topic_unit="justice", now_ms=NOW_MS)
    rate = n / (time.perf_counter() - start)
    assert rate > 3000, f"{rate:.0f} events/s"
