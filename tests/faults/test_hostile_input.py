"""Hostile input: at least 10,000 generated bad messages interleaved with valid events.

Every bad message is built to fail for one known reason (by construction, not by asking the
bus's code): random bytes, truncated Avro, wrong fingerprints, Confluent framing with an
unknown schema id, another record type, identifiers that fail their checks, future dates,
unknown units, groups and categories, a unit publishing for a group it is not responsible
for, oversized fields and events, control and invisible characters in names, retractions of
records that do not exist. Valid events carry unicode edge cases in names (emoji, combining
characters, astral-plane CJK, right-to-left scripts, the 64-character limit) that must pass.

The worker must stay alive with no crash in its log, the dead-letter topic must hold every bad
message once with the generated reason (count per reason equal), every valid event must reach
the archive (updates topic and platform database), and no clear identity number may appear
past the inbound topics.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from creditbus.contract.schemas import SchemaStore, tagged
from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.identity import make_resident_id
from creditbus.identity.uscc import make_uscc
from creditbus.topics import raw_topic, unit_of_raw_topic, updates_topic
from tests.bus import produce, read_topic, read_topics
from tests.faults.conftest import Report
from tests.faults.harness import FaultBus, assert_no_problems, dump_platform

BAD = int(os.environ.get("CREDITBUS_FAULTS_HOSTILE", "10000"))
VALID = max(200, BAD // 10)
SEED = int(os.environ.get("CREDITBUS_FAULTS_SEED", "20260"))
CREDIT_EVENT = "cn.gov.ganzhou.creditbus.CreditEvent"
DIVISIONS = ("360702", "360703", "360721", "360781", "110101", "440305")

VALID_NAMES = (
    "王建华", "欧阳娜娜", "阿依古丽·买买提", "买买提阿不都热合曼", "阿卜杜热合曼·买买提明",
    "李😀明", "张🌸", "𠀀𠀁𠀂", "𪚥龘", "Zoe\u0308 Müller", "José García", "محمد علي",
    "דוד כהן", "Ὀδυσσεύς", "ᠪᠠᠶᠠᠷ", "བཀྲ་ཤིས", "Nguyễn Văn A", "O'Brien-Smith",
    "Ab", "王" * 64, "a" * 64, "🙂" * 64, "e\u0301" * 32,
)
"""Names that must pass: emoji (no joiners), combining characters, astral-plane CJK,
right-to-left scripts (the letters, not bidi controls), exactly 64 characters, and names of
24 to 28 UTF-8 bytes (nine Chinese characters), whose Avro length byte is an ASCII digit.
Bad events carry them too."""

BAD_NAMES = (
    "王\u200f建华",  # right-to-left mark
    "\u202e华建王",  # right-to-left override
    "王\x00华",  # NUL
    "👨\u200d👩\u200d👧",  # zero-width joiner
    "王\u200b华",  # zero-width space
    "\ufeff王华",  # byte order mark
    "王\u2028华",  # line separator
    "王\t华",  # tab (allowed in free text, not in a name)
    "王\x7f华",  # DEL
    "   ",  # blank
)


@dataclass
class Hostile:
    messages: list[tuple[str, bytes | None, bytes | None]] = field(default_factory=list)
    expected: Counter[str] = field(default_factory=Counter)  # reason -> bad messages
    valid: dict[str, str] = field(default_factory=dict)  # event id -> name
    clear_ids: set[str] = field(default_factory=set)  # every identity-number-like string sent


class HostileGenerator:
    def __init__(self, prefix: str, seed: int) -> None:
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.wire = Wire()
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.out = Hostile()
        self.seq = 0
        store = SchemaStore()
        self.known_fps = {sv.fingerprint for n in store.names() for sv in store.versions(n)}

    # -- building blocks ------------------------------------------------------------------------

    def number(self) -> str:
        self.seq += 1
        birth = date(1950, 1, 1) + timedelta(days=self.rng.randrange(0, 20000))
        number = make_resident_id(self.rng.choice(DIVISIONS), birth, self.seq % 1000)
        self.out.clear_ids.add(number)
        return number

    def datum(self, *, unit: str = "justice", group: str = "lawyer",
              category: str = "career", action: str = "UPSERT", name: str | None = None,
              number: str | None = None, record_id: str | None = None,
              content: Any = None) -> dict[str, Any]:
        self.seq += 1
        day = (self.now - timedelta(days=self.rng.randrange(5, 400))).date()
        if content is None and action == "UPSERT":
            content = tagged("CareerEntry", {
                "organisation": f"律师事务所{self.seq}", "position": "律师",
                "start_date": day - timedelta(days=30), "end_date": None})
        return {
            "event_id": hashlib.sha256(f"hostile-{self.seq}".encode()).hexdigest(),
            "unit": unit, "published_at": self.now,
            "occurred_at": datetime.combine(day, datetime.min.time(), tzinfo=UTC),
            "action": action, "record_id": record_id or f"H-{self.seq}",
            "person": {"id_number": number or self.number(),
                       "name": name if name is not None else self.rng.choice(VALID_NAMES),
                       "organisation": None, "organisation_uscc": None},
            "group": group, "category": category, "severity": None, "domain": None,
            "source_ref": None, "content": content,
        }

    def encode(self, datum: dict[str, Any]) -> bytes:
        return self.wire.encode(CREDIT_EVENT, datum)

    def add(self, reason: str | None, value: bytes | None, unit: str = "justice",
            key: bytes | None = None) -> None:
        self.out.messages.append((raw_topic(self.prefix, unit), key, value))
        if reason is not None:
            self.out.expected[reason] += 1

    def body(self) -> bytes:
        """A valid CreditEvent's Avro body (no framing header)."""
        return self.encode(self.datum())[10:]

    # -- the kinds of bad message, each (reason, maker) ------------------------------------------

    def random_bytes(self) -> None:
        data = bytearray(self.rng.randbytes(self.rng.randint(1, 400)))
        while data[0] in (0x00, 0xC3):
            data[0] = self.rng.randrange(256)
        self.add("WIRE_UNKNOWN_FRAMING", bytes(data), key=b"junk")

    def empty(self) -> None:
        self.add("WIRE_EMPTY", self.rng.choice((b"", None)))

    def truncated(self) -> None:
        value = self.encode(self.datum())
        self.add("WIRE_TRUNCATED", value[:self.rng.randrange(1, len(value))])

    def wrong_fingerprint(self) -> None:
        fp = self.rng.randbytes(8)
        assert fp not in self.known_fps
        self.add("WIRE_UNKNOWN_FINGERPRINT", b"\xc3\x01" + fp + self.body())

    def unknown_schema_id(self) -> None:
        schema_id = self.rng.randrange(1, 2**31)
        self.add("WIRE_UNKNOWN_SCHEMA_ID", struct.pack(">bI", 0, schema_id) + self.body())

    def other_record(self) -> None:
        from tests.platform_data import encode, generate

        if not hasattr(self, "_updates"):
            self._updates = [encode(u) for u in generate(3, 10, seed=1).updates]
        self.add("UNEXPECTED_SCHEMA", self.rng.choice(self._updates))

    def id_checksum(self) -> None:
        number = self.number()
        broken = number[:17] + ("0" if number[17] != "0" else "1")
        self.out.clear_ids.add(broken)
        self.add("ID_CHECKSUM", self.encode(self.datum(number=broken)))

    def id_birth_date(self) -> None:
        birth = self.rng.choice(("19990230", "19991301", "20991231", "18991231", "19900000"))
        number = make_resident_id("360702", birth, self.rng.randrange(1000))
        self.out.clear_ids.add(number)
        self.add("ID_BIRTH_DATE", self.encode(self.datum(number=number)))

    def id_legacy(self) -> None:
        number = self.number()
        legacy = number[:6] + number[8:17]  # 15 digits: two-digit year, no check character
        self.out.clear_ids.add(legacy)
        self.add("ID_LEGACY_15", self.encode(self.datum(number=legacy)))

    def id_charset(self) -> None:
        number = self.number()
        self.add("ID_CHARSET", self.encode(self.datum(number=number[:17] + "A")))

    def id_length(self) -> None:
        self.add("ID_LENGTH", self.encode(self.datum(number=self.number()[:17])))

    def bad_uscc(self) -> None:
        code = make_uscc(f"{self.rng.randrange(10**8):08d}X")
        broken = code[:17] + ("0" if code[17] != "0" else "1")
        datum = self.datum()
        datum["person"].update(organisation="某律师事务所", organisation_uscc=broken)
        self.add("USCC_CHECKSUM", self.encode(datum))

    def future_date(self) -> None:
        datum = self.datum()
        datum["occurred_at"] = self.now + timedelta(days=self.rng.randint(2, 3000))
        self.add("FUTURE_DATE", self.encode(datum))

    def unknown_unit(self) -> None:
        self.add("UNKNOWN_UNIT", self.encode(self.datum(unit=f"ghost_{self.rng.randrange(99)}")))

    def unknown_group(self) -> None:
        self.add("UNKNOWN_GROUP", self.encode(self.datum(group="astronaut")))

    def not_responsible(self) -> None:
        group = self.rng.choice(("teacher", "physician", "tax_agent", "tour_guide"))
        self.add("UNIT_NOT_RESPONSIBLE", self.encode(self.datum(group=group)))

    def topic_mismatch(self) -> None:
        self.add("TOPIC_UNIT_MISMATCH", self.encode(self.datum()), unit="edu")

    def category_not_for_group(self) -> None:
        self.add("CATEGORY_NOT_FOR_GROUP", self.encode(self.datum(category="fire_patrol")))

    def unknown_category(self) -> None:
        self.add("UNKNOWN_CATEGORY", self.encode(self.datum(category="gossip")))

    def content_mismatch(self) -> None:
        reward = tagged("Reward", {"title": "先进", "level": None, "issuer": "市政府",
                                   "award_date": (self.now - timedelta(days=9)).date()})
        self.add("CONTENT_MISMATCH", self.encode(self.datum(content=reward)))

    def oversized_field(self) -> None:
        which = self.rng.randrange(3)
        if which == 0:
            datum = self.datum(name="王" * 65)
        elif which == 1:
            datum = self.datum(record_id="R" * 129)
        else:
            datum = self.datum(category="basic_info", content=self.note(detail="详" * 4001))
        self.add("FIELD_TOO_LONG", self.encode(datum))

    def oversized_event(self) -> None:
        attributes = {f"k{i}": "x" * 4000 for i in range(20)}  # each within its limit
        datum = self.datum(category="basic_info", content=self.note(attributes=attributes))
        self.add("FIELD_TOO_LONG", self.encode(datum))

    def note(self, detail: str = "情况说明", attributes: dict[str, str] | None = None) -> Any:
        return tagged("Note", {"title": "基本信息", "detail": detail,
                               "event_date": (self.now - timedelta(days=9)).date(),
                               "attributes": attributes or {}})

    def bad_name(self) -> None:
        self.add("BAD_NAME", self.encode(self.datum(name=self.rng.choice(BAD_NAMES))))

    def bad_text(self) -> None:
        datum = self.datum(category="basic_info", content=self.note(detail="说明\x07\x1b[31m"))
        self.add("BAD_TEXT", self.encode(datum))

    def bad_event_id(self) -> None:
        datum = self.datum()
        datum["event_id"] = datum["event_id"].upper()
        self.add("BAD_EVENT_ID", self.encode(datum))

    def retract_unknown(self) -> None:
        datum = self.datum(action="RETRACT", record_id=f"NEVER-{self.seq}")
        self.add("RETRACT_UNKNOWN_RECORD", self.encode(datum))

    KINDS = (
        ("random_bytes", 12), ("empty", 1), ("truncated", 12), ("wrong_fingerprint", 6),
        ("unknown_schema_id", 6), ("other_record", 2), ("id_checksum", 6), ("id_birth_date", 4),
        ("id_legacy", 3), ("id_charset", 2), ("id_length", 2), ("bad_uscc", 3),
        ("future_date", 4), ("unknown_unit", 4), ("unknown_group", 3), ("not_responsible", 4),
        ("topic_mismatch", 3), ("category_not_for_group", 2), ("unknown_category", 2),
        ("content_mismatch", 2), ("oversized_field", 4), ("oversized_event", 1),
        ("bad_name", 6), ("bad_text", 2), ("bad_event_id", 2), ("retract_unknown", 4),
    )

    def valid_event(self) -> None:
        name = self.rng.choice(VALID_NAMES)
        datum = self.datum(name=name)
        self.out.valid[datum["event_id"]] = name
        self.add(None, self.encode(datum), key=datum["record_id"].encode())

    def generate(self, bad: int, valid: int) -> Hostile:
        names = [k for k, _ in self.KINDS]
        weights = [w for _, w in self.KINDS]
        for name in names:  # every kind at least once
            getattr(self, name)()
        for _ in range(bad - len(names)):
            getattr(self, self.rng.choices(names, weights)[0])()
        for _ in range(valid):
            self.valid_event()
        self.rng.shuffle(self.out.messages)
        return self.out


_DIGIT_RUN = re.compile(rb"[0-9]{15,}[0-9Xx]*")


def clear_ids_in(data: bytes | None, clear: set[str]) -> set[str]:
    """The clear identity numbers of `clear` that occur in `data`."""
    found: set[str] = set()
    for run in _DIGIT_RUN.findall(data or b""):
        text = run.decode("ascii")
        for width in (15, 18):
            for i in range(len(text) - width + 1):
                if text[i:i + width] in clear:
                    found.add(text[i:i + width])
    return found


@pytest.mark.timeout(600)
def test_hostile_input_is_dead_lettered_with_its_reason_and_never_stops_the_worker(
    kafka_broker: Any, topic_prefix: str, tmp_path: Path, faults_report: Report,
) -> None:
    started = time.monotonic()
    bootstrap = kafka_broker.bootstrap
    bus = FaultBus.make(bootstrap, topic_prefix, tmp_path / "bus")
    hostile = HostileGenerator(topic_prefix, SEED).generate(BAD, VALID)
    bad_in = sum(hostile.expected.values())
    problems: list[str] = []
    bus.create_topics(raw_partitions=4)
    watcher = bus.watch()
    try:
        worker = bus.worker().start()
        produce(bootstrap, hostile.messages)
        if not watcher.wait(len(hostile.valid), bad_in, 420):
            problems.append("the output did not complete in 420 s")
        problems += bus.commit_problem(30)
        alive = worker.alive()
        bus.run_sink_until_idle()
        bus.stop_all()
        dead = list(watcher.dead.values())
        update_messages = read_topic(bootstrap, updates_topic(topic_prefix))
        # Everything past the inbound topics: by-person, updates, dead letters, changelogs.
        downstream = read_topics(bootstrap, [topic for topic in bus.topic_names()
                                             if unit_of_raw_topic(topic_prefix, topic) is None])
        logs = bus.logs()
        state = dump_platform(bus.db_path)
        verified = bus.verify()
    finally:
        watcher.close()
        bus.stop_all()
        bus.delete_topics()

    wire = Wire()
    updates = [wire.decode(m.value()).datum for m in update_messages]
    by_source = {d.source: d for d in dead}  # distinct: dead letters are at-least-once
    reasons = Counter(d.reason for d in by_source.values())
    applied = Counter(u["event_id"] for u in updates if u["event_id"] in hostile.valid)
    archived = sum(1 for e in hostile.valid if e in state.event_ids)
    missing_dead = sum((hostile.expected - reasons).values())
    lost = (len(hostile.valid) - archived) + missing_dead
    print(f"hostile: {bad_in} bad + {len(hostile.valid)} valid in {len(hostile.messages)} "
          f"messages, {time.monotonic() - started:.0f} s; dead letters by reason: "
          f"{dict(sorted(reasons.items()))}", flush=True)
    faults_report("hostile-input", events_in=len(hostile.messages), archived=archived,
                  dead_lettered=len(by_source), lost=lost,
                  detail=f"expected {hostile.expected - reasons} more dead letters, "
                         f"{len(hostile.valid) - archived} valid events not archived")

    # The worker never stopped and never crashed.
    assert alive, bus.logs()[-3000:]
    problems += bus.crashes_in_logs()
    assert_no_problems(problems)
    # Bad in = dead letters out, each with the reason it was made for, headers complete.
    assert reasons == hostile.expected, (reasons - hostile.expected, hostile.expected - reasons)
    assert len(by_source) == bad_in
    for d in by_source.values():
        assert d.source[0].startswith(topic_prefix + ".raw.") and d.source[2] >= 0
        assert d.headers.get("message") and d.stage in ("ingest", "archive")
    # Every valid event archived once, with its name exactly as published.
    assert set(applied) == set(hostile.valid) and set(applied.values()) == {1}
    names = {u["event_id"]: u["name"] for u in updates}
    assert all(names[e] == name for e, name in hostile.valid.items())
    assert len(state.log) == len(hostile.valid) and archived == len(hostile.valid)
    assert verified.returncode == 0, verified.stdout[-2000:]
    # No clear identity number past the inbound topics.
    leaks: dict[str, set[str]] = {}
    for topic, msgs in downstream.items():
        for msg in msgs:
            parts = [msg.key(), msg.value(), *(v for _k, v in msg.headers() or [])]
            found = set().union(*(clear_ids_in(part, hostile.clear_ids) for part in parts))
            if found:
                reason = header_dict(msg.headers()).get("reason")
                where = topic[len(topic_prefix):] + (f" ({reason})" if reason else "")
                leaks.setdefault(where, set()).update(found)
    if clear_ids_in(logs.encode(), hostile.clear_ids):
        leaks["worker and sink logs"] = clear_ids_in(logs.encode(), hostile.clear_ids)
    for rows, what in ((state.persons, "cb_person"), (state.records, "cb_record"),
                       (state.log, "cb_update_log")):
        for row in rows:
            found = clear_ids_in(repr(row).encode(), hostile.clear_ids)
            if found:
                leaks.setdefault(what, set()).update(found)
    assert not leaks, "clear identity numbers past the inbound topics: " + ", ".join(
        f"{len(ids)} in {where}" for where, ids in sorted(leaks.items()))


@pytest.mark.parametrize("name", ["买买提阿不都热合曼", "Maria Fernanda Lopez Garcia"],
                         ids=["nine-hanzi", "long-latin"])
def test_dead_letter_bytes_never_hold_a_clear_identity_number(name: str) -> None:
    """Minimal reproduction (no broker): the ingest agent dead-letters the original bytes with
    every identity number masked in place (`creditbus.deadletter.mask_ids_in_bytes`). In the
    Avro body the number is followed by the length of the name (zig-zag varint 2n); for a name
    of 24 to 28 UTF-8 bytes (nine Chinese characters, a long Latin name) that byte is an ASCII
    digit, the pattern's `(?![0-9Xx])` look-ahead fails, and the clear number is kept."""
    from creditbus.deadletter import mask_ids_in_bytes

    generator = HostileGenerator("p", 1)
    number = generator.number()
    value = generator.encode(generator.datum(name=name, number=number, group="teacher"))
    assert 24 <= len(name.encode()) <= 28
    assert number.encode() in value
    assert number.encode() not in mask_ids_in_bytes(value)
