"""A mixed inbound stream whose expected archives are known by construction.

Every group of the notice, records created, updated and retracted, exact duplicates (the same
bytes again), content duplicates (the same record and content under a new event id) and bad
events of known reason. The expected result is computed here from the scenario itself, not by
the bus's code.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from creditbus.catalog import Catalog, default_catalog
from creditbus.constants import CREDIT_EVENT
from creditbus.contract.schemas import tagged
from creditbus.contract.wire import Wire
from creditbus.identity import make_resident_id, person_key
from creditbus.topics import raw_topic

DIVISIONS = ("360702", "360703", "360704", "360722", "360781", "360733")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗钟曾谢邱"
GIVEN = "建华伟芳敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"


@dataclass
class RecordTruth:
    category: str
    versions: int = 0
    retracted: bool = False
    marker: str = ""


@dataclass
class Scenario:
    messages: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    records: dict[tuple[str, str, str], RecordTruth] = field(default_factory=dict)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    exact_duplicates: int = 0
    content_duplicates: int = 0
    valid_events: int = 0

    def expected_versions(self) -> dict[str, int]:
        versions: Counter[str] = Counter()
        for (pk, _unit, _rid), truth in self.records.items():
            versions[pk] += truth.versions
        return dict(versions)


def content_for(kind: str, marker: str, day: date, rng: random.Random) -> tuple[str, dict]:
    text = f"记录{marker}"
    if kind == "penalty":
        return tagged("Penalty", {
            "decision_number": f"赣罚〔2026〕{marker}号", "illegal_facts": f"违法事实{marker}",
            "legal_basis": "《中华人民共和国行政处罚法》", "penalty_types": ["警告", "罚款"],
            "penalty_content": f"警告并罚款{marker}", "fine_amount": Decimal("500.00"),
            "decision_date": day, "disclosure_until": None, "authority": "赣州市某局",
            "authority_uscc": None,
        })
    if kind == "assessment":
        return tagged("Assessment", {"year": 2025, "result": ("优秀", "称职")[len(marker) % 2],
                                     "assessor": text})
    if kind == "career":
        return tagged("CareerEntry", {"organisation": f"单位{marker}", "position": "职员",
                                      "start_date": day - timedelta(days=900), "end_date": None})
    if kind == "reward":
        return tagged("Reward", {"title": f"先进个人{marker}", "level": "市级",
                                 "issuer": "赣州市人民政府", "award_date": day})
    if kind == "complaint":
        return tagged("Complaint", {"received_date": day, "summary": text, "outcome": None,
                                    "substantiated": None})
    if kind == "training":
        return tagged("Training", {"course": f"继续教育{marker}", "provider": "培训中心",
                                   "hours": 8.0, "completed_date": day})
    if kind == "qualification":
        return tagged("Qualification", {
            "certificate_number": f"ZG{marker}", "qualification_name": "执业资格",
            "issuer": "主管部门", "issued_date": day, "valid_until": None, "status": "有效"})
    return tagged("Note", {"title": text, "detail": text, "event_date": day,
                           "attributes": {"marker": marker}})


class ScenarioBuilder:
    def __init__(self, prefix: str, secret: bytes, seed: int = 7,
                 catalog: Catalog | None = None) -> None:
        self.prefix = prefix
        self.secret = secret
        self.rng = random.Random(seed)
        self.catalog = catalog or default_catalog()
        self.wire = Wire()
        self.scenario = Scenario()
        self.now = datetime.now(UTC).replace(microsecond=0)
        self._seq = 0

    # -- building blocks ------------------------------------------------------------------------

    def person(self) -> tuple[str, str]:
        self._seq += 1
        birth = date(1960, 1, 1) + timedelta(days=self.rng.randrange(0, 15000))
        number = make_resident_id(self.rng.choice(DIVISIONS), birth, self._seq % 999 + 1)
        name = self.rng.choice(SURNAMES) + "".join(self.rng.sample(GIVEN, 2))
        return number, name

    def notice_groups(self) -> list[str]:
        return [g.code for g in self.catalog.groups if g.notice_item is not None]

    def unit_for(self, group: str) -> str:
        units = [u for u in self.catalog.responsible_units(group) if u.kind == "city_unit"]
        return units[0].code

    def event(self, *, unit: str, group: str, category: str, record_id: str, id_number: str,
              name: str, marker: str, action: str = "UPSERT", published: datetime | None = None,
              event_id: str | None = None, topic_unit: str | None = None,
              content_date: date | None = None) -> tuple[str, bytes | None, bytes]:
        cat = self.catalog.category(category)
        published = published or self.now
        day = content_date or (published - timedelta(days=5)).date()
        datum: dict[str, Any] = {
            "event_id": event_id or hashlib.sha256(uuid.uuid4().bytes).hexdigest(), "unit": unit,
            "published_at": published, "occurred_at": datetime.combine(
                day, datetime.min.time(), tzinfo=UTC),
            "action": action, "record_id": record_id,
            "person": {"id_number": id_number, "name": name, "organisation": None,
                       "organisation_uscc": None},
            "group": group, "category": category,
            "severity": "GENERAL" if cat.dishonesty else None, "domain": None,
            "source_ref": None,
            "content": None if action == "RETRACT" else content_for(
                cat.content_kind, marker, day, self.rng),
        }
        value = self.wire.encode(CREDIT_EVENT, datum)
        return raw_topic(self.prefix, topic_unit or unit), record_id.encode(), value

    def pk(self, id_number: str) -> str:
        return person_key(id_number, self.secret)

    # -- the mixed stream -----------------------------------------------------------------------

    def mixed(self, persons: int = 60, bad_fraction: float = 0.05,
              exact_fraction: float = 0.10, content_fraction: float = 0.10) -> Scenario:
        """Records for `persons` people across every group of the notice, then duplicates and
        bad events mixed in at the given fractions of the valid events."""
        s = self.scenario
        groups = self.notice_groups()
        valid: list[tuple[str, bytes | None, bytes]] = []
        redo: list[tuple[tuple[str, bytes | None, bytes], dict[str, Any]]] = []
        for i in range(persons):
            group = groups[i % len(groups)]
            unit = self.unit_for(group)
            number, name = self.person()
            pk = self.pk(number)
            categories = list(self.catalog.group(group).required_categories)
            for j in range(self.rng.randint(1, 4)):
                category = categories[(i + j) % len(categories)]
                rid = f"{unit}-{i}-{j}"
                truth = s.records.setdefault((pk, unit, rid), RecordTruth(category))
                marker = f"{i}.{j}.1"
                args = dict(unit=unit, group=group, category=category, record_id=rid,
                            id_number=number, name=name)
                msg = self.event(**args, marker=marker)
                valid.append(msg)
                truth.versions += 1
                truth.marker = marker
                redo.append((msg, dict(args, marker=marker)))
                roll = self.rng.random()
                if roll < 0.3:  # an update with changed content
                    marker = f"{i}.{j}.2"
                    valid.append(self.event(**args, marker=marker))
                    truth.versions += 1
                    truth.marker = marker
                    redo[-1] = (valid[-1], dict(args, marker=marker))
                elif roll < 0.45:  # a retraction
                    valid.append(self.event(**args, marker=marker, action="RETRACT"))
                    truth.versions += 1
                    truth.retracted = True
                    redo.pop()
        s.valid_events = len(valid)
        messages = list(valid)
        # Duplicates are appended after the originals they copy, so they always follow them.
        for _ in range(int(len(valid) * exact_fraction)):
            messages.append(self.rng.choice(valid))
            s.exact_duplicates += 1
        for _ in range(int(len(valid) * content_fraction)):
            _msg, args = self.rng.choice(redo)
            messages.append(self.event(**args))  # same record, same content, new event id
            s.content_duplicates += 1
        messages += self.bad_events(max(5, int(len(valid) * bad_fraction)))
        s.messages = messages
        return s

    def bad_events(self, count: int) -> list[tuple[str, bytes | None, bytes]]:
        s = self.scenario
        out = []
        kinds = ["bytes", "checksum", "responsibility", "topic", "retract"]
        for k in range(count):
            kind = kinds[k % len(kinds)]
            number, name = self.person()
            args = dict(unit="justice", group="lawyer", category="career",
                        record_id=f"bad-{k}", id_number=number, name=name, marker=f"b{k}")
            if kind == "bytes":
                out.append((raw_topic(self.prefix, "edu"), None,
                            b"\x7fnot avro at all " + bytes([k % 256])))
                s.dead_letter_reasons["WIRE_UNKNOWN_FRAMING"] += 1
            elif kind == "checksum":
                broken = number[:17] + ("0" if number[17] != "0" else "1")
                out.append(self.event(**dict(args, id_number=broken)))
                s.dead_letter_reasons["ID_CHECKSUM"] += 1
            elif kind == "responsibility":
                out.append(self.event(**dict(args, group="teacher")))
                s.dead_letter_reasons["UNIT_NOT_RESPONSIBLE"] += 1
            elif kind == "topic":
                out.append(self.event(**args, topic_unit="edu"))
                s.dead_letter_reasons["TOPIC_UNIT_MISMATCH"] += 1
            else:
                out.append(self.event(**dict(args, action="RETRACT")))
                s.dead_letter_reasons["RETRACT_UNKNOWN_RECORD"] += 1
        return out
