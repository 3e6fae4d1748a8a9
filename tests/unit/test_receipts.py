"""Receipts without a broker: what each outcome's receipt says, that it never holds a clear
identity number, and that deciding the same message again gives the same bytes."""

from __future__ import annotations

import orjson

from creditbus.archive import person
from creditbus.archive.event import EnrichedEvent, pack_internal, parse_internal_all
from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.ingest import Ingestor, Rejection
from creditbus.receipts import ROW_HEADER, Receipt, row_of_headers
from creditbus.receipts import build as receipts
from creditbus.receipts.model import receipt_key
from tests.streams_data import ScenarioBuilder

SECRET = b"unit-test-secret"
HORIZON = 90 * 86_400_000
STAMP = 1_764_600_000_123


def ingest(message: tuple[str, bytes | None, bytes], offset: int = 42,
           row: int | None = 7) -> EnrichedEvent | Rejection:
    topic, _key, value = message
    ingestor = Ingestor(default_catalog(), Wire(), SECRET, "credit")
    return ingestor.process(value, topic, 0, offset, STAMP, row)


def penalty(builder: ScenarioBuilder, number: str, name: str, record_id: str = "SFJ-9",
            **kw: object) -> tuple[str, bytes | None, bytes]:
    return builder.event(unit="justice", group="lawyer", category="practice_penalty",
                         record_id=record_id, id_number=number, name=name, marker="m", **kw)


def decode(built: tuple[bytes, bytes]) -> Receipt:
    key, value = built
    receipt = Receipt.from_bytes(value)
    assert receipt.key == key
    return receipt


def test_the_row_and_the_inbound_timestamp_travel_through_the_pack() -> None:
    builder = ScenarioBuilder("credit", SECRET, seed=1)
    event = ingest(penalty(builder, *builder.person()), row=12)
    assert isinstance(event, EnrichedEvent)
    assert (event.source_row, event.source_timestamp) == (12, STAMP)
    (back,) = parse_internal_all(pack_internal([event])[0])
    assert back == event


def test_outcomes_of_the_archive_become_receipts() -> None:
    builder = ScenarioBuilder("credit", SECRET, seed=2)
    number, name = builder.person()
    first = ingest(penalty(builder, number, name), offset=1, row=2)
    assert isinstance(first, EnrichedEvent)
    out = person.apply_event(None, first, horizon_ms=HORIZON)
    assert out.result == person.APPLIED and out.version == 1
    accepted = decode(receipts.accepted(first, out.version))
    assert (accepted.outcome, accepted.version, accepted.reason) == ("accepted", 1, None)
    assert (accepted.event_id, accepted.record_id, accepted.unit) == (
        first.event_id, "SFJ-9", "justice")
    assert (accepted.source_row, accepted.topic, accepted.partition, accepted.offset) == (
        2, "credit.raw.justice", 0, 1)
    assert accepted.decided_at == STAMP and "档案版本 1" in accepted.message

    # the same event id again from another inbound message: an exact duplicate
    again = ingest(("credit.raw.justice", None, penalty(builder, number, name,
                                                          event_id=first.event_id)[2]),
                   offset=2, row=3)
    assert isinstance(again, EnrichedEvent)
    out = person.apply_event(out.state, again, horizon_ms=HORIZON)
    assert out.result == person.DUPLICATE_EXACT
    exact = decode(receipts.duplicate(again, exact=True))
    assert (exact.outcome, exact.reason, exact.version, exact.offset) == (
        "duplicate", "DUPLICATE_EXACT", None, 2)
    content = decode(receipts.duplicate(again, exact=False))
    assert content.reason == "DUPLICATE_CONTENT" and "内容重复" in content.message

    retract = ingest(penalty(builder, number, name, record_id="SFJ-TYPO", action="RETRACT"),
                     offset=3, row=4)
    assert isinstance(retract, EnrichedEvent)
    out = person.apply_event(out.state, retract, horizon_ms=HORIZON)
    assert out.result == person.DEAD_LETTER
    refused = decode(receipts.rejected_event(retract, out.dead_letter_reason or "",
                                             "record_id", retract.record_id))
    assert (refused.outcome, refused.reason, refused.field, refused.value) == (
        "rejected", "RETRACT_UNKNOWN_RECORD", "record_id", "SFJ-TYPO")
    assert refused.message == ("记录编号“SFJ-TYPO”："
                               "要撤销的记录在本单位已报送的记录中不存在，请核对记录编号")
    assert refused.source_row == 4


def test_a_rejected_identity_number_is_masked_in_the_receipt() -> None:
    builder = ScenarioBuilder("credit", SECRET, seed=4)
    number, name = builder.person()
    broken = number[:17] + ("0" if number[17] != "0" else "1")
    rejected = ingest(penalty(builder, broken, name), row=9)
    assert isinstance(rejected, Rejection)
    assert (rejected.code, rejected.field) == ("ID_CHECKSUM", "person.id_number")
    assert rejected.value == broken[:6] + "*" * 8 + broken[-4:]
    built = receipts.rejected_message(
        unit="justice", topic="credit.raw.justice", partition=0, offset=42, timestamp=STAMP,
        row=9, reason=rejected.code, event_id=rejected.event_id, record_id=rejected.record_id,
        field=rejected.field, value=rejected.value)
    assert broken.encode() not in built[0] + built[1]
    assert name.encode() not in built[1]
    receipt = decode(built)
    assert receipt.outcome == "rejected" and receipt.event_id and receipt.record_id == "SFJ-9"
    assert receipt.message.startswith("身份证号码“") and "校验位" in receipt.message
    # deciding the same message again (a batch read again after a crash): the same bytes
    again = ingest(penalty(builder, broken, name), row=9)
    assert isinstance(again, Rejection) and again.value == rejected.value


def test_an_undecodable_message_is_keyed_by_its_position() -> None:
    garbage = ingest(("credit.raw.edu", None, b"\x00\x01"))
    assert isinstance(garbage, Rejection) and garbage.event_id is None
    key, value = receipts.rejected_message(
        unit="edu", topic="credit.raw.edu", partition=1, offset=5, timestamp=STAMP, row=None,
        reason=garbage.code, event_id=None, record_id=None, field=None, value=None)
    assert key == receipt_key("", "credit.raw.edu", 1, 5) == b"credit.raw.edu@1:5"
    body = orjson.loads(value)
    assert body["event_id"] == "" and body["outcome"] == "rejected"
    assert list(body) == sorted(body)  # canonical: sorted keys, so replays are byte-identical


def test_the_row_header_is_read_only_when_it_is_a_number() -> None:
    assert row_of_headers([(ROW_HEADER, b"17")]) == 17
    assert row_of_headers([("other", b"1"), (ROW_HEADER, b"x1")]) is None
    assert row_of_headers(None) is None
    assert row_of_headers([(ROW_HEADER, b"9" * 12)]) is None
