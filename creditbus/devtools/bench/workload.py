"""A synthetic inbound workload drawn from the catalog.

Every unit with groups publishes for its groups; persons have a Zipf-like number of records
(most one or two, a few dozens); about 10 % of the messages are exact duplicates (the same
bytes again, as producer retries make them) and 2 % are bad (random bytes or an identity
number with a wrong check digit). Messages are generated lazily, so a million of them never
sit in memory at once.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from creditbus.catalog import Catalog
from creditbus.constants import CREDIT_EVENT
from creditbus.contract.schemas import tagged
from creditbus.contract.wire import Wire
from creditbus.identity import make_resident_id
from creditbus.topics import raw_topic

DIVISIONS = ("360702", "360703", "360704", "360722", "360723", "360724", "360725", "360726",
             "360728", "360729", "360730", "360731", "360732", "360733", "360734", "360735",
             "360781", "360783")
NAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗钟曾谢邱赖温肖廖"


@dataclass
class WorkloadCounts:
    messages: int = 0
    valid: int = 0
    duplicates: int = 0
    bad: int = 0
    persons: int = 0


def zipf_records(rng: random.Random, cap: int = 40) -> int:
    """1 with probability ~0.6, 2 ~0.15, ... a heavy tail capped at `cap`."""
    return min(cap, int(rng.paretovariate(1.3)))


class Workload:
    def __init__(self, catalog: Catalog, prefix: str, seed: int = 1,
                 duplicate_fraction: float = 0.10, bad_fraction: float = 0.02) -> None:
        self.catalog = catalog
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.wire = Wire()
        self.dup = duplicate_fraction
        self.bad = bad_fraction
        self.counts = WorkloadCounts()
        self.pairs = [(u.code, g) for u in catalog.units for g in u.groups
                      if u.kind == "city_unit"]
        self.categories = {
            g.code: [c for c in g.required_categories] for g in catalog.groups}
        self.now = datetime.now(UTC).replace(microsecond=0)
        self._fresh_seq = 10_000_000

    def units(self) -> list[str]:
        return sorted({unit for unit, _ in self.pairs})

    def messages(self, events: int) -> Iterator[tuple[str, bytes, bytes]]:
        """About `events` messages in total (valid + duplicates + bad)."""
        rng = self.rng
        recent: list[tuple[str, bytes, bytes]] = []
        seq = 0
        while self.counts.messages < events:
            seq += 1
            self.counts.persons += 1
            unit, group = self.pairs[rng.randrange(len(self.pairs))]
            number = make_resident_id(rng.choice(DIVISIONS),
                                      date(1960, 1, 1) + timedelta(days=rng.randrange(16000)),
                                      seq % 999 + 1)
            name = rng.choice(NAMES) + rng.choice(NAMES) + rng.choice(NAMES)
            for j in range(zipf_records(rng)):
                if self.counts.messages >= events:
                    break
                category = self.categories[group][j % len(self.categories[group])]
                msg = self._event(unit, group, category, f"{unit}-{seq}-{j}", number, name)
                yield msg
                self.counts.messages += 1
                self.counts.valid += 1
                recent.append(msg)
                if len(recent) > 1000:
                    del recent[:500]
                roll = rng.random()
                if roll < self.dup:
                    yield rng.choice(recent)
                    self.counts.messages += 1
                    self.counts.duplicates += 1
                elif roll < self.dup + self.bad:
                    yield self._bad(unit, group, number, name, seq)
                    self.counts.messages += 1
                    self.counts.bad += 1

    def fresh_messages(self) -> Iterator[tuple[str, bytes, bytes]]:
        """Endless valid events of new persons, each published at the moment it is made.

        Every person is new (a birth date and order code of its own, numbered on from the last
        call), so no event is a content duplicate of an earlier one: each must become exactly
        one platform row.
        """
        rng = self.rng
        while True:
            self._fresh_seq += 1
            seq = self._fresh_seq
            unit, group = self.pairs[rng.randrange(len(self.pairs))]
            # born before 1960, where the backfill's persons begin
            born = date(1930, 1, 1) + timedelta(days=(seq // 999) % 10_000)
            number = make_resident_id(rng.choice(DIVISIONS), born, seq % 999 + 1)
            self.now = datetime.now(UTC)
            category = self.categories[group][seq % len(self.categories[group])]
            yield self._event(unit, group, category, f"{unit}-live-{seq}", number, "测试员")

    def _event(self, unit: str, group: str, category: str, record_id: str, number: str,
               name: str) -> tuple[str, bytes, bytes]:
        cat = self.catalog.category(category)
        occurred = self.now - timedelta(days=self.rng.randrange(1, 300))
        datum: dict[str, Any] = {
            "event_id": hashlib.sha256(f"{record_id}|{number[-6:]}".encode()).hexdigest(),
            "unit": unit, "published_at": self.now, "occurred_at": occurred,
            "action": "UPSERT", "record_id": record_id,
            "person": {"id_number": number, "name": name, "organisation": None,
                       "organisation_uscc": None},
            "group": group, "category": category,
            "severity": "GENERAL" if cat.dishonesty else None, "domain": None,
            "source_ref": None, "content": _content(cat.content_kind, record_id,
                                                    occurred.date()),
        }
        return raw_topic(self.prefix, unit), record_id.encode(), \
            self.wire.encode(CREDIT_EVENT, datum)

    def _bad(self, unit: str, group: str, number: str, name: str,
             seq: int) -> tuple[str, bytes, bytes]:
        if self.rng.random() < 0.5:
            return raw_topic(self.prefix, unit), b"bad", self.rng.randbytes(60)
        broken = number[:17] + ("0" if number[17] != "0" else "1")
        category = self.categories[group][0]
        return self._event(unit, group, category, f"bad-{seq}", broken, name)


def _content(kind: str, marker: str, day: date) -> tuple[str, dict[str, Any]]:
    if kind == "penalty":
        return tagged("Penalty", {
            "decision_number": f"赣罚〔2026〕{marker}号", "illegal_facts": "违法事实",
            "legal_basis": "《中华人民共和国行政处罚法》", "penalty_types": ["罚款"],
            "penalty_content": "罚款", "fine_amount": Decimal("1000.00"), "decision_date": day,
            "disclosure_until": None, "authority": "赣州市某局", "authority_uscc": None})
    if kind == "assessment":
        return tagged("Assessment", {"year": 2025, "result": "称职", "assessor": None})
    if kind == "career":
        return tagged("CareerEntry", {"organisation": "某单位", "position": "职员",
                                      "start_date": day, "end_date": None})
    if kind == "reward":
        return tagged("Reward", {"title": "先进个人", "level": None, "issuer": "赣州市",
                                 "award_date": day})
    if kind == "complaint":
        return tagged("Complaint", {"received_date": day, "summary": "投诉", "outcome": None,
                                    "substantiated": None})
    if kind == "training":
        return tagged("Training", {"course": "继续教育", "provider": "培训中心", "hours": 8.0,
                                   "completed_date": day})
    if kind == "qualification":
        return tagged("Qualification", {"certificate_number": marker,
                                        "qualification_name": "执业资格", "issuer": "主管部门",
                                        "issued_date": day, "valid_until": None,
                                        "status": "有效"})
    return tagged("Note", {"title": "记录", "detail": marker, "event_date": day,
                           "attributes": {}})
