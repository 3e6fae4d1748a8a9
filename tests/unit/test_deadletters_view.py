"""What the dead-letter console shows, without a broker: ids, filters, and every kind of dead
letter decoded with identity numbers and names masked."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from creditbus.archive.event import EnrichedEvent
from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.deadletter import dead_letter_headers, mask_ids_in_bytes
from creditbus.deadletters.records import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterIdError,
    parse_dead_letter_id,
)
from creditbus.deadletters.view import detail, summary
from creditbus.identity import mask_id
from creditbus.ingest import Ingestor
from tests.streams_data import ScenarioBuilder

PREFIX = "credit"
WIRE = Wire()


def letter(value: bytes, *, stage: str = "ingest", reason: str = "UNKNOWN_CATEGORY",
           unit: str | None = "justice", offset: int = 4) -> DeadLetter:
    headers = dead_letter_headers(stage=stage, reason=reason, message="m", unit=unit,
                                  topic=f"{PREFIX}.raw.justice", partition=1, offset=offset)
    return DeadLetter.from_message(f"{PREFIX}.deadletter", 0, offset, 0, b"k", value, headers)


@pytest.fixture()
def event() -> tuple[bytes, str, str]:
    builder = ScenarioBuilder(PREFIX, b"secret", seed=9)
    number, name = builder.person()
    _topic, _key, value = builder.event(unit="justice", group="lawyer", category="career",
                                        record_id="SFJ-9", id_number=number, name=name,
                                        marker="x")
    return value, number, name


def test_ids_name_only_the_bus_dead_letter_topics() -> None:
    assert parse_dead_letter_id(PREFIX, "deadletter:0:17") == ("credit.deadletter", 0, 17)
    assert parse_dead_letter_id(PREFIX, "credit.sink.deadletter:2:3") == (
        "credit.sink.deadletter", 2, 3)
    for bad in ("deadletter:0", "raw.justice:0:1", "deadletter:x:1", "audit:0:0"):
        with pytest.raises(DeadLetterIdError):
            parse_dead_letter_id(PREFIX, bad)


def test_filters_combine() -> None:
    one = letter(b"", reason="ID_CHECKSUM")
    assert DeadLetterFilter(unit="justice", reason="id_checksum", stage="ingest").matches(one)
    assert not DeadLetterFilter(unit="edu").matches(one)
    assert not DeadLetterFilter(stage="sink").matches(one)
    assert not DeadLetterFilter(since=datetime(2999, 1, 1, tzinfo=UTC)).matches(one)
    assert DeadLetterFilter(until=datetime(2999, 1, 1, tzinfo=UTC)).matches(one)
    assert DeadLetterFilter(stage="sink").topics(PREFIX) == ["credit.sink.deadletter"]


def test_an_edge_dead_letter_shows_the_event_masked(event: tuple[bytes, str, str]) -> None:
    value, number, name = event
    shown = detail(letter(mask_ids_in_bytes(value)), PREFIX, WIRE)
    text = json.dumps(shown, ensure_ascii=False)
    assert number not in text and name not in text
    assert shown["content_kind"] == "avro:CreditEvent"
    assert shown["content"]["person"]["id_number"] == mask_id(number)
    assert shown["content"]["person"]["name"] == name[0] + "*" * (len(name) - 1)
    assert shown["content"]["record_id"] == "SFJ-9"
    assert summary(letter(b""), PREFIX)["source"] == "credit.raw.justice:1:4"
    assert shown["id"] == "deadletter:0:4"


def test_an_archive_dead_letter_shows_the_enriched_event_masked(
    event: tuple[bytes, str, str],
) -> None:
    value, number, name = event
    enriched = Ingestor(default_catalog(), WIRE, b"secret", PREFIX).process(
        value, f"{PREFIX}.raw.justice", 1, 4)
    assert isinstance(enriched, EnrichedEvent)
    shown = detail(letter(enriched.to_bytes(), stage="archive"), PREFIX, WIRE)
    (item,) = shown["content"]
    assert shown["content_kind"] == "internal" and item["record_id"] == "SFJ-9"
    assert name not in json.dumps(shown, ensure_ascii=False) and item["name"][0] == name[0]
    assert item["masked_id"] == mask_id(number)


def test_undecodable_bytes_are_summarised_and_masked() -> None:
    shown = detail(letter(b"\x7fjunk 360702199001011234 junk"), PREFIX, WIRE)
    assert shown["content_kind"] == "undecodable"
    assert shown["content"]["problem"] == "WIRE_UNKNOWN_FRAMING"
    preview = base64.b64decode(shown["content"]["preview_base64"])
    assert b"junk 360702********1234" in preview and b"199001011234" not in preview
