"""The ingest step (decode, validate, enrich) without a broker."""

from __future__ import annotations

from datetime import UTC, date, datetime

from creditbus.archive.event import EnrichedEvent
from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.identity import person_key
from creditbus.ingest import Ingestor, Rejection
from tests.streams_data import ScenarioBuilder

SECRET = b"unit-test-secret"


def ingest(message: tuple[str, bytes | None, bytes]) -> EnrichedEvent | Rejection:
    ingestor = Ingestor(default_catalog(), Wire(), SECRET, "credit")
    topic, _key, value = message
    return ingestor.process(value, topic, 0, 42)


def penalty(builder: ScenarioBuilder, number: str, name: str, **kw: object):
    return builder.event(unit="justice", group="lawyer", category="practice_penalty",
                         record_id="SFJ-9", id_number=number, name=name, marker="m", **kw)


def test_enrichment_derives_person_fields_and_drops_the_clear_id() -> None:
    builder = ScenarioBuilder("credit", SECRET, seed=1)
    number, name = builder.person()
    result = ingest(penalty(builder, number, name))
    assert isinstance(result, EnrichedEvent)
    assert result.person_key == person_key(number, SECRET)
    assert result.masked_id == number[:6] + "*" * 8 + number[-4:]
    assert result.birth_date == f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
    assert result.sex == ("M" if int(number[16]) % 2 else "F")
    assert result.division_code == number[:6]
    assert result.domain == default_catalog().group("lawyer").default_domain
    assert number.encode() not in result.to_bytes()
    assert (result.source_topic, result.source_partition, result.source_offset) == \
        ("credit.raw.justice", 0, 42)


def test_general_penalty_gets_a_one_year_window_from_its_decision_date() -> None:
    builder = ScenarioBuilder("credit", SECRET, seed=2)
    number, name = builder.person()
    published = datetime(2026, 3, 1, tzinfo=UTC)
    result = ingest(penalty(builder, number, name, published=published,
                            content_date=date(2026, 2, 20)))
    assert isinstance(result, EnrichedEvent)
    assert result.severity == "general"
    assert (result.disclosure_start, result.disclosure_end) == ("2026-02-20", "2027-02-20")


def test_content_hash_ignores_event_id_and_publication_time() -> None:
    builder = ScenarioBuilder("credit", SECRET, seed=3)
    number, name = builder.person()
    first = ingest(penalty(builder, number, name, content_date=date(2026, 2, 2)))
    again = ingest(penalty(builder, number, name, content_date=date(2026, 2, 2),
                           published=datetime(2026, 5, 1, 8, tzinfo=UTC)))
    assert isinstance(first, EnrichedEvent) and isinstance(again, EnrichedEvent)
    assert first.event_id != again.event_id
    assert first.content_hash == again.content_hash


def test_rejections_carry_codes_and_never_the_number() -> None:
    builder = ScenarioBuilder("credit", SECRET, seed=4)
    number, name = builder.person()
    broken = number[:17] + ("0" if number[17] != "0" else "1")
    rejected = ingest(penalty(builder, broken, name))
    assert isinstance(rejected, Rejection)
    assert rejected.code == "ID_CHECKSUM"
    assert broken not in rejected.message
    garbage = ingest(("credit.raw.edu", None, b"\x00\x01"))
    assert isinstance(garbage, Rejection) and garbage.unit == "edu"
    misplaced = ingest(("credit.raw.edu", None, penalty(builder, number, name)[2]))
    assert isinstance(misplaced, Rejection) and misplaced.code == "TOPIC_UNIT_MISMATCH"
