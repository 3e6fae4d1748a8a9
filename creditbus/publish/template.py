"""The blank .xlsx a unit fills in (`creditbus template`): the importer's own headers, an
instructions sheet in Chinese, and drop-down lists from the catalog.

The first sheet is the one `creditbus publish` reads. Its headers are the Chinese headers of
`row_events.COLUMN_TABLE`: the common columns and the content columns of the categories the
unit (or the one group asked for) may publish. The columns of 人群类别, 信息类别, 严重程度 and
重点领域 only accept the catalog's names (Excel data validation, an error on anything else), so
a unit cannot type an unknown code; the lists live on a hidden sheet because lists written
inline are limited to 255 characters. 身份证号码 is formatted as text (an Excel number loses
the last digits), date columns as dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from creditbus.catalog.models import Catalog, Group
from creditbus.contract.models import CONTENT_KIND_RECORDS, CONTENT_MODELS, REPAIR_RECORD
from creditbus.contract.validation import common_categories
from creditbus.errors import ConfigError
from creditbus.publish.messages import BOOLEANS_ALLOWED, DATE_FORMATS
from creditbus.publish.row_events import ACTION_WORDS, COLUMNS, Column

DATA_SHEET: Final = "信用档案"
INSTRUCTIONS_SHEET: Final = "填写说明"
LISTS_SHEET: Final = "代码表"
ROWS: Final = 10_000
"""Data rows the drop-down lists and formats cover (rows 2..ROWS+1)."""

KIND_NAMES: Final[dict[str, str]] = {
    "penalty": "行政处罚类", "assessment": "年度考核类", "career": "从业履历类",
    "reward": "奖励表彰类", "complaint": "投诉申诉类", "training": "教育培训类",
    "qualification": "资质资格类", "note": "其他事项类", "repair": "信用修复（操作为“修复”）的行",
}
COMMON_REQUIRED: Final = frozenset({"name", "id_number", "group", "category", "record_id"})
HINTS: Final[dict[str, str]] = {
    "name": "人员姓名，与身份证一致",
    "id_number": "18 位公民身份号码，本列已设为文本格式，请勿改为数字",
    "organisation": "所在单位或企业名称",
    "organisation_uscc": "所在单位的 18 位统一社会信用代码",
    "group": "从下拉列表选择",
    "category": "从下拉列表选择；该类别决定本行还需填写哪些列（见下表）",
    "record_id": "本单位对该条记录的编号，保持不变；更新或撤销时填写同一编号",
    "occurred_date": "事实发生或生效的日期；内容自带日期的类别可留空（如处罚决定日期）",
    "severity": "失信类记录必填，从下拉列表选择；其他类别留空",
    "domain": "可留空（取人群类别的默认领域），或从下拉列表选择",
    "source_ref": "来源文件文号或业务系统编号，可留空",
    "action": "新增（默认，留空即可）或撤销",
    "penalty_types": "一项或多项，用顿号“、”分隔，如：警告、罚款",
    "fine_amount": "金额（元），最多两位小数，如 5000 或 5,000.00",
    "year": "如 2023",
    "hours": "数字，如 24 或 7.5",
    "substantiated": "是 或 否",
    "attributes": "可留空；格式：键=值；键=值",
    "repair_decision_date": "信用修复决定的日期，不晚于报送当天",
}
OPTIONAL_CONTENT: Final = frozenset({"attributes"})
"""Content columns the importer fills in when blank, though the model requires them."""
KIND_RECORDS: Final[dict[str, str]] = {**CONTENT_KIND_RECORDS, "repair": REPAIR_RECORD}
TYPE_HINTS: Final[dict[str, str]] = {
    "date": "日期，如 " + "、".join(DATE_FORMATS[:3]),
    "uscc": "18 位统一社会信用代码",
}
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_REQUIRED_FILL = PatternFill("solid", fgColor="FCE4D6")


class TemplateError(ConfigError, ValueError):
    """The unit or group cannot have a template (the message names the allowed values)."""


@dataclass(frozen=True)
class TemplateColumn:
    column: Column
    required: str
    """Chinese: 必填, 选填, or which rows need it."""
    hint: str


@dataclass(frozen=True)
class TemplateSpec:
    """What one template holds: for which unit and groups, which categories and columns."""

    unit_code: str
    unit_name: str
    groups: tuple[Group, ...]
    categories: tuple[tuple[str, str, str], ...]
    """(code, Chinese name, content kind) of every category the groups may carry."""
    columns: tuple[TemplateColumn, ...]

    @property
    def headers(self) -> list[str]:
        return [c.column.zh for c in self.columns]


def template_spec(catalog: Catalog, unit: str, group: str | None = None) -> TemplateSpec:
    """The template of `unit` (a code), for all its groups or the one `group` (a code)."""
    entry = catalog.unit(unit)
    if not entry.groups:
        raise TemplateError(f"unit {unit} ({entry.name_zh}) publishes for no group of the "
                            "catalog, so it has no template")
    if group is not None and group not in entry.groups:
        names = "、".join(f"{catalog.group(g).name_zh} ({g})" for g in entry.groups)
        raise TemplateError(f"unit {unit} ({entry.name_zh}) is not responsible for group "
                            f"{group}; its groups: {names}")
    groups = tuple(catalog.group(g) for g in ((group,) if group else entry.groups))
    allowed = set(common_categories(catalog))
    for g in groups:
        allowed |= set(g.required_categories)
    categories = tuple((c.code, c.name_zh, c.content_kind) for c in catalog.categories
                       if c.code in allowed)
    kinds = {kind for _code, _name, kind in categories}
    dishonesty = any(catalog.category(code).dishonesty for code, _n, _k in categories)
    columns = []
    for column in COLUMNS:
        if column.key == "unit" or (column.key == "severity" and not dishonesty):
            continue  # the unit is the one publishing; severity only for dishonesty records
        kind = column.content_kind
        if kind == "repair" and not dishonesty:
            continue  # only dishonesty records are repaired
        if kind is not None and kind in CONTENT_KIND_RECORDS and kind not in kinds:
            continue
        columns.append(TemplateColumn(column, _required(column, len(groups)), _hint(column)))
    return TemplateSpec(entry.code, entry.name_zh, groups, categories, tuple(columns))


def _required(column: Column, groups: int) -> str:
    if column.key == "group" and groups == 1:
        return "选填（仅一个人群类别时可留空）"
    if column.key in COMMON_REQUIRED:
        return "必填"
    if column.key == "severity":
        return "失信类记录必填"
    kind = column.content_kind
    if kind is None or kind not in KIND_RECORDS or column.field is None:
        return "选填"
    model = CONTENT_MODELS[KIND_RECORDS[kind]]
    info = model.model_fields.get(column.field.removeprefix("content."))
    what = KIND_NAMES.get(kind, kind)
    required = info is not None and info.is_required() and column.key not in OPTIONAL_CONTENT
    return f"{what}必填" if required else f"{what}选填"


def _hint(column: Column) -> str:
    return HINTS.get(column.key) or TYPE_HINTS.get(column.kind, "")


def build_template(catalog: Catalog, unit: str, group: str | None = None) -> Workbook:
    """The workbook of `template_spec(catalog, unit, group)`."""
    spec = template_spec(catalog, unit, group)
    book = Workbook()
    data = book.active
    assert isinstance(data, Worksheet)
    data.title = DATA_SHEET
    instructions = book.create_sheet(INSTRUCTIONS_SHEET)
    lists = book.create_sheet(LISTS_SHEET)
    lists.sheet_state = "hidden"
    _data_sheet(data, spec)
    _lists(data, lists, spec, catalog)
    _instructions(instructions, spec, catalog)
    return book


def write_template(path: Path, catalog: Catalog, unit: str, group: str | None = None) -> Path:
    path = Path(path)
    build_template(catalog, unit, group).save(path)
    return path


def default_file_name(catalog: Catalog, unit: str, group: str | None = None) -> str:
    name = catalog.unit(unit).name_zh
    if group is not None:
        name += f"-{catalog.group(group).name_zh}"
    return f"{name}信用档案填报模板.xlsx"


# --- the sheets -----------------------------------------------------------------------------


def _data_sheet(sheet: Worksheet, spec: TemplateSpec) -> None:
    sheet.append(spec.headers)
    sheet.freeze_panes = "A2"
    for index, item in enumerate(spec.columns, 1):
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True)
        cell.fill = _REQUIRED_FILL if item.required == "必填" else _HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center")
        note = item.required + (f"。{item.hint}" if item.hint else "")
        cell.comment = Comment(note, "creditbus", width=260, height=90)
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(12, 2.2 * len(item.column.zh) + 2)
        fmt = _number_format(item.column)
        if fmt is not None:  # a column style: the cells typed in later take it
            sheet.column_dimensions[letter].number_format = fmt


def _number_format(column: Column) -> str | None:
    if column.kind in ("id", "uscc", "text"):
        return "@"  # text: Excel keeps the digits as typed
    if column.kind == "date":
        return "yyyy-mm-dd"
    return None


def _lists(data: Worksheet, lists: Worksheet, spec: TemplateSpec, catalog: Catalog) -> None:
    """One column of `lists` per drop-down; a data validation on the data column using it."""
    choices: dict[str, Sequence[str]] = {
        "group": [g.name_zh for g in spec.groups],
        "category": [name for _code, name, _kind in spec.categories],
        "severity": [s.name_zh for s in catalog.severities],
        "domain": [d.name_zh for d in catalog.domains],
        "action": action_words(),
        "substantiated": list(BOOLEANS_ALLOWED),
    }
    position = {item.column.key: i for i, item in enumerate(spec.columns, 1)}
    list_column = 0
    for key, values in choices.items():
        if key not in position:
            continue
        list_column += 1
        letter = get_column_letter(list_column)
        lists.cell(row=1, column=list_column, value=_header_of(spec, key))
        for row, value in enumerate(values, 2):
            lists.cell(row=row, column=list_column, value=value)
        source = (f"{quote_sheetname(LISTS_SHEET)}!${letter}$2:"
                  f"${letter}${len(values) + 1}")
        validation = DataValidation(
            type="list", formula1=source, allow_blank=True, showDropDown=False,
            showErrorMessage=True, errorStyle="stop", errorTitle="无效的值",
            error=f"{_header_of(spec, key)}只能从下拉列表中选择。",
            showInputMessage=True, promptTitle=_header_of(spec, key),
            prompt="请从下拉列表中选择")
        target = get_column_letter(position[key])
        validation.add(f"{target}2:{target}{ROWS + 1}")
        data.add_data_validation(validation)


def action_words() -> list[str]:
    """The first Chinese word of each action the importer knows (新增, 撤销, ...)."""
    words: dict[str, str] = {}
    for word, action in ACTION_WORDS.items():
        if not word.isascii():
            words.setdefault(action, word)
    return list(words.values())


def _header_of(spec: TemplateSpec, key: str) -> str:
    return next(c.column.zh for c in spec.columns if c.column.key == key)


def _instructions(sheet: Worksheet, spec: TemplateSpec, catalog: Catalog) -> None:
    groups = "、".join(g.name_zh for g in spec.groups)
    lines: list[Sequence[str]] = [
        (f"{spec.unit_name}重点人群信用档案填报模板",),
        (f"适用人群类别：{groups}",),
        ("",),
        ("填写要求",),
        ("1. 在“信用档案”工作表中每行填写一条记录，不要修改或删除表头，不要合并单元格。",),
        ("2. 人群类别、信息类别、严重程度、重点领域只能从下拉列表选择；输入其他内容会被拒绝。",),
        ("3. 身份证号码一列已设为文本格式，请完整填写 18 位号码，不要改为数字格式。",),
        ("4. 日期可填 " + "、".join(DATE_FORMATS) + "。",),
        ("5. 同一条记录更新时沿用原记录编号重新报送；撤销时“操作”选“撤销”，并填写发生日期；"
         "失信记录经信用修复后，沿用原记录编号、“操作”选“修复”，并填写修复决定的各列。",),
        ("6. 填好后由本单位报送（creditbus publish --unit " + spec.unit_code + " 文件名 --wait），"
         "或交信用办导入；报送后可查看每一行的回执（已接收、重复、被拒及原因）。",),
        ("7. 被拒的行在错误报告中列出行号、列名、填写的值（身份证号码已遮蔽）和原因，"
         "改正后只需重新报送这些行。",),
        ("",),
        ("各列说明", "是否必填", "填写说明"),
    ]
    lines += [(c.column.zh, c.required, c.hint) for c in spec.columns]
    lines += [("",), ("信息类别与需填写的内容", "内容类型", "需填写的列")]
    for _code, name, kind in spec.categories:
        needed = [c.column.zh for c in spec.columns if c.column.content_kind == kind]
        lines.append((name, KIND_NAMES.get(kind, kind), "、".join(needed)))
    titles = {lines[0][0], "填写要求", "各列说明", "信息类别与需填写的内容"}
    for number, line in enumerate(lines, 1):
        sheet.append(list(line))
        if line[0] in titles:
            for column in range(1, len(line) + 1):
                sheet.cell(row=number, column=column).font = Font(bold=True)
    sheet.column_dimensions["A"].width = 30
    sheet.column_dimensions["B"].width = 22
    sheet.column_dimensions["C"].width = 80
