"""Files the portal hands out: cells made safe for spreadsheet programs, the error report of an
upload, and the progress table (with the units' own texts) as .xlsx or .csv."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from creditbus.services.portal.store import Outcome, ProgressEntry
from creditbus.services.reports.csv_out import write_annex_csv
from creditbus.services.reports.progress import NOT_PUSHED, ProgressReport
from creditbus.services.reports.xlsx import write_xlsx

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
OUTCOME_ZH = {"accepted": "已入库", "duplicate": "重复", "rejected": "被拒绝",
              "pending": "已发送，待处理"}
ERROR_REPORT_HEADER = ("行号", "处理结果", "记录编号", "原因代码", "说明", "字段", "值")


def safe_cell(value: Any) -> Any:
    """Text that a spreadsheet program would run as a formula, kept as text (a leading ')."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def error_report_csv(outcomes: Sequence[Outcome]) -> bytes:
    """The rows that were not accepted, as CSV (UTF-8 with BOM, for Excel)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ERROR_REPORT_HEADER)
    for o in outcomes:
        writer.writerow([safe_cell(v) for v in (
            o.source_row, OUTCOME_ZH.get(o.outcome, o.outcome), o.record_id or "",
            o.reason or "", o.message or "", o.field or "", o.value or "")])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def with_unit_texts(report: ProgressReport,
                    entries: Mapping[str, ProgressEntry]) -> ProgressReport:
    """The report with each unit's own 出台文件名称, 下步打算 and 备注 where it saved them
    (是否建立 stays computed; a unit that pushed nothing keeps the computed note)."""
    rows = []
    for row in report.rows:
        entry = entries.get(row.unit_code)
        if entry is None:
            rows.append(row)
            continue
        remark = entry.remark.strip()
        if not row.established and NOT_PUSHED not in remark:
            remark = "；".join(p for p in (remark, NOT_PUSHED) if p)
        rows.append(replace(row, documents=entry.documents.strip(),
                            next_step=entry.next_step.strip(), remark=remark))
    return replace(report, rows=tuple(rows))


def _safe_report(report: ProgressReport) -> ProgressReport:
    rows = tuple(replace(r, documents=safe_cell(r.documents), next_step=safe_cell(r.next_step),
                         remark=safe_cell(r.remark)) for r in report.rows)
    return replace(report, rows=rows)


def progress_xlsx(report: ProgressReport) -> bytes:
    with tempfile.TemporaryDirectory(prefix="creditbus-portal-") as tmp:
        path = Path(tmp) / "report.xlsx"
        write_xlsx(_safe_report(report), path)
        return path.read_bytes()


def progress_csv(report: ProgressReport) -> bytes:
    with tempfile.TemporaryDirectory(prefix="creditbus-portal-") as tmp:
        path = Path(tmp) / "report.csv"
        write_annex_csv(_safe_report(report), path)
        return path.read_bytes()
