"""The progress table of the notice (附件 重点人群信用档案建设情况表), built from live data.

Facts come from the platform database (table `cb_record`, read through the sink's DB layer in
one snapshot), the rest from the catalog: one row per unit of the progress table in 序号 order,
and per unit and group the counts behind it. Definitions (also in docs/report.md):

- 是否建立: 是 when at least one record of the unit has reached the platform (retracted ones
  included: the unit did push it), else 否.
- 建档人数 / 档案记录数: persons with at least one current (not retracted) record, and current
  records; retracted records are counted apart.
- 最近推送时间: the latest `published_at` of the unit's records, in Beijing time.
- 档案完整度 (completeness) of a group: for each person with a current record of the group, the
  share of the group's `required_categories` for which the person has at least one current
  record of the group (from any unit); averaged over those persons; a percentage. The same
  computed from one unit's own records only is that unit's 本单位记录完整度.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from creditbus.catalog import Catalog, Group, Unit
from creditbus.constants import CHINA_TZ
from creditbus.platformdb.db import PlatformDB

TITLE = "重点人群信用档案建设情况表"
FACTS_TITLE = "重点人群信用档案统计（按单位、人群）"
GROUPS_TITLE = "重点人群信用档案汇总（按人群）"
YES, NO = "是", "否"
NOT_PUSHED = "尚未向平台推送档案信息"
DOCUMENT_SEPARATOR = "；"

ANNEX_HEADER = ("序号", "单位", "是否建立重点人群信用档案", "出台文件名称",
                "下步打算（是否建立均须填写）", "备注")
FACTS_HEADER = ("序号", "单位", "重点人群", "建档人数", "档案记录数", "已撤回记录数",
                "最近推送时间（北京时间）", "本单位记录完整度（%）", "人群档案完整度（%）")
GROUPS_HEADER = ("重点人群", "责任单位", "必备信息项数", "建档人数", "档案记录数",
                 "档案完整度（%）")
COMPLETENESS_NOTE = (
    "档案完整度：对某一重点人群中每位有现行档案记录的人员，计算其已具备的必备信息项"
    "（目录为该人群配置的应记录信息项）占全部必备信息项的比例，再对全部人员取平均，"
    "以百分比表示；“本单位记录完整度”仅计该单位自己推送的记录。已撤回的记录不计入。"
)


# -- facts read from the platform database -------------------------------------------------

@dataclass
class _Cell:
    """Aggregates of one (unit, group)."""

    records: int = 0
    retracted: int = 0
    last_published: datetime | None = None
    categories: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """person key -> categories of the unit's current records of the group."""


@dataclass
class PlatformFacts:
    """What the report needs from `cb_record`, aggregated in one pass."""

    cells: dict[tuple[str, str], _Cell] = field(default_factory=dict)
    person_categories: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    """group -> person key -> categories of current records of the group (every unit)."""
    database_ready: bool = True

    def add(self, record: Mapping[str, Any]) -> None:
        unit, group = record["unit"], record["group_code"]
        cell = self.cells.setdefault((unit, group), _Cell())
        published = parse_timestamp(record["published_at"])
        if cell.last_published is None or published > cell.last_published:
            cell.last_published = published
        if record["is_retracted"]:
            cell.retracted += 1
            return
        cell.records += 1
        cell.categories[record["person_key"]].add(record["category"])
        self.person_categories[group][record["person_key"]].add(record["category"])

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> PlatformFacts:
        facts = cls()
        for record in records:
            facts.add(record)
        return facts


def parse_timestamp(text: str) -> datetime:
    """A canonical UTC timestamp (`...Z`) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_facts(db: PlatformDB) -> PlatformFacts:
    """Aggregate `cb_record` in one snapshot; an empty result when there is no schema yet."""
    if db.schema_version() is None:
        return PlatformFacts(database_ready=False)
    with db.snapshot():
        return PlatformFacts.from_records(db.iter_rows("cb_record"))


# -- the report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProgressRow:
    """One row of the annex, with the totals behind 是/否."""

    seq: int
    unit_code: str
    unit_name: str
    established: bool
    documents: str
    next_step: str
    remark: str
    persons: int
    records: int
    retracted: int
    last_published: datetime | None

    @property
    def established_text(self) -> str:
        return YES if self.established else NO

    def annex_cells(self) -> tuple[Any, ...]:
        return (self.seq, self.unit_name, self.established_text, self.documents,
                self.next_step, self.remark)


@dataclass(frozen=True)
class UnitGroupFacts:
    """One (unit, group) line of the facts sheet; group None for a unit without groups."""

    seq: int | None
    unit_code: str
    unit_name: str
    group_code: str | None
    group_name: str
    persons: int
    records: int
    retracted: int
    last_published: datetime | None
    unit_completeness: float | None
    group_completeness: float | None

    def cells(self) -> tuple[Any, ...]:
        return (self.seq if self.seq is not None else "", self.unit_name, self.group_name,
                self.persons, self.records, self.retracted, format_time(self.last_published),
                _round(self.unit_completeness), _round(self.group_completeness))


@dataclass(frozen=True)
class GroupSummary:
    code: str
    name: str
    units: str
    required: int
    persons: int
    records: int
    completeness: float | None

    def cells(self) -> tuple[Any, ...]:
        return (self.name, self.units, self.required, self.persons, self.records,
                _round(self.completeness))


@dataclass(frozen=True)
class ProgressReport:
    generated_at: datetime
    rows: tuple[ProgressRow, ...]
    facts: tuple[UnitGroupFacts, ...]
    groups: tuple[GroupSummary, ...]
    database_ready: bool

    @property
    def subtitle(self) -> str:
        text = (f"数据来源：赣州市公共信用信息服务平台；统计截至 "
                f"{self.generated_at:%Y年%m月%d日 %H:%M}（北京时间）")
        return text if self.database_ready else text + "；平台数据库尚无档案数据"

    @property
    def established_count(self) -> int:
        return sum(1 for r in self.rows if r.established)


def format_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 1)


def completeness(per_person: Mapping[str, set[str]], group: Group) -> float | None:
    """Mean share (%) of the group's required categories present per person; None if nobody."""
    if not per_person:
        return None
    required = set(group.required_categories)
    shares = [len(categories & required) / len(required) for categories in per_person.values()]
    return 100.0 * sum(shares) / len(shares)


def _group_name(catalog: Catalog, code: str) -> str:
    return catalog.group(code).name_zh if catalog.has("group", code) else code


def _unit_groups(unit: Unit, facts: PlatformFacts) -> list[str]:
    """The unit's configured groups, then any other group it has records of."""
    found = sorted(g for (u, g) in facts.cells if u == unit.code and g not in unit.groups)
    return [*unit.groups, *found]


def _unit_facts(catalog: Catalog, unit: Unit, facts: PlatformFacts,
                group_scores: Mapping[str, float | None], *,
                only_with_data: bool = False) -> list[UnitGroupFacts]:
    lines = []
    for code in _unit_groups(unit, facts):
        if only_with_data and (unit.code, code) not in facts.cells:
            continue
        cell = facts.cells.get((unit.code, code), _Cell())
        group = catalog.group(code) if catalog.has("group", code) else None
        lines.append(UnitGroupFacts(
            unit.seq, unit.code, unit.name_zh, code, _group_name(catalog, code),
            persons=len(cell.categories), records=cell.records, retracted=cell.retracted,
            last_published=cell.last_published,
            unit_completeness=completeness(cell.categories, group) if group else None,
            group_completeness=group_scores.get(code)))
    if not lines:
        lines.append(UnitGroupFacts(unit.seq, unit.code, unit.name_zh, None, "（未配置负责人群）",
                                    0, 0, 0, None, None, None))
    return lines


def _row(unit: Unit, facts: PlatformFacts) -> ProgressRow:
    cells = [c for (u, _g), c in facts.cells.items() if u == unit.code]
    established = any(c.records or c.retracted for c in cells)
    remark_parts = [unit.remark.strip()] if unit.remark and unit.remark.strip() else []
    if not established:
        remark_parts.append(NOT_PUSHED)
    persons = len({p for c in cells for p in c.categories})
    times = [c.last_published for c in cells if c.last_published is not None]
    return ProgressRow(
        seq=unit.seq or 0, unit_code=unit.code, unit_name=unit.name_zh, established=established,
        documents=DOCUMENT_SEPARATOR.join(unit.documents), next_step=unit.next_step,
        remark=DOCUMENT_SEPARATOR.join(remark_parts), persons=persons,
        records=sum(c.records for c in cells), retracted=sum(c.retracted for c in cells),
        last_published=max(times) if times else None)


def build_report(catalog: Catalog, facts: PlatformFacts,
                 now: datetime | None = None) -> ProgressReport:
    """The report from aggregated facts (pure: no I/O)."""
    generated = (now or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
    group_scores = {g.code: completeness(facts.person_categories.get(g.code, {}), g)
                    for g in catalog.groups}
    rows: list[ProgressRow] = []
    lines: list[UnitGroupFacts] = []
    for unit in catalog.progress_units():
        unit_lines = _unit_facts(catalog, unit, facts, group_scores)
        rows.append(_row(unit, facts))
        lines += unit_lines
    in_table = {u.code for u in catalog.progress_units()}
    for unit in catalog.units:  # counties and associations that pushed records
        if unit.code not in in_table and any(u == unit.code for (u, _g) in facts.cells):
            lines += _unit_facts(catalog, unit, facts, group_scores, only_with_data=True)
    groups = []
    for group in catalog.groups:
        responsible = catalog.responsible_units(group.code)
        per_person = facts.person_categories.get(group.code, {})
        if not responsible and not per_person:
            continue  # a group no unit publishes for and nobody has records of
        groups.append(GroupSummary(
            group.code, group.name_zh, "、".join(u.name_zh for u in responsible if u.seq)
            or "、".join(u.name_zh for u in responsible),
            len(group.required_categories), len(per_person),
            sum(c.records for (_u, g), c in facts.cells.items() if g == group.code),
            group_scores[group.code]))
    return ProgressReport(generated, tuple(rows), tuple(lines), tuple(groups),
                          facts.database_ready)


def load_report(catalog: Catalog, db: PlatformDB, now: datetime | None = None) -> ProgressReport:
    return build_report(catalog, read_facts(db), now)
