"""The publisher SDK without a broker: the unit by code or Chinese name (shared with
`creditbus publish`), and events in the documented JSON form accepted as they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from creditbus.catalog import default_catalog
from creditbus.cli import publish_cmd
from creditbus.contract import reasons as R
from creditbus.contract.jsonform import from_json, is_json_form
from creditbus.contract.validation import EventRejected
from creditbus.contract.wire import Wire
from creditbus.publish import CreditPublisher
from creditbus.publish.producer import CREDIT_EVENT, EventEncoder, resolve_unit
from creditbus.settings import Settings
from tests.unit.test_import_rows import run_cli

CATALOG = default_catalog()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"


def examples() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EXAMPLES.read_text("utf-8").splitlines() if line]


def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", "127.0.0.1:9")  # nothing is sent in these tests
    return Settings.from_env()


@pytest.mark.parametrize("given", ["justice", "市司法局", "赣州市司法局"])
def test_sdk_takes_the_unit_by_code_or_chinese_name(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    assert "赣州市司法局" in CATALOG.unit("justice").aliases
    publisher = CreditPublisher(settings(monkeypatch), given)
    assert publisher.unit == publisher.encoder.unit == "justice"
    assert publisher.topic == "credit.raw.justice"
    assert EventEncoder(given, CATALOG, Wire()).unit == "justice"


@pytest.mark.parametrize("given", ["nobody", "市宇航局", "hrss"])
def test_sdk_and_cli_refuse_the_same_units_with_the_same_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str
) -> None:
    with pytest.raises(ValueError) as info:
        CreditPublisher(settings(monkeypatch), given)
    with pytest.raises(ValueError) as shared:
        resolve_unit(CATALOG, given)
    assert str(info.value) == str(shared.value)
    path = tmp_path / "x.jsonl"
    path.write_text("", encoding="utf-8")
    code, err = run_cli("--unit", given, str(path), "--dry-run")
    assert code == publish_cmd.EXIT_USAGE
    assert f"error: {info.value}" in err


def test_json_form_is_detected_by_its_text_timestamp() -> None:
    (first, *_) = examples()
    assert is_json_form(first)
    schema = Wire().store.current(CREDIT_EVENT)
    assert not is_json_form(from_json(schema, first))
    assert not is_json_form({"unit": "justice"})


def test_every_documented_json_event_is_accepted_as_it_is() -> None:
    schema = Wire().store.current(CREDIT_EVENT)
    encoders: dict[str, EventEncoder] = {}
    for obj in examples():
        encoder = encoders.setdefault(obj["unit"], EventEncoder(obj["unit"], CATALOG, Wire()))
        direct = encoder.prepare(obj)
        converted = encoder.prepare(from_json(schema, obj))
        assert direct.datum == converted.datum
        assert direct.event_id == obj["event_id"]
    # without the fields the publisher fills in (docs/publisher.md), the same id is derived
    first = examples()[0]
    bare = {k: v for k, v in first.items() if k not in ("event_id", "published_at", "unit")}
    assert EventEncoder("justice", CATALOG, Wire()).prepare(bare).event_id == first["event_id"]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("content", "Penalty", "decision_date"), "26/02/2024", "content.decision_date"),
        (("content", "Penalty", "penalty_types"), ["警告", 3], "content.penalty_types"),
        (("person", "name"), 5, "person.name"),
        (("published_at",), "2024-03-04 09:30", "published_at"),
        (("unknown_field",), "x", None),
    ],
)
def test_json_form_errors_name_the_field(path: tuple[str, ...], value: Any,
                                         field: str | None) -> None:
    obj = examples()[0]
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(EventRejected) as info:
        EventEncoder("justice", CATALOG, Wire()).prepare(obj)
    assert (info.value.code, info.value.field) == (R.SCHEMA_MISMATCH, field)
    assert "360702198205140314" not in info.value.message
