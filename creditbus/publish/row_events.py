"""Import rows: the column table (Chinese headers and English aliases) and row -> event.

`COLUMN_TABLE` is the one place that says which header fills which event field; docs/import.md
lists the same table for the departments. A row holds one record: the common columns (person,
group, category, record id, ...) plus the flat columns of the content kind its category needs
(a penalty row fills 决定书文号, 违法事实, ...; a training row 培训项目, 学时, ...). Columns of
other content kinds are ignored on that row.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from creditbus.catalog.models import Catalog
from creditbus.contract import reasons as R
from creditbus.contract.jsonform import CHINA_TZ
from creditbus.contract.models import CONTENT_KIND_RECORDS, CONTENT_MODELS, REPAIR_RECORD
from creditbus.errors import ConfigError, ContractError
from creditbus.publish.messages import STATIC_ALLOWED, ReportMessages, message, shown

# --- the column table ----------------------------------------------------------------------------

# key, Chinese header, English alias, content kind (None: every row), event field, value type,
# further accepted headers. Value types: text, id (resident ID), uscc, date, decimal, int, float,
# bool, list (penalty types), map (note attributes), action, unit, group, category, severity,
# domain.
ColumnEntry = tuple[str, str, str, str | None, str | None, str, tuple[str, ...]]
COLUMN_TABLE: Final[tuple[ColumnEntry, ...]] = (
    ("unit", "填报单位", "unit", None, "unit", "unit", ("报送单位", "发布单位")),
    ("name", "姓名", "name", None, "person.name", "text", ()),
    ("id_number", "身份证号码", "id_number", None, "person.id_number", "id",
     ("公民身份号码", "身份证号", "证件号码")),
    ("organisation", "工作单位", "organisation", None, "person.organisation", "text",
     ("所在单位", "所在企业")),
    ("organisation_uscc", "统一社会信用代码", "organisation_uscc", None,
     "person.organisation_uscc", "uscc", ("单位统一社会信用代码", "工作单位统一社会信用代码")),
    ("group", "人群类别", "group", None, "group", "group", ("重点人群", "人群")),
    ("category", "信息类别", "category", None, "category", "category", ("记录类别", "信息分类")),
    ("record_id", "记录编号", "record_id", None, "record_id", "text", ("信息编号", "编号")),
    ("occurred_date", "发生日期", "occurred_date", None, "occurred_at", "date",
     ("生效日期", "日期")),
    ("severity", "严重程度", "severity", None, "severity", "severity", ("失信程度",)),
    ("domain", "重点领域", "domain", None, "domain", "domain", ("领域",)),
    ("source_ref", "信息来源", "source_ref", None, "source_ref", "text", ("来源文号", "来源")),
    ("action", "操作(新增/撤销)", "action", None, "action", "action", ("操作", "操作类型")),
    # Penalty (行政处罚, 双公示 fields)
    ("decision_number", "决定书文号", "decision_number", "penalty", "content.decision_number",
     "text", ("处罚决定书文号", "行政处罚决定书文号")),
    ("illegal_facts", "违法事实", "illegal_facts", "penalty", "content.illegal_facts", "text",
     ("主要违法事实", "违法违规事实")),
    ("legal_basis", "处罚依据", "legal_basis", "penalty", "content.legal_basis", "text", ()),
    ("penalty_types", "处罚类别", "penalty_types", "penalty", "content.penalty_types", "list",
     ("处罚种类",)),
    ("penalty_content", "处罚内容", "penalty_content", "penalty", "content.penalty_content",
     "text", ("处罚结果",)),
    ("fine_amount", "罚款金额（元）", "fine_amount", "penalty", "content.fine_amount", "decimal",
     ("罚款金额",)),
    ("decision_date", "处罚决定日期", "decision_date", "penalty", "content.decision_date", "date",
     ("决定日期", "处罚日期")),
    ("disclosure_until", "公示截止期", "disclosure_until", "penalty",
     "content.disclosure_until", "date", ("公示截止日期",)),
    ("authority", "处罚机关", "authority", "penalty", "content.authority", "text",
     ("处罚单位",)),
    ("authority_uscc", "处罚机关统一社会信用代码", "authority_uscc", "penalty",
     "content.authority_uscc", "uscc", ()),
    # Assessment (年度考核结果)
    ("year", "考核年度", "year", "assessment", "content.year", "int", ()),
    ("result", "考核结果", "result", "assessment", "content.result", "text", ()),
    ("assessor", "考核单位", "assessor", "assessment", "content.assessor", "text", ()),
    # CareerEntry (从业履历)
    ("career_organisation", "从业单位", "career_organisation", "career",
     "content.organisation", "text", ("任职单位",)),
    ("position", "职务岗位", "position", "career", "content.position", "text",
     ("职务/岗位", "职务", "岗位")),
    ("start_date", "起始日期", "start_date", "career", "content.start_date", "date",
     ("开始日期",)),
    ("end_date", "终止日期", "end_date", "career", "content.end_date", "date", ("结束日期",)),
    # Reward (奖励/表彰)
    ("reward_title", "荣誉名称", "reward_title", "reward", "content.title", "text",
     ("奖励名称",)),
    ("level", "奖励级别", "level", "reward", "content.level", "text", ("级别",)),
    ("reward_issuer", "授予机关", "reward_issuer", "reward", "content.issuer", "text",
     ("授予单位",)),
    ("award_date", "授予日期", "award_date", "reward", "content.award_date", "date",
     ("奖励日期",)),
    # Complaint (投诉申诉)
    ("received_date", "受理日期", "received_date", "complaint", "content.received_date", "date",
     ()),
    ("summary", "投诉事由", "summary", "complaint", "content.summary", "text",
     ("投诉内容", "申诉事由")),
    ("outcome", "处理结果", "outcome", "complaint", "content.outcome", "text", ()),
    ("substantiated", "是否属实", "substantiated", "complaint", "content.substantiated", "bool",
     ()),
    # Training (教育培训记录)
    ("course", "培训项目", "course", "training", "content.course", "text", ("培训名称",)),
    ("provider", "培训机构", "provider", "training", "content.provider", "text", ()),
    ("hours", "学时", "hours", "training", "content.hours", "float", ("培训学时",)),
    ("completed_date", "完成日期", "completed_date", "training", "content.completed_date",
     "date", ("结业日期",)),
    # Qualification (资质认定)
    ("certificate_number", "证书编号", "certificate_number", "qualification",
     "content.certificate_number", "text", ()),
    ("qualification_name", "资格名称", "qualification_name", "qualification",
     "content.qualification_name", "text", ("资质名称",)),
    ("qualification_issuer", "发证机关", "qualification_issuer", "qualification",
     "content.issuer", "text", ()),
    ("issued_date", "发证日期", "issued_date", "qualification", "content.issued_date", "date",
     ()),
    ("valid_until", "有效期至", "valid_until", "qualification", "content.valid_until", "date",
     ()),
    ("status", "证书状态", "status", "qualification", "content.status", "text", ("状态",)),
    # Note (其他信息)
    ("note_title", "事项", "note_title", "note", "content.title", "text", ("事项名称",)),
    ("detail", "具体内容", "detail", "note", "content.detail", "text", ("事项内容",)),
    ("attributes", "扩展属性", "attributes", "note", "content.attributes", "map", ()),
    # CreditRepair (信用修复决定): rows whose 操作 is 修复 (docs/contract.md, *Credit repair*)
    ("repair_decision_number", "修复决定文书号", "repair_decision_number", "repair",
     "content.decision_number", "text", ("信用修复决定文书号", "修复文书号")),
    ("repair_decision_date", "修复决定日期", "repair_decision_date", "repair",
     "content.decision_date", "date", ("信用修复日期", "修复日期")),
    ("repair_authority", "修复决定单位", "repair_authority", "repair", "content.authority",
     "text", ("作出修复决定的单位", "修复单位")),
    ("repair_authority_uscc", "修复决定单位统一社会信用代码", "repair_authority_uscc", "repair",
     "content.authority_uscc", "uscc", ()),
)

REQUIRED_COLUMNS: Final = ("name", "id_number", "category", "record_id")
"""Columns every file must have (人群类别 too, unless the unit publishes for one group only)."""

# Where a content date falls back to when 发生日期 is blank, by content kind.
OCCURRED_FALLBACK: Final[dict[str, str]] = {
    "penalty": "decision_date",
    "career": "start_date",
    "reward": "award_date",
    "complaint": "received_date",
    "training": "completed_date",
    "qualification": "issued_date",
    "repair": "repair_decision_date",
}

ACTION_WORDS: Final[dict[str, str]] = {
    "新增": "UPSERT", "更新": "UPSERT", "修改": "UPSERT", "变更": "UPSERT", "upsert": "UPSERT",
    "撤销": "RETRACT", "撤回": "RETRACT", "删除": "RETRACT", "retract": "RETRACT",
    "修复": "REPAIR", "信用修复": "REPAIR", "repair": "REPAIR",
}
BOOL_WORDS: Final[dict[str, bool]] = {
    "是": True, "属实": True, "true": True, "yes": True, "y": True, "1": True,
    "否": False, "不属实": False, "false": False, "no": False, "n": False, "0": False,
}

# Reason codes of the conversion itself (the validation codes are in creditbus.contract.reasons).
BAD_DATE: Final = "BAD_DATE"
BAD_NUMBER: Final = "BAD_NUMBER"
BAD_BOOLEAN: Final = "BAD_BOOLEAN"
BAD_ACTION: Final = "BAD_ACTION"
BAD_ATTRIBUTES: Final = "BAD_ATTRIBUTES"
ID_STORED_AS_NUMBER: Final = "ID_STORED_AS_NUMBER"
BAD_JSON: Final = "BAD_JSON"
DELIVERY_FAILED: Final = "DELIVERY_FAILED"
IMPORT_REASONS: Final[dict[str, str]] = {
    BAD_DATE: "A date cell is not a date (accepted: Excel dates, 2024-02-26, 2024/2/26, "
    "2024年2月26日, 20240226).",
    BAD_NUMBER: "An amount, year or hours cell is not a number (or a fine has more than two "
    "decimals).",
    BAD_BOOLEAN: "是否属实 is not 是/否.",
    BAD_ACTION: "操作 is not 新增, 撤销 or 修复.",
    BAD_ATTRIBUTES: "扩展属性 is not `key=value; key=value` or a JSON object of strings.",
    ID_STORED_AS_NUMBER: "The ID number cell is an Excel number, which loses the last digits; "
    "format the column as text.",
    BAD_JSON: "A .jsonl line is not a valid event in the JSON form.",
    DELIVERY_FAILED: "The row was valid but the broker did not accept it (see the message).",
}


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    zh: str
    en: str
    content_kind: str | None
    field: str | None
    kind: str
    aliases: tuple[str, ...]


COLUMNS: Final[tuple[Column, ...]] = tuple(Column(*entry) for entry in COLUMN_TABLE)
COLUMNS_BY_KEY: Final[dict[str, Column]] = {c.key: c for c in COLUMNS}


def normalise_header(text: str) -> str:
    """Header comparison form: NFKC (full-width brackets to ASCII), no spaces, no `*` marks,
    lower-case."""
    folded = unicodedata.normalize("NFKC", str(text)).strip().strip("*").lower()
    return re.sub(r"\s+", "", folded)


_HEADER_INDEX: Final[dict[str, str]] = {}
for _col in COLUMNS:
    for _name in (_col.zh, _col.en, _col.key, *_col.aliases):
        _HEADER_INDEX.setdefault(normalise_header(_name), _col.key)


class RowError(ContractError, ValueError):
    """A row that cannot become an event. `column` is the column key (see COLUMNS) or None;
    `message` is Chinese, for the error report (`creditbus.publish.messages`)."""

    def __init__(self, code: str, message: str, column: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.column = column


class HeaderError(ConfigError, ValueError):
    """The header row cannot be used (missing or duplicate columns): a file error."""


@dataclass(frozen=True)
class HeaderMap:
    """Which cell position holds which column, and the header text the file uses for each."""

    positions: dict[str, int]
    headers: dict[str, str]
    unknown: tuple[str, ...] = field(default=())

    def header_of(self, key: str | None) -> str:
        """The header text of a column as the file writes it (the Chinese name if absent)."""
        if key is None:
            return ""
        return self.headers.get(key) or COLUMNS_BY_KEY[key].zh

    def values(self, cells: Sequence[Any]) -> dict[str, Any]:
        n = len(cells)
        return {key: cells[i] if i < n else None for key, i in self.positions.items()}


def map_headers(headers: Sequence[Any], *, group_optional: bool = False) -> HeaderMap:
    """Map a header row; raise `HeaderError` for duplicate or missing required columns."""
    positions: dict[str, int] = {}
    texts: dict[str, str] = {}
    unknown: list[str] = []
    for i, raw in enumerate(headers):
        if raw is None or not str(raw).strip():
            continue
        key = _HEADER_INDEX.get(normalise_header(str(raw)))
        if key is None:
            unknown.append(str(raw).strip())
            continue
        if key in positions:
            raise HeaderError(
                f"columns {texts[key]!r} and {str(raw).strip()!r} both mean "
                f"{COLUMNS_BY_KEY[key].zh} ({key})"
            )
        positions[key] = i
        texts[key] = str(raw).strip()
    required = list(REQUIRED_COLUMNS) + ([] if group_optional else ["group"])
    missing = [COLUMNS_BY_KEY[k].zh for k in required if k not in positions]
    if missing:
        raise HeaderError(f"missing column(s): {', '.join(missing)}")
    return HeaderMap(positions, texts, tuple(unknown))


def keyed_row(named: Mapping[str, Any]) -> dict[str, Any]:
    """Cells keyed by header text (any accepted header) -> cells keyed by column key."""
    out: dict[str, Any] = {}
    for header, value in named.items():
        key = _HEADER_INDEX.get(normalise_header(header))
        if key is not None:
            out[key] = value
    return out


def column_for_field(field_path: str | None, content_kind: str | None) -> str | None:
    """The column key an event field path (as in `EventRejected.field`) comes from."""
    if field_path is None:
        return None
    if field_path == "content":
        return "category"
    return _FIELD_COLUMNS.get((content_kind, field_path)) or _FIELD_COLUMNS.get((None, field_path))


_FIELD_COLUMNS: Final[dict[tuple[str | None, str], str]] = {
    (c.content_kind, c.field): c.key for c in COLUMNS if c.field is not None
}
_FIELD_COLUMNS[("note", "content.event_date")] = "occurred_date"
_FIELD_COLUMNS[("career", "content.organisation")] = "career_organisation"


# --- catalog names -------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


class CatalogNames:
    """Codes by code or Chinese name (and aliases) for the group, category, domain, unit and
    severity columns; built once per import."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.units = self._index((u.code, u.name_zh, *u.aliases) for u in catalog.units)
        self.groups = self._index((g.code, g.name_zh, *g.aliases) for g in catalog.groups)
        self.categories = self._index((c.code, c.name_zh) for c in catalog.categories)
        self.domains = self._index((d.code, d.name_zh) for d in catalog.domains)
        self.severities = self._index(
            (s.symbol, s.code, s.name_zh) for s in catalog.severities
        )
        self.content_kinds = {c.code: c.content_kind for c in catalog.categories}

    @staticmethod
    def _index(entries: Iterable[tuple[str, ...]]) -> dict[str, str]:
        index: dict[str, str] = {}
        for names in entries:
            code = names[0]
            for name in names:
                index.setdefault(_fold(name), code)
                index.setdefault(_fold(name).lower(), code)
        return index

    @staticmethod
    def lookup(index: dict[str, str], text: str) -> str | None:
        folded = _fold(text)
        return index.get(folded) or index.get(folded.lower())


# --- cell values ---------------------------------------------------------------------------------

_EXCEL_EPOCH = date(1899, 12, 30)
_DATE_PATTERNS = (
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
_LIST_SPLIT = re.compile(r"[、,，;；/\n]+")
_ATTR_SPLIT = re.compile(r"[;；\n]+")
_AMOUNT_NOISE = re.compile(r"[,，\s元¥￥]")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def parse_date(value: Any, column: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 19000101 <= value <= 29991231 and float(value).is_integer():
            return parse_date(str(int(value)), column)
        if 1 <= value < 2958466:  # an Excel serial day number (a date cell without date format)
            return _EXCEL_EPOCH + timedelta(days=int(value))
        raise cell_error(BAD_DATE, column, value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text.split(" ")[0].split("T")[0])
        if match:
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                break
    raise cell_error(BAD_DATE, column, value)


def parse_decimal(value: Any, column: str) -> Decimal:
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        if isinstance(value, float):
            amount = Decimal(repr(value))
        elif isinstance(value, int):
            amount = Decimal(value)
        else:
            amount = Decimal(_AMOUNT_NOISE.sub("", unicodedata.normalize("NFKC", str(value))))
    except (InvalidOperation, ValueError):
        raise cell_error(BAD_NUMBER, column, value, "应为金额，如 5000 或 5,000.00") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise cell_error(BAD_NUMBER, column, value, "金额最多两位小数")
    return amount.quantize(Decimal("0.01"))


def parse_int(value: Any, column: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = unicodedata.normalize("NFKC", str(value)).strip().removesuffix("度").removesuffix("年")
    if not text.isdigit():
        raise cell_error(BAD_NUMBER, column, value, "应为整数，如 2023")
    return int(text)


def parse_float(value: Any, column: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(unicodedata.normalize("NFKC", str(value)).strip())
    except ValueError:
        raise cell_error(BAD_NUMBER, column, value, "应为数字，如 24 或 7.5") from None


def parse_bool(value: Any, column: str) -> bool:
    if isinstance(value, bool):
        return value
    word = BOOL_WORDS.get(_text(value).lower())
    if word is None:
        raise cell_error(BAD_BOOLEAN, column, value)
    return word


def parse_list(value: Any) -> list[str]:
    return [part.strip() for part in _LIST_SPLIT.split(_text(value)) if part.strip()]


def parse_map(value: Any, column: str) -> dict[str, str]:
    text = _text(value)
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise cell_error(BAD_ATTRIBUTES, column, value, "JSON 无法解析") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise cell_error(BAD_ATTRIBUTES, column, value, "JSON 对象的值必须是文本")
        return {str(k): v for k, v in data.items()}
    out: dict[str, str] = {}
    for part in _ATTR_SPLIT.split(text):
        if not part.strip():
            continue
        match = re.match(r"\s*([^=:：]+?)\s*[=:：]\s*(.*?)\s*$", part)
        if match is None:
            raise cell_error(BAD_ATTRIBUTES, column, value, f"第 {len(out) + 1} 项缺少“=”")
        out[match[1]] = match[2]
    return out


def parse_id_number(value: Any, column: str = "id_number") -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise cell_error(ID_STORED_AS_NUMBER, column, value)
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value))).upper()


def _uscc(value: Any) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", _text(value))).upper()


def _zh(column: str) -> str:
    return COLUMNS_BY_KEY[column].zh


def cell_error(code: str, column: str, value: Any, detail: str = "") -> RowError:
    """A `RowError` for a cell of `column` (a column key) that holds `value`."""
    text = message(_zh(column), shown(column, value), code, detail=detail,
                   allowed=STATIC_ALLOWED.get(code, ()))
    return RowError(code, text, column)


# --- row -> event ---------------------------------------------------------------------------------


def _model_fields(record_name: str) -> dict[str, bool]:
    """Field name -> required, from the content model."""
    model = CONTENT_MODELS[record_name]
    return {name: info.is_required() for name, info in model.model_fields.items()}


def _content_columns(kind: str, record: str) -> tuple[tuple[Column, str, bool], ...]:
    required = _model_fields(record)
    out = []
    for c in COLUMNS:
        if c.content_kind == kind and c.field is not None:
            name = c.field.removeprefix("content.")
            out.append((c, name, required[name]))
    return tuple(out)


_KIND_RECORDS: Final[dict[str, str]] = {**CONTENT_KIND_RECORDS, "repair": REPAIR_RECORD}
"""Content kind -> record; `repair` is the content of a REPAIR row, whatever its category."""
_CONTENT_COLUMNS: Final[dict[str, tuple[tuple[Column, str, bool], ...]]] = {
    kind: _content_columns(kind, record) for kind, record in _KIND_RECORDS.items()
}


class RowConverter:
    """Turns the cells of one row (by column key) into a CreditEvent datum for `unit`.

    The datum has every field of the schema except `event_id` and `published_at`, which the
    publisher fills in (the id from the content, so that re-importing a file gives the same
    ids). Raises `RowError` for cells that cannot be read; the rules are `validate_event`'s.
    """

    def __init__(self, catalog: Catalog, unit: str) -> None:
        self.names = CatalogNames(catalog)
        self.messages = ReportMessages(catalog, unit)
        self.unit = unit
        groups = catalog.unit(unit).groups
        self.default_group = groups[0] if len(groups) == 1 else None

    def convert(self, row: Mapping[str, Any]) -> dict[str, Any]:
        names = self.names
        action = self._action(row.get("action"))
        unit = self.unit
        if not _blank(row.get("unit")):
            unit = names.lookup(names.units, _text(row["unit"])) or _text(row["unit"])
        group = self._code(row, "group", names.groups, R.UNKNOWN_GROUP, self.default_group)
        category = self._code(row, "category", names.categories, R.UNKNOWN_CATEGORY, None,
                              group=group)
        severity = None
        if not _blank(row.get("severity")):
            severity = names.lookup(names.severities, _text(row["severity"]))
            if severity is None:
                raise self._error(R.UNKNOWN_SEVERITY, "severity", row["severity"])
        domain = None
        if not _blank(row.get("domain")):
            domain = names.lookup(names.domains, _text(row["domain"]))
            if domain is None:
                raise self._error(R.UNKNOWN_DOMAIN, "domain", row["domain"])

        kind = "repair" if action == "REPAIR" else names.content_kinds[category]
        occurred = None
        if not _blank(row.get("occurred_date")):
            occurred = parse_date(row["occurred_date"], "occurred_date")
        content = None
        if action in ("UPSERT", "REPAIR"):
            content = self._content(kind, row, occurred)
        if occurred is None:
            occurred = self._fallback_date(kind, row)

        return {
            "unit": unit,
            "occurred_at": datetime.combine(occurred, time(0), tzinfo=CHINA_TZ),
            "action": action,
            "record_id": self._required_text(row, "record_id"),
            "person": {
                "id_number": self._id_number(row),
                "name": _text(row["name"]) if not _blank(row.get("name")) else "",
                "organisation": self._optional_text(row, "organisation"),
                "organisation_uscc": (
                    None if _blank(row.get("organisation_uscc"))
                    else _uscc(row["organisation_uscc"])
                ),
            },
            "group": group,
            "category": category,
            "severity": severity,
            "domain": domain,
            "source_ref": self._optional_text(row, "source_ref"),
            "content": content,
        }

    # -- parts --

    def _error(self, code: str, key: str, value: Any, *, group: str | None = None,
               detail: str = "") -> RowError:
        message = self.messages.cell(code, _zh(key), key, value, group=group, detail=detail)
        return RowError(code, message, key)

    @staticmethod
    def _action(value: Any) -> str:
        if _blank(value):
            return "UPSERT"
        action = ACTION_WORDS.get(_text(value).lower())
        if action is None:
            raise cell_error(BAD_ACTION, "action", value)
        return action

    def _code(
        self, row: Mapping[str, Any], key: str, index: dict[str, str], code: str,
        default: str | None, *, group: str | None = None,
    ) -> str:
        value = row.get(key)
        if _blank(value):
            if default is not None:
                return default
            raise self._error(R.EMPTY_FIELD, key, value)
        found = self.names.lookup(index, _text(value))
        if found is None:
            raise self._error(code, key, value, group=group)
        return found

    def _required_text(self, row: Mapping[str, Any], key: str) -> str:
        if _blank(row.get(key)):
            raise self._error(R.EMPTY_FIELD, key, row.get(key))
        return _text(row[key])

    @staticmethod
    def _optional_text(row: Mapping[str, Any], key: str) -> str | None:
        return None if _blank(row.get(key)) else _text(row[key])

    def _id_number(self, row: Mapping[str, Any]) -> str:
        if _blank(row.get("id_number")):
            raise self._error(R.EMPTY_FIELD, "id_number", row.get("id_number"))
        return parse_id_number(row["id_number"])

    def _content(
        self, kind: str, row: Mapping[str, Any], occurred: date | None
    ) -> tuple[str, dict[str, Any]]:
        fields: dict[str, Any] = {}
        for column, name, required in _CONTENT_COLUMNS[kind]:
            value = row.get(column.key)
            if _blank(value) and column.key == "career_organisation":
                value = row.get("organisation")  # 从业单位 defaults to 工作单位
            if _blank(value):
                if kind == "note" and name == "attributes":
                    fields[name] = {}
                elif required:
                    raise self._error(R.EMPTY_FIELD, column.key, value)
                else:
                    fields[name] = None
                continue
            fields[name] = self._cell(column, value)
        if kind == "note":
            fields["event_date"] = occurred
        if kind == "penalty" and fields["penalty_types"] == []:
            raise self._error(R.EMPTY_FIELD, "penalty_types", row.get("penalty_types"))
        return (_KIND_RECORDS[kind], fields)

    @staticmethod
    def _cell(column: Column, value: Any) -> Any:
        kind = column.kind
        if kind == "text":
            return _text(value)
        if kind == "date":
            return parse_date(value, column.key)
        if kind == "decimal":
            return parse_decimal(value, column.key)
        if kind == "int":
            return parse_int(value, column.key)
        if kind == "float":
            return parse_float(value, column.key)
        if kind == "bool":
            return parse_bool(value, column.key)
        if kind == "list":
            return parse_list(value)
        if kind == "map":
            return parse_map(value, column.key)
        if kind == "uscc":
            return _uscc(value)
        raise AssertionError(f"no content column of kind {kind}")

    def _fallback_date(self, kind: str, row: Mapping[str, Any]) -> date:
        source = OCCURRED_FALLBACK.get(kind)
        if source is not None and not _blank(row.get(source)):
            return parse_date(row[source], source)
        if kind == "assessment" and not _blank(row.get("year")):
            return date(parse_int(row["year"], "year"), 12, 31)
        raise self._error(R.EMPTY_FIELD, "occurred_date", row.get("occurred_date"))
