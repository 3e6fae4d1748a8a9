"""The update is built once: its carried text is the chain's reference text, byte for byte."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from creditbus.archive.chain import hashed_bytes, link_hash
from creditbus.archive.timeutil import ms_to_datetime
from creditbus.archive.update import ms_text
from creditbus.contract.canonical import format_timestamp
from creditbus.contract.wire import Wire
from tests.platform_data import ARCHIVE_UPDATE, Generator

WIRE = Wire()


def test_the_carried_text_is_the_reference_text_of_the_decoded_update() -> None:
    gen = Generator(11)
    people = [gen.person(i) for i in range(40)]
    checked = 0
    seen_kinds: set[str] = set()
    for step in range(1500):
        person = people[step % len(people)]
        state = gen.archives.get(person.key)
        before = state.version if state else 0
        for datum in gen.step(person):  # decoded from the wire, as a consumer sees it
            body = datum["hashed_body"].encode()
            assert hashed_bytes(datum) == body
            assert link_hash(datum["previous_hash"], body) == datum["hash"]
            assert datum["version"] > before
            seen_kinds.add(datum["change"]["kind"])
            checked += 1
    assert checked > 1000 and len(seen_kinds) == 3, (checked, seen_kinds)


_TS = {"type": "record", "name": "T",
       "fields": [{"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_ms_text_is_the_canonical_form_of_what_fastavro_decodes(ms: int) -> None:
    import io

    from fastavro import schemaless_reader, schemaless_writer

    buf = io.BytesIO()
    schemaless_writer(buf, _TS, {"t": ms})
    buf.seek(0)
    decoded = schemaless_reader(buf, _TS, None)["t"]
    assert ms_text(ms) == format_timestamp(decoded)


def test_the_datum_carries_ms_and_iso_dates_and_decodes_to_the_same_instants() -> None:
    from creditbus.archive.person import apply_event

    gen = Generator(3)
    person = gen.person(0)
    [update] = apply_event(None, gen.event(person, "X-1", "UPSERT"), horizon_ms=10**12).updates
    record = update.datum["change"]["record"]
    assert isinstance(update.datum["updated_at"], int) and isinstance(record["occurred_at"], int)
    assert isinstance(update.datum["birth_date"], str)
    decoded = WIRE.decode(WIRE.encode(ARCHIVE_UPDATE, update.datum)).datum
    assert decoded["updated_at"] == ms_to_datetime(update.datum["updated_at"])
    assert decoded["change"]["record"]["occurred_at"] == ms_to_datetime(record["occurred_at"])
    assert decoded["birth_date"].isoformat() == update.datum["birth_date"]
