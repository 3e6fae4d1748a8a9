"""The progress table as .xlsx, laid out like the notice's annex.

Sheet 1 (建设情况表): title row, a line with the data source and time, the annex header and one
row per unit. Sheet 2 (档案统计): the facts per unit and group. Sheet 3 (人群汇总): per group,
with the definition of completeness below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from creditbus.services.reports.progress import (
    ANNEX_HEADER,
    COMPLETENESS_NOTE,
    FACTS_HEADER,
    FACTS_TITLE,
    GROUPS_HEADER,
    GROUPS_TITLE,
    TITLE,
    ProgressReport,
)
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

FONT = "宋体"
THIN = Side(style="thin", color="000000")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEADER_FILL = PatternFill("solid", fgColor="F2F2F2")
WRAP_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
WRAP_LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)

ANNEX_WIDTHS = (6, 16, 14, 36, 44, 28)
FACTS_WIDTHS = (6, 16, 26, 10, 12, 12, 21, 14, 14)
GROUPS_WIDTHS = (26, 50, 12, 10, 12, 14)
HEADER_ROW = 3
"""Row of the header on every sheet (1: title, 2: source and time)."""


def _title(ws: Worksheet, title: str, subtitle: str, columns: int) -> None:
    last = get_column_letter(columns)
    ws.merge_cells(f"A1:{last}1")
    ws["A1"] = title
    ws["A1"].font = Font(name=FONT, size=16, bold=True)
    ws["A1"].alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[1].height = 32
    ws.merge_cells(f"A2:{last}2")
    ws["A2"] = subtitle
    ws["A2"].font = Font(name=FONT, size=10)
    ws["A2"].alignment = Alignment(horizontal="right", vertical="center")


def _table(ws: Worksheet, header: Sequence[str], rows: Sequence[Sequence[Any]],
           widths: Sequence[int], left_columns: set[int]) -> None:
    for col, text in enumerate(header, 1):
        cell = ws.cell(HEADER_ROW, col, text)
        cell.font = Font(name=FONT, size=11, bold=True)
        cell.alignment = WRAP_CENTER
        cell.border = BORDER
        cell.fill = HEADER_FILL
    ws.row_dimensions[HEADER_ROW].height = 36
    for r, values in enumerate(rows, HEADER_ROW + 1):
        for col, value in enumerate(values, 1):
            cell = ws.cell(r, col, value)
            cell.font = Font(name=FONT, size=11)
            cell.alignment = WRAP_LEFT if col in left_columns else WRAP_CENTER
            cell.border = BORDER
            if isinstance(value, float):
                cell.number_format = "0.0"
    for col, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = ws.cell(HEADER_ROW + 1, 1)
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


def write_xlsx(report: ProgressReport, path: Path) -> Path:
    wb = Workbook()
    annex = wb.active
    annex.title = "建设情况表"
    _title(annex, TITLE, report.subtitle, len(ANNEX_HEADER))
    _table(annex, ANNEX_HEADER, [r.annex_cells() for r in report.rows], ANNEX_WIDTHS,
           left_columns={4, 5, 6})

    facts = wb.create_sheet("档案统计")
    _title(facts, FACTS_TITLE, report.subtitle, len(FACTS_HEADER))
    _table(facts, FACTS_HEADER, [f.cells() for f in report.facts], FACTS_WIDTHS,
           left_columns={3})

    groups = wb.create_sheet("人群汇总")
    _title(groups, GROUPS_TITLE, report.subtitle, len(GROUPS_HEADER))
    _table(groups, GROUPS_HEADER, [g.cells() for g in report.groups], GROUPS_WIDTHS,
           left_columns={1, 2})
    note_row = HEADER_ROW + len(report.groups) + 2
    groups.merge_cells(start_row=note_row, start_column=1, end_row=note_row,
                       end_column=len(GROUPS_HEADER))
    note = groups.cell(note_row, 1, "说明：" + COMPLETENESS_NOTE)
    note.font = Font(name=FONT, size=10)
    note.alignment = WRAP_LEFT
    groups.row_dimensions[note_row].height = 48

    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
