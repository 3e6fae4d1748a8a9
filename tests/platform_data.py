"""Realistic archive updates for the sink tests, made by the core itself.

Enriched events of many persons across the groups of the notice (records created, changed,
retracted and revived; disclosure expiries from maintenance ticks) are run through
`creditbus.archive.person.apply_event` / `apply_tick`, so the updates are real and correctly
hash-chained. The messages add duplicates as the streams produce them after a crash: the last
few updates of a person sent again (identical bytes), in order, before the next one.

The expected platform rows are computed here from the decoded updates (not through the sink's
own projection), in the canonical forms the database back ends return.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from creditbus.archive.disclosure import disclosure_window
from creditbus.archive.event import EnrichedEvent, MaintenanceTick
from creditbus.archive.person import apply_event, apply_tick
from creditbus.archive.state import PersonState
from creditbus.archive.timeutil import datetime_to_ms
from creditbus.archive.update import Update
from creditbus.catalog import default_catalog
from creditbus.contract.canonical import canonical_json, format_timestamp
from creditbus.contract.wire import Wire
from creditbus.identity import make_resident_id, parse_resident_id, person_key

ARCHIVE_UPDATE = "cn.gov.ganzhou.creditbus.ArchiveUpdate"
SECRET = b"test-secret"
DIVISIONS = ("360702", "360703", "360704", "360721", "360722", "360781", "360733")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗钟曾谢邱温廖"
GIVEN = "建华伟芳敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英志红"
HORIZON_MS = 30 * 86_400_000
BASE = datetime(2025, 1, 6, 1, 0, tzinfo=UTC)
_WIRE = Wire()


@dataclass
class Person:
    key: str
    masked_id: str
    name: str
    birth_date: str
    sex: str
    division: str
    group: str
    unit: str
    records: dict[str, bool] = field(default_factory=dict)  # record id -> retracted


@dataclass
class UpdateStream:
    updates: list[dict[str, Any]]  # every distinct update, each person's in version order
    messages: list[tuple[bytes, bytes]]  # (key, value) in production order, duplicates included
    duplicates: int

    def topic_messages(self, topic: str) -> list[tuple[str, bytes, bytes]]:
        return [(topic, k, v) for k, v in self.messages]


def encode(update: dict[str, Any]) -> bytes:
    return _WIRE.encode(ARCHIVE_UPDATE, update)


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.catalog = default_catalog()
        self.groups = [g for g in self.catalog.groups if g.notice_item is not None]
        self.archives: dict[str, PersonState] = {}
        self.clock = datetime_to_ms(BASE)
        self.seq = 0
        self.offset = 0

    def person(self, index: int) -> Person:
        rng = self.rng
        birth = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 15000))
        number = make_resident_id(rng.choice(DIVISIONS), birth, index % 997 + 1)
        resident = parse_resident_id(number)
        group = self.groups[index % len(self.groups)]
        units = [u for u in self.catalog.responsible_units(group.code)
                 if u.kind == "city_unit"] or list(self.catalog.responsible_units(group.code))
        name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2))))
        return Person(person_key(resident.number, SECRET), resident.masked, name,
                      resident.birth_date.isoformat(), resident.sex, resident.division_code,
                      group.code, units[0].code)

    def event(self, p: Person, record_id: str, action: str) -> EnrichedEvent:
        rng = self.rng
        self.seq += 1
        self.clock += rng.randrange(1_000, 120_000)
        group = self.catalog.group(p.group)
        category = self.catalog.category(rng.choice(group.required_categories))
        occurred = self.clock - rng.randrange(1, 400) * 86_400_000
        severity = start = end = None
        if category.dishonesty:
            severity = rng.choice(("minor", "general", "serious"))
            level = self.catalog.severity(severity)
            decided = datetime.fromtimestamp(occurred / 1000, UTC).date()
            window = disclosure_window(dishonesty=True, min_months=level.disclosure_min_months,
                                       max_months=level.disclosure_max_months,
                                       decision_date=decided, unit_deadline=None)
            if window:
                start, end = window.start.isoformat(), window.end.isoformat()
        content = canonical_json({category.content_kind.title(): {
            "title": f"{group.name_zh}{category.name_zh}第{self.seq}号",
            "detail": "经核实，" + "情况属实。" * rng.randrange(1, 6),
            "amount": f"{rng.randrange(0, 50000)}.00"}}).decode()
        return EnrichedEvent(
            event_id=f"{self.seq:08d}{rng.getrandbits(96):024x}", unit=p.unit, action=action,
            record_id=record_id, group=p.group, category=category.code, severity=severity,
            domain=group.default_domain, published_at=self.clock, occurred_at=occurred,
            person_key=p.key, masked_id=p.masked_id, name=p.name, birth_date=p.birth_date,
            sex=p.sex, division_code=p.division, content_json=content,
            content_hash=f"{self.seq:064x}", disclosure_start=start, disclosure_end=end,
            source_topic="t.internal.by-person", source_partition=0, source_offset=self.seq)

    def step(self, p: Person) -> list[dict[str, Any]]:
        """One change to `p`: a new record, a changed one, a retraction or a revival."""
        rng = self.rng
        live = [r for r, retracted in p.records.items() if not retracted]
        gone = [r for r, retracted in p.records.items() if retracted]
        roll = rng.random()
        if not p.records or (roll < 0.35 and len(p.records) < 8):
            rid = f"{p.unit.upper()}-{self.seq + 1:07d}"
            action = "UPSERT"
        elif roll < 0.80 and live:
            rid, action = rng.choice(live), "UPSERT"
        elif roll < 0.93 and live:
            rid, action = rng.choice(live), "RETRACT"
        elif gone:
            rid, action = rng.choice(gone), "UPSERT"
        else:
            rid, action = rng.choice(live), "UPSERT"
        if rng.random() < 0.02:  # a disclosure sweep instead
            return self.tick(p)
        self.offset += 1
        out = apply_event(self.archives.get(p.key), self.event(p, rid, action),
                          horizon_ms=HORIZON_MS)
        if out.state is not None:
            self.archives[p.key] = out.state
        if out.updates:
            p.records[rid] = action == "RETRACT"
        return [decoded(u) for u in out.updates]

    def tick(self, p: Person) -> list[dict[str, Any]]:
        archive = self.archives.get(p.key)
        if archive is None:
            return []
        self.offset += 1
        as_of = datetime.fromtimestamp(self.clock / 1000, UTC).date() + timedelta(days=400)
        out = apply_tick(archive, MaintenanceTick(p.key, as_of.isoformat()), partition=0,
                         offset=self.offset, horizon_ms=HORIZON_MS)
        if out.state is not None:
            self.archives[p.key] = out.state
        return [decoded(u) for u in out.updates]


def decoded(update: Update) -> dict[str, Any]:
    """The update as a consumer decodes it from the wire (aware datetimes, dates)."""
    return _WIRE.decode(_WIRE.encode(ARCHIVE_UPDATE, update.datum)).datum


def generate(persons: int, updates: int, seed: int = 1, dup_rate: float = 0.03,
             ) -> UpdateStream:
    """At least `updates` distinct updates of `persons` persons, interleaved, plus replays."""
    gen = Generator(seed)
    people = [gen.person(i) for i in range(persons)]
    produced: list[dict[str, Any]] = []
    while len(produced) < updates:
        produced += gen.step(people[gen.rng.randrange(persons)])
    produced = produced[:updates]  # per person still a prefix of its versions
    return with_replays(produced, gen.rng, dup_rate)


def with_replays(updates: list[dict[str, Any]], rng: random.Random, dup_rate: float,
                 ) -> UpdateStream:
    sent: dict[str, list[bytes]] = {}
    messages: list[tuple[bytes, bytes]] = []
    duplicates = 0
    for update in updates:
        key = update["person_key"]
        value = encode(update)
        history = sent.setdefault(key, [])
        history.append(value)
        messages.append((key.encode(), value))
        if rng.random() < dup_rate:
            again = history[-rng.randint(1, 3):]
            messages += [(key.encode(), v) for v in again]
            duplicates += len(again)
    return UpdateStream(updates, messages, duplicates)


# -- what the platform should hold ---------------------------------------------------------------

def _ts(value: datetime) -> str:
    return format_timestamp(value)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def expected_rows(updates: Iterable[dict[str, Any]],
                  ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str, str], dict[str, Any]]]:
    """cb_person rows by person key and cb_record rows by key, after applying `updates`."""
    persons: dict[str, dict[str, Any]] = {}
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    for u in updates:
        pk = u["person_key"]
        if pk in persons and persons[pk]["archive_version"] >= u["version"]:
            continue
        persons[pk] = {
            "person_key": pk, "masked_id": u["masked_id"], "name": u["name"],
            "birth_date": u["birth_date"].isoformat(), "sex": u["sex"],
            "division_code": u["division_code"],
            "groups": canonical_json(u["groups"]).decode(), "archive_version": u["version"],
            "updated_at": _ts(u["updated_at"]), "chain_head": u["hash"],
        }
        r = u["change"]["record"]
        records[(pk, r["unit"], r["record_id"])] = {
            "person_key": pk, "unit": r["unit"], "record_id": r["record_id"],
            "record_version": r["record_version"], "group_code": r["group"],
            "category": r["category"], "severity": r["severity"], "domain": r["domain"],
            "occurred_at": _ts(r["occurred_at"]), "published_at": _ts(r["published_at"]),
            "disclosure_start": _day(r["disclosure_start"]),
            "disclosure_end": _day(r["disclosure_end"]), "is_public": r["public"],
            "is_retracted": r["retracted"], "content_json": r["content_json"],
            "person_version": u["version"],
            **_repair_columns(r.get("repair")),
        }
    return persons, records


def _repair_columns(repair: dict[str, Any] | None) -> dict[str, Any]:
    """The cb_record columns of a record's repair decision (migration 2)."""
    return {"is_repaired": repair is not None,
            "repair_decision_number": repair["decision_number"] if repair else None,
            "repair_date": _day(repair["decision_date"]) if repair else None,
            "repair_authority": repair["authority"] if repair else None}
