"""The catalog's entries (units, groups, categories, domains, severities) and the `Catalog`.

Entries are frozen pydantic models validated field by field; references between entries are
checked by the loader (`creditbus.catalog.loader`), which knows the file each entry came from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, model_validator

from creditbus.catalog.errors import UnknownCodeError

CODE_PATTERN = r"^[a-z][a-z0-9_]{1,31}$"
"""Codes become Kafka topic suffixes (credit.raw.<unit>) and Avro string values."""

Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

UnitKind = Literal["city_unit", "county", "association"]
Tier = Literal["key", "encouraged"]
ContentKind = Literal[
    "penalty", "assessment", "career", "reward", "complaint", "training", "qualification", "note"
]

NEXT_STEP_RESPONSIBLE = (
    "按通知要求出台或完善重点人群信用档案制度，"
    "及时归集相关信息并推送至赣州市公共信用信息服务平台。"
)
NEXT_STEP_OTHER = (
    "摸排本单位本系统及主管行业协会、商会重点人群信用档案相关文件，适时建立信用档案。"
)


class Entry(BaseModel):
    """Common shape: a stable code and a Chinese name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    name_zh: Text


def _unique(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"{what} lists {seen[0]!r} twice")
    return values


class Unit(Entry):
    """A publishing unit: a city unit (row `seq` of the progress table), county or association."""

    kind: UnitKind
    seq: Annotated[int, Field(ge=1)] | None = None
    groups: tuple[Code, ...] = ()
    documents: tuple[Text, ...] = ()
    """出台文件名称: the unit's documents on credit archives."""
    next_step: Text
    """下步打算; defaults to a standard sentence that depends on whether the unit has groups."""
    remark: str | None = None
    aliases: tuple[Text, ...] = ()
    division: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] | None = None
    """GB/T 2260 code of a county."""

    @model_validator(mode="before")
    @classmethod
    def _default_next_step(cls, data: Any) -> Any:
        if isinstance(data, dict) and not str(data.get("next_step") or "").strip():
            default = NEXT_STEP_RESPONSIBLE if data.get("groups") else NEXT_STEP_OTHER
            data = {**data, "next_step": default}
        return data

    @model_validator(mode="after")
    def _check(self) -> Unit:
        _unique(self.groups, "groups")
        if self.seq is not None and self.kind != "city_unit":
            raise ValueError(f"only city units have a progress-table seq, not a {self.kind}")
        return self


class Group(Entry):
    """An occupational group (重点职业人群) and the content its archive must hold."""

    tier: Tier
    required_categories: Annotated[tuple[Code, ...], Field(min_length=1)]
    default_domain: Code | None = None
    notice_item: Annotated[int, Field(ge=1)] | None = None
    """Number of the notice's item (二、具体责任分工 （一）..（十一）), if the notice names it."""
    aliases: tuple[Text, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Group:
        _unique(self.required_categories, "required_categories")
        return self


class Category(Entry):
    """A record category: which typed content it carries and whether it is a dishonesty record."""

    content_kind: ContentKind
    dishonesty: bool


class Domain(Entry):
    """One of the 16 key domains (重点领域)."""


class Severity(Entry):
    """Severity of a dishonesty record and its public disclosure window (months)."""

    symbol: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
    """The Avro enum symbol (CreditEvent.severity)."""
    disclosure_min_months: Annotated[int, Field(ge=0)]
    disclosure_max_months: Annotated[int, Field(ge=0)]
    repair_min_months: Annotated[int, Field(ge=0)] | None = None
    """Minimum disclosure period before a credit repair (信用修复) may take effect, in months
    from the decision date; None: `disclosure_min_months`."""

    @property
    def repair_minimum(self) -> int:
        """Months from the decision date before a repair of such a record may take effect."""
        return self.disclosure_min_months if self.repair_min_months is None \
            else self.repair_min_months

    @property
    def disclosed(self) -> bool:
        """Whether records of this severity are publicly disclosed at all."""
        return self.disclosure_max_months > 0

    @model_validator(mode="after")
    def _check(self) -> Severity:
        if self.disclosure_min_months > self.disclosure_max_months:
            raise ValueError("disclosure_min_months exceeds disclosure_max_months")
        return self


class Catalog(BaseModel):
    """The whole catalog with lookups. Build it with `creditbus.catalog.load_catalog`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    units: tuple[Unit, ...]
    groups: tuple[Group, ...]
    categories: tuple[Category, ...]
    domains: tuple[Domain, ...]
    severities: tuple[Severity, ...]

    _units: dict[str, Unit] = PrivateAttr(default_factory=dict)
    _groups: dict[str, Group] = PrivateAttr(default_factory=dict)
    _categories: dict[str, Category] = PrivateAttr(default_factory=dict)
    _domains: dict[str, Domain] = PrivateAttr(default_factory=dict)
    _severities: dict[str, Severity] = PrivateAttr(default_factory=dict)
    _responsible: dict[str, tuple[Unit, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._units = {u.code: u for u in self.units}
        self._groups = {g.code: g for g in self.groups}
        self._categories = {c.code: c for c in self.categories}
        self._domains = {d.code: d for d in self.domains}
        severities: dict[str, Severity] = {}
        for s in self.severities:
            severities.update({s.code: s, s.symbol: s, s.name_zh: s})
        self._severities = severities
        self._responsible = {
            g.code: tuple(u for u in self.units if g.code in u.groups) for g in self.groups
        }

    # --- lookups by code (raise UnknownCodeError, a KeyError) ---

    def unit(self, code: str) -> Unit:
        return _get(self._units, "unit", code)

    def group(self, code: str) -> Group:
        return _get(self._groups, "group", code)

    def category(self, code: str) -> Category:
        return _get(self._categories, "category", code)

    def domain(self, code: str) -> Domain:
        return _get(self._domains, "domain", code)

    def severity(self, code_or_symbol: str) -> Severity:
        """By code (`serious`), Avro symbol (`SERIOUS`) or Chinese name (`严重`)."""
        key = code_or_symbol.strip()
        found = self._severities.get(key) or self._severities.get(key.lower())
        if found is None:
            raise UnknownCodeError("severity", code_or_symbol)
        return found

    def repair_minimums(self) -> dict[str, int]:
        """Severity code -> months before a repair may take effect (the archive's rule)."""
        return {s.code: s.repair_minimum for s in self.severities}

    def has(self, kind: str, code: str) -> bool:
        """Whether `code` exists; `kind` is unit, group, category, domain or severity."""
        index = {
            "unit": self._units, "group": self._groups, "category": self._categories,
            "domain": self._domains, "severity": self._severities,
        }[kind]
        return code in index

    # --- rules ---

    def may_publish(self, unit_code: str, group_code: str) -> bool:
        """Whether the unit is responsible for the group (False for unknown codes)."""
        unit = self._units.get(unit_code)
        return unit is not None and group_code in unit.groups and group_code in self._groups

    def allows_category(self, group_code: str, category_code: str) -> bool:
        """Whether the category is one of the group's archive items (False for unknown codes)."""
        group = self._groups.get(group_code)
        return group is not None and category_code in group.required_categories

    def responsible_units(self, group_code: str) -> tuple[Unit, ...]:
        """The units that may publish records of the group, in catalog order."""
        self.group(group_code)
        return self._responsible[group_code]

    def progress_units(self) -> tuple[Unit, ...]:
        """The units of the progress table, ordered by seq."""
        return tuple(sorted((u for u in self.units if u.seq is not None), key=lambda u: u.seq or 0))

    def units_of_kind(self, kind: UnitKind) -> tuple[Unit, ...]:
        return tuple(u for u in self.units if u.kind == kind)

    # --- lookups by Chinese name (for imports) ---

    def unit_by_name(self, name: str) -> Unit | None:
        return _by_name(self.units, name)

    def group_by_name(self, name: str) -> Group | None:
        return _by_name(self.groups, name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, the same shape as the TOML files."""
        return self.model_dump(mode="json")


def _get(index: dict[str, Any], kind: str, code: str) -> Any:
    try:
        return index[code]
    except KeyError:
        raise UnknownCodeError(kind, code) from None


def _by_name(entries: tuple[Unit, ...] | tuple[Group, ...], name: str) -> Any:
    wanted = name.strip()
    for entry in entries:
        if entry.name_zh == wanted or wanted in entry.aliases:
            return entry
    return None
