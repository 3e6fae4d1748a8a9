"""The messages of the import error report, in Chinese for the units' clerks.

Every message names the field, shows the value found (identity numbers masked with `mask_id`,
names masked but for their first character; `（空）` for a blank cell) and says what is wrong;
for codes (人群类别, 信息类别, 严重程度, ...) it lists what may be filled in, from the catalog. The
reason codes stay the machine-readable part of the report; validation's own messages
(`EventRejected.message`) stay English for logs and developers.

A message reads ``<字段>“<值>”：<问题>；可填：<允许值>``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final

from creditbus.catalog.models import Catalog
from creditbus.contract import reasons as R
from creditbus.contract.models import CONTENT_KIND_RECORDS, DATE_PAIRS
from creditbus.contract.validation import EventRejected, common_categories
from creditbus.identity import mask_id, redact

BLANK: Final = "（空）"
SHOWN_MAX = 30
"""Longer values are cut to this many characters (and `…`)."""

# Fields of the event that have no column of their own, and their Chinese names.
FIELD_NAMES: Final[dict[str, str]] = {
    "event_id": "事件编号",
    "published_at": "发布时间",
    "occurred_at": "发生日期",
    "unit": "填报单位",
    "action": "操作",
    "record_id": "记录编号",
    "person": "人员信息",
    "person.id_number": "身份证号码",
    "person.name": "姓名",
    "person.organisation": "工作单位",
    "person.organisation_uscc": "统一社会信用代码",
    "person.sealed": "加密字段",
    "group": "人群类别",
    "category": "信息类别",
    "severity": "严重程度",
    "domain": "重点领域",
    "source_ref": "信息来源",
    "content": "信息内容",
}
WHOLE_EVENT: Final = "整条记录"

ACTIONS_ALLOWED: Final = ("新增", "更新", "修改", "变更", "撤销", "撤回", "删除", "修复")
BOOLEANS_ALLOWED: Final = ("是", "否")
DATE_FORMATS: Final = ("2024-02-26", "2024/2/26", "2024年2月26日", "20240226", "Excel 日期")
STATIC_ALLOWED: Final[dict[str, tuple[str, ...]]] = {
    "BAD_ACTION": ACTIONS_ALLOWED,
    "BAD_BOOLEAN": BOOLEANS_ALLOWED,
    "BAD_DATE": DATE_FORMATS,
}
"""What may be filled in, for the import's own codes that need no catalog."""

# What is wrong, by reason code. Codes missing here get a generic sentence (see `problem`).
PROBLEMS: Final[dict[str, str]] = {
    R.SCHEMA_MISMATCH: "类型或格式不符合数据规范",
    R.BAD_EVENT_ID: "不是 64 位小写十六进制字符（SHA-256）；可留空，由系统生成",
    R.UNKNOWN_UNIT: "不是目录中的单位",
    R.TOPIC_UNIT_MISMATCH: "与本次导入的单位不一致，可留空",
    R.UNKNOWN_GROUP: "不是目录中的人群类别代码或名称",
    R.UNIT_NOT_RESPONSIBLE: "本单位不负责该人群类别",
    R.UNKNOWN_CATEGORY: "不是目录中的信息类别代码或名称",
    R.CATEGORY_NOT_FOR_GROUP: "不是该人群类别的档案内容",
    R.UNKNOWN_DOMAIN: "不是 16 个重点领域之一",
    R.UNKNOWN_SEVERITY: "无法识别",
    R.SEVERITY_REQUIRED: "失信记录必须填写严重程度",
    R.SEVERITY_NOT_APPLICABLE: "该信息类别不是失信记录，严重程度应留空",
    R.CONTENT_MISMATCH: "信息内容与信息类别不符",
    R.REPAIR_NOT_APPLICABLE: "该信息类别不是失信记录，无需信用修复",
    R.EMPTY_FIELD: "必填，不能为空",
    R.FIELD_TOO_LONG: "超过长度上限",
    R.BAD_NAME: "姓名为空，或含有控制字符、不可见字符",
    R.BAD_TEXT: "含有控制字符",
    R.FUTURE_DATE: "晚于明天，不能是将来的日期",
    R.DATE_ORDER: "日期先后矛盾",
    R.OUT_OF_RANGE: "超出允许范围",
    "ID_LEGACY_15": "是 15 位旧号码，请填写 18 位公民身份号码",
    "ID_LENGTH": "不是 18 位",
    "ID_CHARSET": "应为 17 位数字加 1 位数字或 X",
    "ID_CHECKSUM": "校验位（第 18 位）不正确，请核对号码",
    "ID_DIVISION": "前两位不是省级行政区划代码",
    "ID_BIRTH_DATE": "第 7 至 14 位不是有效的出生日期（或早于 1900 年、晚于今天）",
    "USCC_LENGTH": "不是 18 位",
    "USCC_CHARSET": "含有代码字符集之外的字符（不使用 I、O、Z、S、V）",
    "USCC_REGISTRATION_DEPT": "第 1 位（登记管理部门）无效",
    "USCC_ORG_TYPE": "第 2 位（机构类别）对该登记管理部门无效",
    "USCC_DIVISION": "第 3 至 8 位（行政区划码）应为数字",
    "USCC_CHECKSUM": "校验位（第 18 位）不正确，请核对代码",
    "BAD_DATE": "不是日期",
    "BAD_NUMBER": "不是数字",
    "BAD_BOOLEAN": "无法识别",
    "BAD_ACTION": "无法识别",
    "BAD_ATTRIBUTES": "格式不对，应为“键=值；键=值”，或值均为文本的 JSON 对象",
    "ID_STORED_AS_NUMBER": "以数字格式保存，末几位已丢失；请把该列设为文本格式后重新填写号码",
    "BAD_JSON": "不符合 JSON 格式的数据规范",
    "DELIVERY_FAILED": "数据有效，但消息服务器未确认接收",
}

# from_json's English descriptions of what it expected (creditbus.contract.jsonform).
_EXPECTED: Final[tuple[tuple[str, str], ...]] = (
    ("timestamp", "应为带时区的 ISO 8601 时间，如 2024-03-04T09:30:00+08:00"),
    ("date", "应为日期 YYYY-MM-DD"),
    ("decimal", "应为金额文本，如 \"5000.00\""),
    ("a string", "应为文本"),
    ("an integer", "应为整数"),
    ("a number", "应为数字"),
    ("true or false", "应为 true 或 false"),
    ("an array", "应为数组"),
    ("an object", "应为 JSON 对象"),
    ("Type", "应为 {\"类型名\": {...}}，如 {\"Penalty\": {...}}"),
    ("required field missing", "缺少该字段"),
    ("does not match the schema", "缺少必填字段，或字段类型不对"),
)
_UNKNOWN_FIELDS = re.compile(r"unknown fields: (.+)$")
_LIMIT = re.compile(r"more than (\d+) (characters|items)")
_EVENT_SIZE = re.compile(r"the event is (\d+) bytes encoded; the limit is (\d+)")


def mask_name(name: str) -> str:
    """A person's name for the report: its first character, the others as `*`."""
    text = name.strip()
    return text[:1] + "*" * (len(text) - 1) if text else ""


def shown(field: str | None, value: Any) -> str:
    """A value as the report shows it, quoted: personal data masked, long text cut."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return BLANK
    if field in ("id_number", "person.id_number"):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value)))
        return f"“{mask_id(text)}”"
    if field in ("name", "person.name"):
        return f"“{mask_name(str(value))}”"
    return f"“{_cut(redact(_plain(value)))}”"  # masked before cut: no partial numbers


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return value[0].rsplit(".", 1)[-1]  # a tagged content: its type
    if isinstance(value, list | tuple):
        return "、".join(_plain(v) for v in value)
    if isinstance(value, Mapping):
        if len(value) == 1 and isinstance(next(iter(value)), str):
            return next(iter(value))  # the JSON form's content: its type
        return "；".join(f"{k}={_plain(v)}" for k, v in value.items())
    return str(value).strip()


def _cut(text: str) -> str:
    text = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in text)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def message(label: str, value: str, code: str, *, detail: str = "",
            allowed: Iterable[str] = (), problem: str | None = None) -> str:
    """``<label><value>：<problem>[（detail）][；可填：allowed]``; `value` as `shown` gives it,
    `problem` by default the code's sentence (`PROBLEMS`)."""
    text = f"{label}{value}：{problem or PROBLEMS.get(code, '不符合要求')}"
    if detail:
        text += f"（{detail}）"
    listed = list(allowed)
    if listed:
        text += "；可填：" + "、".join(listed)
    return text


def odd_character(value: Any) -> str:
    """Where the first control or invisible character of a text is, e.g. `第 2 个字符 U+200B`."""
    for i, char in enumerate(str(value or "")):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"第 {i + 1} 个字符 U+{ord(char):04X}"
    return ""


def json_expectation(english: str) -> str:
    """The Chinese for what `from_json` or pydantic expected, from their English message."""
    unknown = _UNKNOWN_FIELDS.search(english)
    if unknown:
        return f"含有规范之外的字段：{unknown[1]}"
    for key, chinese in _EXPECTED:
        if key in english:
            return chinese
    return ""


def delivery_detail(error: str | None) -> str:
    """The reason of a failed delivery: Chinese, with librdkafka's error code when there is one."""
    code = re.search(r"code=(\w+)", error or "")
    if code is not None and code[1] == "_MSG_TIMED_OUT":
        return "发送超时，错误代码 _MSG_TIMED_OUT；请在消息服务器恢复后重新导入该文件，不会重复计数"
    if code is not None:
        return f"错误代码 {code[1]}；请重新导入该文件，不会重复计数"
    return "在限定时间内未得到确认；请重新导入该文件，不会重复计数"


class ReportMessages:
    """Builds the report's messages for imports of one unit, with the catalog's Chinese names."""

    def __init__(self, catalog: Catalog, unit: str) -> None:
        self.catalog = catalog
        self.unit = catalog.unit(unit)
        self._core = common_categories(catalog)
        self._group_names = {g.code: g.name_zh for g in catalog.groups}
        self._category_names = {c.code: c.name_zh for c in catalog.categories}

    # -- allowed values ---------------------------------------------------------------------

    def unit_groups(self) -> list[str]:
        return [self._group_names.get(g, g) for g in self.unit.groups]

    def group_categories(self, group: str | None) -> list[str]:
        """The categories allowed for `group` (its own list and the common core), or every
        category when the group is unknown."""
        if group is None or group not in self._group_names:
            return [c.name_zh for c in self.catalog.categories]
        allowed = set(self.catalog.group(group).required_categories) | self._core
        return [c.name_zh for c in self.catalog.categories if c.code in allowed]

    def severities(self) -> list[str]:
        return [s.name_zh for s in self.catalog.severities]

    def domains(self) -> list[str]:
        return [d.name_zh for d in self.catalog.domains]

    def unit_name(self) -> str:
        return self.unit.name_zh

    def group_name(self, code: str | None) -> str:
        return self._group_names.get(code or "", code or "")

    def category_name(self, code: str | None) -> str:
        return self._category_names.get(code or "", code or "")

    def allowed(self, code: str, group: str | None) -> Sequence[str]:
        """What may be filled in instead, for the reason codes that concern a code column."""
        if code in (R.UNKNOWN_GROUP, R.UNIT_NOT_RESPONSIBLE):
            return self.unit_groups()
        if code in (R.UNKNOWN_CATEGORY, R.CATEGORY_NOT_FOR_GROUP):
            return self.group_categories(group)
        if code in (R.UNKNOWN_SEVERITY, R.SEVERITY_REQUIRED):
            return self.severities()
        if code == R.UNKNOWN_DOMAIN:
            return self.domains()
        if code in (R.UNKNOWN_UNIT, R.TOPIC_UNIT_MISMATCH):
            return [self.unit_name()]
        return STATIC_ALLOWED.get(code, ())

    # -- messages -----------------------------------------------------------------------------

    def cell(self, code: str, label: str, key: str | None, value: Any, *,
             group: str | None = None, detail: str = "") -> str:
        """The message of a cell that cannot be read (a `RowError`)."""
        if code == R.UNIT_NOT_RESPONSIBLE:
            detail = detail or f"本单位：{self.unit_name()}"
        return message(label, shown(key, value), code, detail=detail,
                       allowed=self.allowed(code, group))

    def rejection(self, exc: EventRejected, label: str, value: Any,
                  event: Mapping[str, Any]) -> str:
        """The message of an event that validation refused; `value` is what the file holds
        for the field (the cell, or the event's value), `event` the converted event."""
        code, field = exc.code, exc.field
        group, category = event.get("group"), event.get("category")
        detail, problem = "", None
        if code == R.UNIT_NOT_RESPONSIBLE:
            detail = f"本单位：{self.unit_name()}"
        elif code == R.CATEGORY_NOT_FOR_GROUP:
            detail = f"人群类别：{self.group_name(group)}"
        elif code in (R.SEVERITY_REQUIRED, R.SEVERITY_NOT_APPLICABLE):
            detail = f"信息类别：{self.category_name(category)}"
        elif code == R.CONTENT_MISMATCH:
            detail = f"信息类别：{self.category_name(category)}"
            if isinstance(category, str) and self.catalog.has("category", category):
                kind = self.catalog.category(category).content_kind
                return message(label, shown(field, value), code, detail=detail,
                               allowed=[CONTENT_KIND_RECORDS[kind].rsplit(".", 1)[-1]])
        elif code in (R.BAD_NAME, R.BAD_TEXT):
            detail = odd_character(value)
        elif code == R.FIELD_TOO_LONG:
            detail = _too_long(exc.message, value)
        elif code == R.DATE_ORDER:
            detail = _date_order(field, event)
        elif code == R.OUT_OF_RANGE:
            detail = _out_of_range(field)
        elif code == R.EMPTY_FIELD and "optional" in exc.message:
            problem = "只有空格；可选项不填时请留空（null）"
        elif code == R.SCHEMA_MISMATCH:
            detail = json_expectation(exc.message)
        if field is None:
            label, value = WHOLE_EVENT, None
        shown_value = shown(field, value) if field is not None else ""
        return message(label, shown_value, code, detail=detail, problem=problem,
                       allowed=self.allowed(code, group if isinstance(group, str) else None))


def value_at(event: Mapping[str, Any], field: str | None) -> Any:
    """The value of a dotted field path in an event of either form (None if absent)."""
    if field is None:
        return None
    value: Any = event
    for part in field.split("."):
        if isinstance(value, tuple) and len(value) == 2:  # tagged content
            value = value[1]
        elif isinstance(value, Mapping) and part not in value and len(value) == 1:
            value = next(iter(value.values()))  # the JSON form's {"Penalty": {...}}
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def field_label(field: str | None) -> str:
    """The Chinese name of an event field path without a column (`published_at` -> 发布时间)."""
    if field is None:
        return WHOLE_EVENT
    return FIELD_NAMES.get(field, field)


def _too_long(english: str, value: Any) -> str:
    size = _EVENT_SIZE.search(english)
    if size:
        return f"编码后 {size[1]} 字节，上限 {size[2]} 字节"
    limit = _LIMIT.search(english)
    if limit is None:
        return ""
    unit = "个字" if limit[2] == "characters" else "项"
    count = len(value) if isinstance(value, str | list | tuple | dict) else None
    now = f"，现为 {count} {unit}" if count is not None else ""
    return f"上限 {limit[1]} {unit}{now}"


def _date_order(field: str | None, event: Mapping[str, Any]) -> str:
    name = (field or "").removeprefix("content.")
    content = event.get("content")
    if isinstance(content, tuple) and len(content) == 2:
        for earlier, later in DATE_PAIRS.get(content[0], ()):
            if later == name:
                before = content[1].get(earlier)
                return f"早于{_date_label(earlier)}“{_plain(before)}”"
    return "早于本人出生日期（由身份证号码得出）"


_CONTENT_DATE_NAMES: Final[dict[str, str]] = {
    "decision_date": "处罚决定日期", "disclosure_until": "公示截止期",
    "start_date": "起始日期", "end_date": "终止日期",
    "issued_date": "发证日期", "valid_until": "有效期至",
}


def _date_label(name: str) -> str:
    return _CONTENT_DATE_NAMES.get(name, name)


def _out_of_range(field: str | None) -> str:
    if field == "content.fine_amount":
        return "应为不小于 0、小于 10 的 16 次方元的金额，最多两位小数"
    if field == "content.hours":
        return "应大于 0 且不超过 10000"
    if field == "content.year":
        return "不能早于 1949 年"
    return ""
