"""Reading department files: .xlsx (openpyxl, read-only), .csv (UTF-8 with or without BOM, or
GB18030) and .jsonl (one event per line in the JSON form of examples/events.jsonl).

A table yields its header row and then its data rows with the row number a spreadsheet program
shows (the header is row 1 when it is the first line); blank rows are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creditbus.errors import ConfigError

SUFFIXES = (".xlsx", ".csv", ".jsonl")


class TableError(ConfigError, ValueError):
    """The file cannot be read as a table (wrong type, unreadable, no header)."""


@dataclass
class Table:
    """An open table. Iterate `rows()` once; `close()` (or a with-block) releases the file."""

    path: Path
    headers: list[Any]
    header_row: int
    total: int | None
    """Number of data rows if known in advance (an upper bound for .xlsx: blank rows count)."""
    _rows: Iterator[tuple[int, list[Any]]] = field(repr=False)
    _close: Any = field(default=None, repr=False)

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(row number, cells) of every non-blank data row."""
        for number, cells in self._rows:
            if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
                yield number, cells

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_kind(path: Path) -> str:
    """'xlsx', 'csv' or 'jsonl' by suffix; TableError for anything else."""
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise TableError(f"{path.name}: old .xls files are not supported; save it as .xlsx")
    if suffix not in SUFFIXES:
        raise TableError(f"{path.name}: unsupported file type (use .xlsx, .csv or .jsonl)")
    return suffix[1:]


def open_table(path: Path) -> Table:
    """Open an .xlsx or .csv file; raise TableError (file problems) or OSError."""
    kind = file_kind(path)
    if kind == "xlsx":
        return _open_xlsx(path)
    if kind == "csv":
        return _open_csv(path)
    raise TableError(f"{path.name}: a .jsonl file holds events, not a table")


def _first_nonblank(rows: Iterator[tuple[int, list[Any]]]) -> tuple[int, list[Any]]:
    for number, cells in rows:
        if any(c is not None and str(c).strip() for c in cells):
            return number, cells
    raise TableError("the file has no header row")


def _open_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types on bad files
        raise TableError(f"{path.name}: not a readable .xlsx file ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise TableError(f"{path.name}: the workbook has no sheet")
        numbered = (
            (i, list(cells)) for i, cells in enumerate(sheet.iter_rows(values_only=True), 1)
        )
        header_row, headers = _first_nonblank(numbered)
        max_row = sheet.max_row
        if not isinstance(max_row, int):  # no <dimension> (e.g. files of write-only writers)
            max_row = _count_row_tags(path, getattr(sheet, "_worksheet_path", None))
    except BaseException:
        book.close()
        raise
    total = max_row - header_row if isinstance(max_row, int) else None
    return Table(path, headers, header_row, total, numbered, book.close)


_ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s>/]")


def _count_row_tags(path: Path, member: str | None) -> int | None:
    """The number of <row> elements of a sheet, by a byte scan of its XML (fast, for progress)."""
    if not member:
        return None
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member.lstrip("/")) as xml:
            count, tail = 0, b""
            while chunk := xml.read(1 << 20):
                data = tail + chunk
                count += len(_ROW_TAG.findall(data))
                # keep a short tail (without a complete tag) for a tag cut at the boundary
                cut = max(data.rfind(b"<"), len(data) - 16)
                tail = data[cut:]
                count -= len(_ROW_TAG.findall(tail))
            return count + len(_ROW_TAG.findall(tail))
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


def decode_csv_bytes(data: bytes) -> str:
    """UTF-8 (BOM or not) first; GB18030 (which includes GBK and GB2312) as the fallback."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise TableError("the CSV file is neither UTF-8 nor GB18030 text") from None


def _open_csv(path: Path) -> Table:
    try:
        text = decode_csv_bytes(path.read_bytes())
    except TableError as exc:
        raise TableError(f"{path.name}: {exc}") from None
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    numbered = iter([(i, list(cells)) for i, cells in enumerate(records, 1)])
    header_row, headers = _first_nonblank(numbered)
    return Table(path, headers, header_row, len(records) - header_row, numbered)


def read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON or the ValueError it raised) for every non-blank line."""
    try:
        text = decode_csv_bytes(path.read_bytes())
    except TableError as exc:
        raise TableError(f"{path.name}: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, exc


def count_jsonl(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
