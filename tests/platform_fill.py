"""A small platform database of known content, for the progress report and the query service.

The records are run through the core's archive logic (`creditbus.archive.person.apply_event`),
so the updates are real and hash-chained, and written by the sink's own writer
(`creditbus.connectors.platform.sink.PlatformWriter`) into a real SQLite file: the tables hold
exactly what the sink would write. Dates are relative to today (Beijing), so that "in the public
window today" stays true whenever the tests run. Expected values are derived from the specs
below, never from the code under test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from creditbus.connectors.platform.sink import PlatformWriter
from creditbus.connectors.updates import Incoming

from creditbus.archive.event import EnrichedEvent
from creditbus.archive.person import apply_event
from creditbus.archive.timeutil import datetime_to_ms
from creditbus.archive.update import Update
from creditbus.catalog import Catalog, default_catalog
from creditbus.constants import ARCHIVE_UPDATE
from creditbus.constants import CHINA_TZ as BEIJING
from creditbus.contract.canonical import canonical_json
from creditbus.contract.wire import Wire
from creditbus.identity import make_resident_id, mask_id, parse_resident_id, person_key
from creditbus.platformdb.db import open_db

SECRET = b"test-secret"  # = CREDITBUS_PERSON_KEY_SECRET of the `bus_env` fixture
TODAY = datetime.now(BEIJING).date()
CONTENT_TYPES = {"penalty": "Penalty", "assessment": "Assessment", "career": "CareerEntry",
                 "reward": "Reward", "complaint": "Complaint", "training": "Training",
                 "qualification": "Qualification", "note": "Note"}


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


def at(day: date, hour: int = 10) -> datetime:
    """A Beijing wall-clock time on `day`, as UTC."""
    return datetime.combine(day, time(hour), BEIJING).astimezone(UTC)


@dataclass(frozen=True)
class RecordSpec:
    unit: str
    record_id: str
    group: str
    category: str
    published: datetime
    severity: str | None = None
    window: tuple[date, date] | None = None  # disclosure [start, end)
    retracted_at: datetime | None = None
    detail: str = ""

    @property
    def retracted(self) -> bool:
        return self.retracted_at is not None

    def public_today(self) -> bool:
        """In the public view today: public at publication, window holds today, not retracted."""
        if self.window is None or self.retracted:
            return False
        start, end = self.window
        published_day = self.published.astimezone(BEIJING).date()
        return start <= published_day < end and start <= TODAY < end


@dataclass(frozen=True)
class PersonSpec:
    id_number: str
    name: str
    records: tuple[RecordSpec, ...]

    @property
    def key(self) -> str:
        return person_key(self.id_number, SECRET)

    @property
    def masked(self) -> str:
        return mask_id(self.id_number)


def _id(division: str, birth: date, seq: int) -> str:
    return make_resident_id(division, birth, seq)


LAWYER_ID = _id("360702", date(1980, 5, 17), 11)
LAWYER2_ID = _id("360703", date(1985, 2, 3), 22)
LEGAL_REP_ID = _id("360721", date(1975, 11, 30), 33)
TEACHER_ID = _id("360781", date(1990, 7, 8), 44)
CIVIL_SERVANT_ID = _id("360733", date(1968, 3, 14), 55)
UNKNOWN_ID = _id("360704", date(1992, 9, 9), 66)  # valid, but nobody has an archive


def persons() -> list[PersonSpec]:
    """Five persons; units with records: org, amr, emergency, justice, edu and the county
    zhanggong. Every other unit of the progress table published nothing."""
    return [
        PersonSpec(LAWYER_ID, "张明律", (
            RecordSpec("justice", "J-1", "lawyer", "basic_info", at(days(-200))),
            RecordSpec("justice", "J-2", "lawyer", "career", at(days(-190))),
            RecordSpec("justice", "J-3", "lawyer", "punishment", at(days(-20)), "general",
                       (days(-30), days(60)), detail="当事人另涉案外人" + LAWYER2_ID),
            # public when published, but its window has ended (no expiry tick yet)
            RecordSpec("justice", "J-4", "lawyer", "violation", at(days(-350)), "general",
                       (days(-400), days(-300))),
            RecordSpec("justice", "J-5", "lawyer", "violation", at(days(-100)), "general",
                       (days(-110), days(200)), retracted_at=at(days(-50))),
            RecordSpec("zhanggong", "Z-1", "lawyer", "reward", at(days(-80))),
        )),
        PersonSpec(LAWYER2_ID, "李法言", (
            RecordSpec("justice", "J-10", "lawyer", "basic_info", at(days(-150))),
        )),
        PersonSpec(LEGAL_REP_ID, "王企业", (
            RecordSpec("amr", "A-1", "legal_rep", "violation", at(days(-10)), "general",
                       (days(-15), days(180))),
            RecordSpec("emergency", "E-1", "legal_rep", "basic_info", at(days(-5))),
        )),
        PersonSpec(TEACHER_ID, "赵育人", (
            RecordSpec("edu", "ED-1", "teacher", "qualification", at(days(-60))),
            RecordSpec("edu", "ED-2", "teacher", "training", at(days(-3), 15)),
        )),
        PersonSpec(CIVIL_SERVANT_ID, "钱公仆", (
            RecordSpec("org", "O-1", "civil_servant", "annual_assessment", at(days(-30))),
        )),
    ]


@dataclass
class _Clock:
    seq: int = 0
    offset: int = 0
    events: list[tuple[datetime, int, EnrichedEvent]] = field(default_factory=list)


def _event(clock: _Clock, person: PersonSpec, rec: RecordSpec, action: str,
           when: datetime, catalog: Catalog) -> EnrichedEvent:
    clock.seq += 1
    resident = parse_resident_id(person.id_number)
    kind = catalog.category(rec.category).content_kind
    content = canonical_json({CONTENT_TYPES[kind]: {
        "title": f"{rec.record_id} {catalog.category(rec.category).name_zh}",
        "detail": rec.detail or "经核实，情况属实。"}}).decode()
    start, end = (rec.window[0].isoformat(), rec.window[1].isoformat()) if rec.window else (
        None, None)
    return EnrichedEvent(
        event_id=f"ev-{clock.seq:06d}", unit=rec.unit, action=action, record_id=rec.record_id,
        group=rec.group, category=rec.category, severity=rec.severity,
        domain=catalog.group(rec.group).default_domain,
        published_at=datetime_to_ms(when), occurred_at=datetime_to_ms(when - timedelta(days=3)),
        person_key=person.key, masked_id=resident.masked, name=person.name,
        birth_date=resident.birth_date.isoformat(), sex=resident.sex,
        division_code=resident.division_code, content_json=content,
        content_hash=f"{clock.seq:064x}", disclosure_start=start, disclosure_end=end,
        source_topic="t.internal.by-person", source_partition=0, source_offset=clock.seq)


def archive_updates(specs: Iterable[PersonSpec]) -> list[Update]:
    """The updates the archive agent would emit, each person's in version order."""
    catalog = default_catalog()
    clock = _Clock()
    updates: list[Update] = []
    for person in specs:
        events = [(rec.published, "UPSERT", rec) for rec in person.records]
        events += [(rec.retracted_at, "RETRACT", rec) for rec in person.records
                   if rec.retracted_at is not None]
        archive = None
        for when, action, rec in sorted(events, key=lambda e: e[0]):
            clock.offset += 1
            out = apply_event(archive, _event(clock, person, rec, action, when, catalog),
                              horizon_ms=10**13)
            assert out.updates, f"{rec.record_id} {action}: {out.result}"
            archive = out.state
            updates += out.updates
    return updates


class _NoDeadLetters:
    def send(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"unexpected dead letter: {args[1:3]}")

    def flush(self) -> None:
        pass


def fill_platform(url: str, specs: Iterable[PersonSpec] | None = None) -> list[PersonSpec]:
    """Create the schema at `url` and write the archives of `specs` (default: `persons()`)
    with the sink's writer; return the specs."""
    chosen = list(specs if specs is not None else persons())
    wire = Wire()
    messages = [Incoming("t.archive.updates", 0, i, u.datum["person_key"].encode(),
                         wire.encode(ARCHIVE_UPDATE, u.datum))
                for i, u in enumerate(archive_updates(chosen))]
    db = open_db(url)
    try:
        db.migrate()
        writer = PlatformWriter(db, wire, _NoDeadLetters(), "test-fill",  # type: ignore[arg-type]
                                "t.archive.updates")
        writer.write(writer.prepare(messages))
    finally:
        db.close()
    return chosen
