"""The per-row outcome of an import that waited for its receipts (`creditbus publish --wait`):
one line per row of the file, in Chinese for the unit's clerks, CSV with BOM for Excel.

结果 is one of 已接收 (accepted, with the archive version), 重复 (a duplicate: the bus's
content or event-id duplicate, or a repeat of an earlier row of the same file, not sent),
退回 (rejected: before sending, or by the bus) and 未回执 (no receipt within the wait).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from creditbus.identity import redact
from creditbus.receipts import OUTCOME_NAMES_ZH

UNANSWERED: Final = "unanswered"
NO_RECEIPT: Final = "NO_RECEIPT"
DUPLICATE_IN_FILE: Final = "DUPLICATE_IN_FILE"
NAMES_ZH: Final[dict[str, str]] = {**OUTCOME_NAMES_ZH, UNANSWERED: "未回执"}
HEADER: Final = ("行号(row)", "结果(outcome)", "原因代码(code)", "说明(message)",
                 "档案版本(version)", "记录编号(record_id)", "事件编号(event_id)")


@dataclass(frozen=True)
class RowOutcome:
    row: int
    outcome: str  # accepted | duplicate | rejected | unanswered
    code: str
    message: str
    version: int | None = None
    record_id: str = ""
    event_id: str = ""


def no_receipt_message(timeout_s: float) -> str:
    return (f"整条记录：已发送，但 {timeout_s:.0f} 秒内未收到总线的回执；稍后可用 "
            "creditbus receipts list 查询，重新导入不会重复计数")


def duplicate_in_file_message(first_row: int) -> str:
    return f"整条记录：与第 {first_row} 行完全相同，未重复发送"


def write_receipt_report(path: Path, rows: list[RowOutcome]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for r in sorted(rows, key=lambda r: r.row):
            writer.writerow((r.row, NAMES_ZH.get(r.outcome, r.outcome), r.code,
                             redact(r.message), "" if r.version is None else r.version,
                             r.record_id, r.event_id))


def read_receipt_report(path: Path) -> list[dict[str, str]]:
    """Rows of a receipt report as dicts keyed row, outcome, code, message, version,
    record_id, event_id (outcome in Chinese, as written)."""
    keys = ("row", "outcome", "code", "message", "version", "record_id", "event_id")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        return [dict(zip(keys, r, strict=True)) for r in reader]
