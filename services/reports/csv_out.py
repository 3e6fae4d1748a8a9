"""The progress table as CSV (UTF-8 with BOM, so that Excel detects the encoding): the annex
rows in one file, the facts per unit and group in another."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from creditbus.services.reports.progress import ANNEX_HEADER, FACTS_HEADER, ProgressReport


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_annex_csv(report: ProgressReport, path: Path) -> Path:
    return _write(path, ANNEX_HEADER, (r.annex_cells() for r in report.rows))


def write_facts_csv(report: ProgressReport, path: Path) -> Path:
    return _write(path, FACTS_HEADER, (f.cells() for f in report.facts))
