"""Schema evolution: the test that catches an incompatible change before it ships.

Every ``*.vN.avsc`` in ``schemas/avro/`` is compared with the current schema of its record:
data written with any earlier version must stay readable by the current one. Deliberately
broken variants show that the check does catch the usual mistakes.
"""

from __future__ import annotations

import copy
import io
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer

from creditbus.contract.compat import backward_problems
from creditbus.contract.schemas import (
    SchemaStore,
    SchemaStoreError,
    SchemaVersion,
    default_schema_dir,
    tagged,
)
from creditbus.contract.wire import Wire

SCHEMA_DIR = default_schema_dir()
VERSIONED = sorted(SCHEMA_DIR.glob("*.v[0-9]*.avsc"))
CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return SchemaStore(SCHEMA_DIR)


def _current_for(path: Path, store: SchemaStore) -> SchemaVersion:
    raw = json.loads(path.read_text(encoding="utf-8"))
    name = raw["name"] if "." in raw["name"] else f"{raw['namespace']}.{raw['name']}"
    return store.current(name)


def test_there_is_an_earlier_version_to_check() -> None:
    assert VERSIONED, "schemas/avro/ should keep the previous CreditEvent version"
    for path in VERSIONED:
        assert re.fullmatch(r".+\.v[0-9]+\.avsc", path.name)
        assert (path.parent / (path.name.split(".v")[0] + ".avsc")).exists()


@pytest.mark.parametrize("path", VERSIONED, ids=lambda p: p.name)
def test_every_earlier_version_is_readable_by_the_current_schema(
    path: Path, store: SchemaStore
) -> None:
    old = json.loads(path.read_text(encoding="utf-8"))
    current = _current_for(path, store)
    assert backward_problems(old, current.raw) == []


def test_every_schema_is_compatible_with_itself(store: SchemaStore) -> None:
    for name in store.names():
        for sv in store.versions(name):
            assert backward_problems(sv.raw, sv.raw) == [], sv.path.name
            assert backward_problems(sv.parsed, sv.parsed) == [], sv.path.name


def test_current_schemas_document_every_field(store: SchemaStore) -> None:
    def walk(schema: Any, where: str) -> None:
        if isinstance(schema, list):
            for branch in schema:
                walk(branch, where)
        elif isinstance(schema, dict):
            if schema.get("type") == "record":
                for field in schema["fields"]:
                    assert field.get("doc"), f"{where}.{field['name']} has no doc"
                    walk(field["type"], f"{where}.{field['name']}")
            elif schema.get("type") == "array":
                walk(schema["items"], where)
            elif schema.get("type") == "map":
                walk(schema["values"], where)

    for name in store.names():
        walk(store.current(name).raw, name)


# -- v1 data read by the current schema ---------------------------------------------------


def _v1_event() -> dict[str, Any]:
    return {
        "event_id": "ab" * 32,
        "unit": "health",
        "published_at": datetime(2024, 4, 2, 14, 30, tzinfo=CST),
        "occurred_at": datetime(2024, 3, 28, tzinfo=CST),
        "action": "UPSERT",
        "record_id": "WJ-PX-2023-2210",
        "person": {"id_number": "360703197811220156", "name": "黄志明"},
        "group": "physician",
        "category": "training",
        "content": tagged(
            "Training",
            {
                "course": "医疗纠纷预防专题培训",
                "provider": "赣州市医学会",
                "hours": 7.5,
                "completed_date": date(2023, 11, 24),
            },
        ),
    }


def test_v1_messages_are_read_by_the_current_schema_with_defaults(store: SchemaStore) -> None:
    v1 = store.versions("CreditEvent")[0]
    current = store.current("CreditEvent")
    assert v1.version == 1 and not v1.is_current and current.is_current
    assert v1.fingerprint != current.fingerprint
    body = io.BytesIO()
    schemaless_writer(body, v1.parsed, _v1_event())
    message = b"\xc3\x01" + v1.fingerprint + body.getvalue()

    decoded = Wire(store).decode(message)
    assert decoded.record_name == current.name
    assert decoded.fingerprint == v1.fingerprint
    assert decoded.writer_version == 1
    datum = decoded.datum
    assert datum["domain"] is None and datum["source_ref"] is None  # added in v2, defaulted
    assert datum["severity"] is None
    assert datum["person"]["organisation"] is None
    assert datum["published_at"] == datetime(2024, 4, 2, 6, 30, tzinfo=UTC)
    assert datum["content"][0] == "cn.gov.ganzhou.creditbus.Training"
    assert datum["content"][1]["hours"] == 7.5
    assert set(datum) == {f["name"] for f in current.raw["fields"]}


# -- the check catches broken changes -------------------------------------------------------


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def _content_branch(schema: dict[str, Any], short: str) -> dict[str, Any]:
    union = _field(schema, "content")["type"]
    return next(b for b in union if isinstance(b, dict) and b.get("name") == short)


def _broken(store: SchemaStore, change: str) -> dict[str, Any]:
    new = copy.deepcopy(store.current("CreditEvent").raw)
    if change == "new field without default":
        new["fields"].append({"name": "region", "type": "string", "doc": "x"})
    elif change == "int to string":
        _field(_content_branch(new, "Assessment"), "year")["type"] = "string"
    elif change == "long to int":
        _field(new, "published_at")["type"] = "int"
    elif change == "removed enum symbol":
        _field(new, "action")["type"]["symbols"] = ["UPSERT"]
    elif change == "removed union branch":
        union = _field(new, "content")["type"]
        union[:] = [b for b in union if not (isinstance(b, dict) and b.get("name") == "Note")]
    elif change == "renamed record":
        new["name"] = "CreditFact"
    elif change == "nested field without default":
        _field(new, "person")["type"]["fields"].append({"name": "phone", "type": "string"})
    elif change == "nested type change":
        _field(_content_branch(new, "Penalty"), "penalty_types")["type"] = {
            "type": "array",
            "items": "int",
        }
    elif change == "decimal scale":
        fine = _field(_content_branch(new, "Penalty"), "fine_amount")["type"][1]
        fine["scale"] = 4
    elif change == "bad default":
        new["fields"].append({"name": "region", "type": ["string", "null"], "default": None})
    else:  # pragma: no cover
        raise AssertionError(change)
    return new


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("new field without default", "CreditEvent.region: field added without a default"),
        ("int to string", "year: type changed from int to string"),
        ("long to int", "published_at: type changed from long to int"),
        ("removed enum symbol", "enum symbols removed without an enum default: RETRACT"),
        ("removed union branch", "union branch record Note was removed"),
        ("renamed record", "without an alias"),
        ("nested field without default", "person.phone: field added without a default"),
        ("nested type change", "penalty_types[]: type changed from string to int"),
        ("decimal scale", "decimal scale changed"),
        ("bad default", "default does not fit"),
    ],
)
def test_broken_changes_are_reported(store: SchemaStore, change: str, expected: str) -> None:
    for old in store.versions("CreditEvent"):
        problems = backward_problems(old.raw, _broken(store, change))
        assert any(expected in p for p in problems), problems


def test_legal_changes_are_accepted(store: SchemaStore) -> None:
    current = store.current("CreditEvent").raw
    new = copy.deepcopy(current)
    _field(_content_branch(new, "Assessment"), "year")["type"] = "long"  # int -> long
    _field(_content_branch(new, "Training"), "hours")["type"] = "double"  # float -> double
    _field(new, "record_id")["type"] = "bytes"  # string -> bytes
    new["fields"].append({"name": "region", "type": ["null", "string"], "default": None})
    action = _field(new, "action")["type"]
    action["symbols"] = [*action["symbols"], "CORRECT"]  # symbols added
    union = _field(new, "content")["type"]
    union.append({"type": "record", "name": "Extra", "fields": []})  # branch added
    assert backward_problems(current, new) == []
    renamed = copy.deepcopy(current)
    renamed["name"] = "CreditFact"
    renamed["aliases"] = ["cn.gov.ganzhou.creditbus.CreditEvent"]
    assert backward_problems(current, renamed) == []
    narrowed = copy.deepcopy(current)
    _field(narrowed, "action")["type"].update(symbols=["UPSERT"], default="UPSERT")
    assert backward_problems(current, narrowed) == []


# -- the store --------------------------------------------------------------------------------


def test_store_knows_current_and_versions(store: SchemaStore) -> None:
    assert set(store.names()) >= {
        "cn.gov.ganzhou.creditbus.CreditEvent",
        "cn.gov.ganzhou.creditbus.ArchiveUpdate",
    }
    versions = store.versions("CreditEvent")
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert versions[-1] is store.current("cn.gov.ganzhou.creditbus.CreditEvent")
    assert versions[-1].path.name == "credit_event.avsc"
    for sv in versions:
        assert store.by_fingerprint(sv.fingerprint) is sv


def test_store_refuses_two_current_files(tmp_path: Path) -> None:
    schema = {"type": "record", "name": "A", "namespace": "n", "fields": []}
    (tmp_path / "a.avsc").write_text(json.dumps(schema))
    (tmp_path / "b.avsc").write_text(json.dumps(schema))
    with pytest.raises(SchemaStoreError, match="exactly one current"):
        SchemaStore(tmp_path)


def test_store_accepts_a_path_and_a_string(tmp_path: Path) -> None:
    schema = {
        "type": "record",
        "name": "A",
        "namespace": "n",
        "fields": [{"name": "x", "type": "int"}],
    }
    (tmp_path / "a.avsc").write_text(json.dumps(schema))
    assert SchemaStore(tmp_path).names() == ("n.A",)
    assert SchemaStore(str(tmp_path)).current("A").version == 1


def test_contract_doc_lists_every_record_and_field(store: SchemaStore) -> None:
    doc = (SCHEMA_DIR.parents[1] / "docs" / "contract.md").read_text(encoding="utf-8")

    def walk(schema: Any) -> None:
        if isinstance(schema, list):
            for branch in schema:
                walk(branch)
        elif isinstance(schema, dict) and schema.get("type") == "record":
            assert f"#### `{schema['name']}`" in doc, schema["name"]
            for field in schema["fields"]:
                assert f"| `{field['name']}` |" in doc, f"{schema['name']}.{field['name']}"
                walk(field["type"])
        elif isinstance(schema, dict) and schema.get("type") in ("array", "map"):
            walk(schema.get("items", schema.get("values")))

    for name in store.names():
        walk(store.current(name).raw)


def test_contract_doc_lists_current_fingerprints(store: SchemaStore) -> None:
    doc = (SCHEMA_DIR.parents[1] / "docs" / "contract.md").read_text(encoding="utf-8")
    for name in store.names():
        for sv in store.versions(name):
            assert f"`{sv.fingerprint.hex()}`" in doc, (
                f"update the fingerprint table: {sv.path.name}"
            )
