"""The wire format: both framings, fingerprints, hostile input, canonical JSON, the examples.

No registry server can run in unit tests, so the registry framing runs against two in-process
registries, both through the two calls `Wire` makes (``register_schema``, ``get_schema``):

- ``double``: `InProcessRegistry` below, a small registry double (the only mock in this file);
- ``confluent``: confluent-kafka's own ``SchemaRegistryClient.new_client({"url": "mock://.."})``,
  i.e. the library's in-memory ``MockSchemaRegistryClient``. It needs the
  ``confluent-kafka[schemaregistry]`` extra and is skipped when that is not installed.
"""

from __future__ import annotations

import io
import json
import struct
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditbus.contract.canonical import (
    canonical_content,
    canonical_json,
    derive_event_id,
    format_decimal,
)
from creditbus.contract.jsonform import from_json, load_event, to_json
from creditbus.contract.schemas import SchemaStore, tagged
from creditbus.contract.wire import (
    WIRE_AVRO_INVALID,
    WIRE_EMPTY,
    WIRE_REGISTRY_UNAVAILABLE,
    WIRE_TRUNCATED,
    WIRE_UNKNOWN_FINGERPRINT,
    WIRE_UNKNOWN_FRAMING,
    WIRE_UNKNOWN_SCHEMA_ID,
    RegistrySchema,
    Wire,
    WireError,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "events.jsonl"
CST = timezone(timedelta(hours=8))
NS = "cn.gov.ganzhou.creditbus"
ID_NUMBER = "360702198205140314"  # fictitious, valid check character

CONTENTS: dict[str, dict[str, Any]] = {
    "Penalty": {
        "decision_number": "赣市司罚决字〔2024〕7号",
        "illegal_facts": "私自接受委托、私自收取费用。",
        "legal_basis": "《中华人民共和国律师法》第四十八条",
        "penalty_types": ["警告", "罚款"],
        "penalty_content": "给予警告，处罚款人民币5000元。",
        "fine_amount": Decimal("5000.50"),
        "decision_date": date(2024, 2, 26),
        "disclosure_until": date(2025, 2, 26),
        "authority": "赣州市司法局",
        "authority_uscc": "11360700014567892J",
    },
    "Assessment": {"year": 2023, "result": "优秀", "assessor": "于都县第二中学"},
    "CareerEntry": {
        "organisation": "江西赣江律师事务所",
        "position": "专职律师",
        "start_date": date(2016, 7, 1),
        "end_date": None,
    },
    "Reward": {
        "title": "赣州市优秀教师",
        "level": "市级",
        "issuer": "赣州市教育局",
        "award_date": date(2023, 9, 10),
    },
    "Complaint": {
        "received_date": date(2024, 1, 8),
        "summary": "候诊时间过长。",
        "outcome": "属实，已整改。",
        "substantiated": True,
    },
    "Training": {
        "course": "医疗纠纷预防专题培训",
        "provider": "赣州市医学会",
        "hours": 7.5,
        "completed_date": date(2023, 11, 24),
    },
    "Qualification": {
        "certificate_number": "20133607312000461",
        "qualification_name": "高级中学教师资格（数学）",
        "issuer": "于都县教育体育局",
        "issued_date": date(2013, 6, 30),
        "valid_until": None,
        "status": "有效",
    },
    "Note": {
        "title": "日常防火巡查",
        "detail": "巡查到位。",
        "event_date": date(2024, 4, 24),
        "attributes": {"result": "到位"},
    },
}


def make_event(content_type: str | None = "Penalty", **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "",
        "unit": "justice",
        "published_at": datetime(2024, 3, 4, 9, 30, tzinfo=CST),
        "occurred_at": datetime(2024, 2, 26, tzinfo=CST),
        "action": "UPSERT" if content_type else "RETRACT",
        "record_id": "SFJ-CF-2024-0007",
        "person": {
            "id_number": ID_NUMBER,
            "name": "刘建华",
            "organisation": "江西赣江律师事务所",
            "organisation_uscc": None,
            "sealed": None,
        },
        "group": "lawyer",
        "category": "practice_penalty",
        "severity": "GENERAL",
        "domain": "judicial_litigation",
        "source_ref": "赣市司罚决字〔2024〕7号",
        "content": tagged(content_type, CONTENTS[content_type]) if content_type else None,
    }
    event.update(overrides)
    event["event_id"] = derive_event_id(event)
    return event


def expected_after_round_trip(event: dict[str, Any]) -> dict[str, Any]:
    """What decoding gives back: timestamps in UTC, everything else as written."""
    out = dict(event)
    out["published_at"] = event["published_at"].astimezone(UTC)
    out["occurred_at"] = event["occurred_at"].astimezone(UTC)
    return out


class _NotFound(Exception):
    http_status_code = 404


class InProcessRegistry:
    """Registry double: one id per distinct schema text, subjects remembered, 404 on unknown
    ids (like ``SchemaRegistryError(404, 40403)``)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, Any] = {}
        self.subjects: dict[str, set[int]] = {}

    def register_schema(
        self, subject_name: str, schema: Any, normalize_schemas: bool = False
    ) -> int:
        schema_id = self._ids.setdefault(schema.schema_str, len(self._ids) + 1)
        self._schemas[schema_id] = schema
        self.subjects.setdefault(subject_name, set()).add(schema_id)
        return schema_id

    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._schemas[schema_id]
        except KeyError:
            raise _NotFound(schema_id) from None


def _confluent_registry() -> Any:
    module = pytest.importorskip("confluent_kafka.schema_registry")
    return module.SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})


def make_schema(text: str) -> Any:
    try:
        from confluent_kafka.schema_registry import Schema
    except ImportError:
        return RegistrySchema(text)
    return Schema(text, "AVRO")


def registered_id(registry: Any, subject: str, raw: dict[str, Any]) -> int:
    """The id ``registry`` holds for ``raw`` under ``subject``."""
    if isinstance(registry, InProcessRegistry):
        (schema_id,) = registry.subjects[subject]
        return schema_id
    return int(registry.lookup_schema(subject, make_schema(json.dumps(raw))).schema_id)


def counting(registry: Any) -> Counter[str]:
    """Count the calls `Wire` makes on ``registry``."""
    calls: Counter[str] = Counter()
    for name in ("register_schema", "get_schema"):
        real = getattr(registry, name)

        def wrapper(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _real(*args, **kwargs)

        setattr(registry, name, wrapper)
    return calls


@pytest.fixture(params=["double", "confluent"])
def new_registry(request: pytest.FixtureRequest) -> Callable[[], Any]:
    if request.param == "double":
        return InProcessRegistry
    _confluent_registry()  # skips the case when the extra is missing
    return _confluent_registry


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return SchemaStore()


@pytest.fixture(scope="module")
def wire(store: SchemaStore) -> Wire:
    return Wire(store)


# -- independent CRC-64-AVRO (Avro specification, "Schema Fingerprints") --------------------

_EMPTY64 = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    fp = _EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def test_independent_crc64_matches_the_avro_spec_vectors() -> None:
    # share/test/data/schema-tests.txt of Apache Avro (signed Java longs)
    vectors = {
        '"null"': 7195948357588979594,
        '"boolean"': -6970731678124411036,
        '"int"': 8247732601305521295,
        '"long"': -3434872931120570953,
        '{"name":"foo","type":"fixed","size":15}': 1756455273707447556,
        (
            '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}'
        ): 7843277075252814651,
    }
    for canonical, signed in vectors.items():
        assert crc64_avro(canonical.encode()) == signed & 0xFFFFFFFFFFFFFFFF


def test_store_fingerprints_match_the_independent_crc64(store: SchemaStore) -> None:
    count = 0
    for name in store.names():
        for sv in store.versions(name):
            expected = crc64_avro(sv.canonical_form.encode("utf-8")).to_bytes(8, "little")
            assert sv.fingerprint == expected
            assert store.by_fingerprint(expected) is not None
            count += 1
    assert count >= 3


def test_single_object_header_carries_marker_and_fingerprint(
    wire: Wire, store: SchemaStore
) -> None:
    data = wire.encode("CreditEvent", make_event())
    current = store.current("CreditEvent")
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == crc64_avro(current.canonical_form.encode()).to_bytes(8, "little")


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [*CONTENTS, None])
def test_round_trip_single_object(wire: Wire, store: SchemaStore, content_type: str | None) -> None:
    event = make_event(content_type)
    decoded = wire.decode(wire.encode("CreditEvent", event))
    assert decoded.record_name == f"{NS}.CreditEvent"
    assert decoded.framing == "single-object"
    assert decoded.fingerprint == store.current("CreditEvent").fingerprint
    assert decoded.schema_id is None
    assert decoded.writer_version == store.current("CreditEvent").version
    assert decoded.datum == expected_after_round_trip(event)


@pytest.mark.parametrize("content_type", [*CONTENTS, None])
def test_round_trip_registry_framing(
    store: SchemaStore, new_registry: Callable[[], Any], content_type: str | None
) -> None:
    registry = new_registry()
    producer = Wire(store, registry)
    event = make_event(content_type)
    data = producer.encode("CreditEvent", event, topic="credit.raw.justice")
    assert data[0] == 0
    (schema_id,) = struct.unpack(">I", data[1:5])
    current = store.current("CreditEvent")
    assert registered_id(registry, "credit.raw.justice-value", current.raw) == schema_id
    # A consumer in another process knows nothing but the registry.
    consumer = Wire(store, registry)
    decoded = consumer.decode(data)
    assert decoded.framing == "confluent"
    assert decoded.schema_id == schema_id
    assert decoded.fingerprint is None
    assert decoded.writer_version == current.version
    assert decoded.datum == expected_after_round_trip(event)


def test_registry_subject_is_the_record_name_without_a_topic(
    store: SchemaStore, new_registry: Callable[[], Any]
) -> None:
    registry = new_registry()
    wire = Wire(store, registry)
    data = wire.encode("ArchiveUpdate", make_update())
    current = store.current("ArchiveUpdate")
    assert struct.unpack(">I", data[1:5])[0] == registered_id(registry, current.name, current.raw)
    assert wire.decode(data).record_name == current.name


def test_registry_ids_are_cached(store: SchemaStore, new_registry: Callable[[], Any]) -> None:
    registry = new_registry()
    calls = counting(registry)
    producer, consumer = Wire(store, registry), Wire(store, registry)
    messages = producer.encode_many("CreditEvent", [make_event(t) for t in CONTENTS], topic="t")
    for data in messages:
        consumer.decode(data)
    assert calls == {"register_schema": 1, "get_schema": 1}


def test_a_registry_wire_still_reads_single_object_messages(wire: Wire, store: SchemaStore) -> None:
    event = make_event("Training")
    decoded = Wire(store, InProcessRegistry()).decode(wire.encode("CreditEvent", event))
    assert decoded.framing == "single-object"
    assert decoded.datum == expected_after_round_trip(event)


def test_registry_schema_unknown_to_the_store_is_resolved_by_record_name(
    store: SchemaStore, new_registry: Callable[[], Any]
) -> None:
    """A producer with a newer (but compatible) schema: the reader drops the extra field."""
    registry = new_registry()
    newer = json.loads(json.dumps(store.current("CreditEvent").raw))
    newer["fields"].insert(2, {"name": "extra_note", "type": "string", "default": ""})
    schema_id = registry.register_schema("credit.raw.x-value", make_schema(json.dumps(newer)))
    event = make_event("Reward")
    body = io.BytesIO()
    schemaless_writer(body, newer, dict(event, extra_note="ignored by older readers"))
    data = struct.pack(">bI", 0, schema_id) + body.getvalue()
    decoded = Wire(store, registry).decode(data)
    assert decoded.writer_version is None
    assert decoded.datum == expected_after_round_trip(event)


def test_archive_update_round_trip(wire: Wire) -> None:
    update = make_update()
    decoded = wire.decode(wire.encode("ArchiveUpdate", update))
    assert decoded.record_name == f"{NS}.ArchiveUpdate"
    assert (
        decoded.datum["change"]["record"]["content_json"]
        == update["change"]["record"]["content_json"]
    )
    assert decoded.datum["updated_at"] == update["updated_at"].astimezone(UTC)


def test_archive_update_schema_has_no_clear_identity_number(store: SchemaStore) -> None:
    text = json.dumps(store.current("ArchiveUpdate").raw)
    assert "id_number" not in text


def make_update() -> dict[str, Any]:
    content = tagged("Penalty", CONTENTS["Penalty"])
    return {
        "person_key": "ab" * 32,
        "masked_id": "360702********0314",
        "name": "刘建华",
        "birth_date": date(1982, 5, 14),
        "sex": "M",
        "division_code": "360702",
        "groups": ["lawyer"],
        "version": 1,
        "previous_hash": "0" * 64,
        "hash": "cd" * 32,
        "event_id": "ef" * 32,
        "unit": "justice",
        "updated_at": datetime(2024, 3, 4, 9, 30, tzinfo=CST),
        "change": {
            "kind": "UPSERT_RECORD",
            "record": {
                "unit": "justice",
                "record_id": "SFJ-CF-2024-0007",
                "record_version": 1,
                "group": "lawyer",
                "category": "practice_penalty",
                "severity": "general",
                "domain": "judicial_litigation",
                "occurred_at": datetime(2024, 2, 26, tzinfo=CST),
                "published_at": datetime(2024, 3, 4, 9, 30, tzinfo=CST),
                "disclosure_start": date(2024, 2, 26),
                "disclosure_end": date(2025, 2, 26),
                "public": True,
                "retracted": False,
                "content_json": canonical_content(content).decode(),
            },
        },
    }


# -- encoding errors ------------------------------------------------------------------------


def test_encode_rejects_unknown_and_missing_fields_naming_only_the_fields(wire: Wire) -> None:
    event = make_event()
    event["sourceref"] = "typo"
    with pytest.raises(WireError) as info:
        wire.encode("CreditEvent", event)
    assert info.value.code == WIRE_AVRO_INVALID
    assert "sourceref" in info.value.message
    bad = make_event()
    del bad["unit"]
    with pytest.raises(WireError, match="unit"):
        wire.encode("CreditEvent", bad)


def test_encode_error_does_not_echo_the_identity_number(wire: Wire) -> None:
    event = make_event()
    event["person"] = {"id_number": ID_NUMBER, "name": 42}
    with pytest.raises(WireError) as info:
        wire.encode("CreditEvent", event)
    assert ID_NUMBER not in str(info.value)


# -- decoding errors --------------------------------------------------------------------------


def _code(wire: Wire, data: bytes) -> str:
    with pytest.raises(WireError) as info:
        wire.decode(data)
    return info.value.code


def test_decode_error_codes(wire: Wire, store: SchemaStore) -> None:
    good = wire.encode("CreditEvent", make_event())
    assert _code(wire, b"") == WIRE_EMPTY
    assert _code(wire, b"{") == WIRE_UNKNOWN_FRAMING
    assert _code(wire, b"\xc3\x02" + good[2:]) == WIRE_UNKNOWN_FRAMING
    assert _code(wire, b"\xc3") == WIRE_TRUNCATED
    assert _code(wire, good[:7]) == WIRE_TRUNCATED
    assert _code(wire, good[:10]) == WIRE_TRUNCATED
    assert _code(wire, good[:-3]) == WIRE_TRUNCATED
    assert _code(wire, b"\xc3\x01" + b"\x00" * 8 + good[10:]) == WIRE_UNKNOWN_FINGERPRINT
    assert _code(wire, good + b"\x00") == WIRE_AVRO_INVALID  # trailing bytes
    assert _code(wire, b"\x00\x00\x00") == WIRE_TRUNCATED
    assert _code(wire, b"\x00\x00\x00\x00\x07" + good[10:]) == WIRE_UNKNOWN_SCHEMA_ID  # no registry
    # an out-of-range enum index for `action`: rewrite the body with a broken writer schema
    body = io.BytesIO()
    broken = json.loads(json.dumps(store.current("CreditEvent").raw))
    broken["fields"][4]["type"]["symbols"] = ["UPSERT", "RETRACT", "X1", "X2"]
    schemaless_writer(body, broken, dict(make_event(), action="X2"))
    bad_enum = good[:10] + body.getvalue()
    assert _code(wire, bad_enum) == WIRE_AVRO_INVALID


def test_unknown_registry_id_is_reported_and_negatively_cached(
    store: SchemaStore, new_registry: Callable[[], Any]
) -> None:
    registry = new_registry()
    calls = counting(registry)
    wire = Wire(store, registry)
    for _ in range(3):
        assert _code(wire, b"\x00\x00\x00\x01\x99\x02") == WIRE_UNKNOWN_SCHEMA_ID
    assert calls["get_schema"] == 1


def test_registry_schema_of_a_foreign_record_is_unknown(
    store: SchemaStore, new_registry: Callable[[], Any]
) -> None:
    registry = new_registry()
    foreign = {"type": "record", "name": "Other", "namespace": "x", "fields": []}
    schema_id = registry.register_schema("x-value", make_schema(json.dumps(foreign)))
    data = struct.pack(">bI", 0, schema_id) + b"\x00"
    assert _code(Wire(store, registry), data) == WIRE_UNKNOWN_SCHEMA_ID


class _UnreachableRegistry:
    """Stands in for a registry that cannot be reached (no server can run in unit tests)."""

    def get_schema(self, schema_id: int) -> Any:
        raise ConnectionError("connection refused")


def test_unreachable_registry_is_retriable_not_dead_letter(store: SchemaStore) -> None:
    wire = Wire(store, _UnreachableRegistry())  # type: ignore[arg-type]
    with pytest.raises(WireError) as info:
        wire.decode(b"\x00\x00\x00\x00\x05\x00")
    assert info.value.code == WIRE_REGISTRY_UNAVAILABLE
    assert info.value.retriable
    # not cached: once the registry is back, the id resolves
    assert _code(wire, b"\x00\x00\x00\x00\x05\x00") == WIRE_REGISTRY_UNAVAILABLE


# -- hostile input (hypothesis) -----------------------------------------------------------------

_VALID: list[bytes] = []


def _valid_messages() -> list[bytes]:
    if not _VALID:
        wire = Wire(SchemaStore())
        _VALID.extend(wire.encode("CreditEvent", make_event(t)) for t in [*CONTENTS, None])
        _VALID.append(wire.encode("ArchiveUpdate", make_update()))
    return _VALID


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "framed-random", "truncated", "mutated", "spliced"]))
    if kind == "random":
        return draw(st.binary(max_size=600))
    valid = draw(st.sampled_from(_valid_messages()))
    if kind == "framed-random":
        return valid[: draw(st.sampled_from([2, 10]))] + draw(st.binary(max_size=300))
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    data = bytearray(valid)
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] = draw(st.integers(0, 255))
        return bytes(data)
    start = draw(st.integers(0, len(data)))
    return bytes(data[:start]) + draw(st.binary(max_size=64)) + bytes(data[start:])


_FUZZ_WIRE = Wire(SchemaStore(), InProcessRegistry())
_FUZZ_WIRE.encode("CreditEvent", make_event(), topic="fuzz")  # id 1 is a real schema


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=hostile_messages())
def test_decode_raises_only_wire_errors_without_echoing_payload(data: bytes) -> None:
    try:
        decoded = _FUZZ_WIRE.decode(data)
    except WireError as exc:
        text = str(exc)
        assert ID_NUMBER not in text
        assert data.hex() not in text or len(data) < 4
        assert "\\x" not in text
    else:
        assert isinstance(decoded.datum, dict)


def test_every_truncation_of_a_valid_message_fails(wire: Wire) -> None:
    for valid in _valid_messages():
        for cut in range(len(valid)):
            with pytest.raises(WireError):
                wire.decode(valid[:cut])


# -- canonical JSON ---------------------------------------------------------------------------


def test_canonical_json_rules() -> None:
    value = {
        "b": [1, True, None, 1.5],
        "a": "赣州",
        "d": date(2024, 2, 29),
        "t": datetime(2024, 3, 4, 9, 30, 0, 123000, tzinfo=CST),
        "m": Decimal("5000.50"),
    }
    assert (
        canonical_json(value)
        == (
            '{"a":"赣州","b":[1,true,null,1.5],"d":"2024-02-29","m":"5000.5",'
            '"t":"2024-03-04T01:30:00.123Z"}'
        ).encode()
    )


def test_canonical_json_is_deterministic_across_key_order_and_timezones() -> None:
    a = {"x": 1, "y": {"p": datetime(2024, 1, 1, 8, tzinfo=CST), "q": Decimal("2E+2")}}
    b = {"y": {"q": Decimal("200.00"), "p": datetime(2024, 1, 1, 0, tzinfo=UTC)}, "x": 1}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(a) == b'{"x":1,"y":{"p":"2024-01-01T00:00:00.000Z","q":"200"}}'


_JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.decimals(min_value=-(10**15), max_value=10**15, places=2)
    | st.dates(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSONISH)
@settings(max_examples=300, deadline=None)
def test_canonical_json_is_stable_and_parseable(value: Any) -> None:
    try:
        first = canonical_json(value)
    except UnicodeEncodeError:
        return  # lone surrogates cannot be UTF-8: refused, as documented
    assert canonical_json(value) == first
    reparsed = json.loads(first.decode("utf-8"))
    assert canonical_json(reparsed) == first


@pytest.mark.parametrize(
    "bad",
    [
        datetime(2024, 1, 1),  # naive
        float("nan"),
        Decimal("NaN"),
        {1: "non-string key"},
        {b"bytes"},
        b"raw",
    ],
)
def test_canonical_json_refuses_ambiguous_values(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        canonical_json(bad)


def test_format_decimal() -> None:
    assert format_decimal(Decimal("0.00")) == "0"
    assert format_decimal(Decimal("-0")) == "0"
    assert format_decimal(Decimal("1E+3")) == "1000"
    assert format_decimal(Decimal("586400.50")) == "586400.5"


def test_canonical_content_survives_the_wire(wire: Wire) -> None:
    for content_type in CONTENTS:
        event = make_event(content_type)
        decoded = wire.decode(wire.encode("CreditEvent", event)).datum
        assert canonical_content(decoded["content"]) == canonical_content(event["content"])
        assert canonical_content(decoded["content"]).startswith(f'{{"{content_type}":'.encode())
    assert canonical_content(None) == b"null"


def test_event_id_is_stable_and_ignores_publication_time_and_id_number() -> None:
    event = make_event()
    again = make_event(published_at=datetime(2025, 1, 1, tzinfo=CST))
    assert again["event_id"] == event["event_id"]
    other_content = make_event("Note")
    assert other_content["event_id"] != event["event_id"]
    retract = make_event(None)
    assert retract["event_id"] != event["event_id"]
    person = dict(event["person"], id_number="360731199009030464")
    assert derive_event_id(dict(event, person=person)) == event["event_id"]


# -- the examples ---------------------------------------------------------------------------


def _example_lines() -> list[str]:
    return [line for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_char(body17: str) -> str:
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(body17))
    return "10X98765432"[total % 11]


def test_examples_encode_with_the_current_schema(wire: Wire, store: SchemaStore) -> None:
    current = store.current("CreditEvent")
    lines = _example_lines()
    assert 15 <= len(lines) <= 30
    seen_types, groups, actions = set(), set(), set()
    record_ids: dict[tuple[str, str], int] = {}
    for line in lines:
        datum = load_event(current, line)
        decoded = wire.decode(wire.encode("CreditEvent", datum))
        assert decoded.datum["event_id"] == datum["event_id"]
        assert derive_event_id(datum) == datum["event_id"]
        assert to_json(current, decoded.datum) == to_json(current, datum)
        if datum["content"] is not None:
            seen_types.add(datum["content"][0].rsplit(".", 1)[-1])
        groups.add(datum["group"])
        actions.add(datum["action"])
        key = (datum["unit"], datum["record_id"])
        record_ids[key] = record_ids.get(key, 0) + 1
        id_number = datum["person"]["id_number"]
        assert id_number.startswith("3607")
        assert _check_char(id_number[:17]) == id_number[17]
        assert (
            date(1950, 1, 1)
            < date.fromisoformat(f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}")
            < date(2005, 1, 1)
        )
    assert seen_types == set(CONTENTS)
    assert {"lawyer", "teacher", "physician", "tour_guide"} <= groups
    assert actions == {"UPSERT", "RETRACT"}
    assert any(n > 1 for n in record_ids.values())  # an update or retraction of a record


def test_json_form_round_trips_and_rejects_unknown_fields(store: SchemaStore) -> None:
    current = store.current("CreditEvent")
    obj = json.loads(_example_lines()[0])
    assert to_json(current, from_json(current, obj))["content"] == obj["content"] | {
        "Penalty": obj["content"]["Penalty"] | {"fine_amount": "5000"}
    }
    obj["person"]["nickname"] = "x"
    with pytest.raises(ValueError, match=r"person: unknown fields: nickname"):
        from_json(current, obj)


@pytest.mark.parametrize(
    ("amount", "ok"),
    [
        ("5000.5", True),
        ("0", True),
        ("9999999999999999.99", True),
        ("1.005", False),
        ("99999999999999999.00", False),
    ],
)
def test_fine_amount_is_an_exact_decimal_18_2(wire: Wire, amount: str, ok: bool) -> None:
    event = make_event()
    event["content"] = tagged("Penalty", dict(CONTENTS["Penalty"], fine_amount=Decimal(amount)))
    if not ok:
        with pytest.raises(WireError):
            wire.encode("CreditEvent", event)
        return
    fine = wire.decode(wire.encode("CreditEvent", event)).datum["content"][1]["fine_amount"]
    assert fine == Decimal(amount)
    assert fine.as_tuple().exponent == -2
