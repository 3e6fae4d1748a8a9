"""`creditbus publish --unit <code> FILE`: import a department's .xlsx / .csv / .jsonl file.

Valid rows are published to the unit's raw topic; the rest go to a per-row error report (CSV,
UTF-8 with BOM for Excel). Exit code 0: everything published; 1: some rows rejected (report
written); 2: usage or file error (nothing published). Re-importing a file publishes the same
event ids again, which the streams drop as exact duplicates.

With `--wait` the command then waits for the bus's receipt of every published row
(docs/receipts.md): the rows the bus rejected join the error report, every row's outcome goes
to a receipt report (FILE.receipts.csv), and the exit code is 1 when any row was rejected or
has no receipt when the wait ends.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import KafkaException

from creditbus.catalog import Catalog, CatalogError, default_catalog
from creditbus.contract.schemas import SchemaStoreError
from creditbus.contract.validation import EventRejected
from creditbus.errors import ConfigError, CreditbusError
from creditbus.identity import redact
from creditbus.kafka.clientlog import LOGGER_NAME
from creditbus.logsetup import configure_logging
from creditbus.publish.messages import (
    FIELD_NAMES,
    WHOLE_EVENT,
    ReportMessages,
    delivery_detail,
    field_label,
    json_expectation,
    message,
    shown,
    value_at,
)
from creditbus.publish.producer import (
    CreditPublisher,
    DeliveryResult,
    EventEncoder,
    PreparedEvent,
    default_wire,
    resolve_unit,
)
from creditbus.publish.receipt_report import (
    DUPLICATE_IN_FILE,
    NO_RECEIPT,
    UNANSWERED,
    RowOutcome,
    duplicate_in_file_message,
    no_receipt_message,
    write_receipt_report,
)
from creditbus.publish.row_events import (
    BAD_JSON,
    COLUMNS_BY_KEY,
    DELIVERY_FAILED,
    HeaderError,
    HeaderMap,
    RowConverter,
    RowError,
    column_for_field,
    map_headers,
)
from creditbus.publish.spreadsheet import TableError, count_jsonl, file_kind, open_table, read_jsonl
from creditbus.receipts import ACCEPTED, DUPLICATE, REJECTED, Progress, Receipt, ReceiptsError
from creditbus.settings import Settings

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
REPORT_HEADER = ("行号(row)", "列(column)", "原因代码(code)", "说明(message)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="import a department file (.xlsx, .csv, .jsonl) and publish its records",
        description="Validate every row of FILE and publish the valid ones to the unit's topic; "
        "rejected rows go to an error report. Exit 0: all published; 1: some rows rejected; "
        "2: usage or file error.",
    )
    parser.add_argument("--unit", required=True, help="publishing unit (code or Chinese name)")
    parser.add_argument("file", metavar="FILE", type=Path, help=".xlsx, .csv or .jsonl file")
    parser.add_argument(
        "--error-report", type=Path, default=None,
        help="where to write the error report (default: FILE's name + .errors.csv, next to it, "
        "written only when rows are rejected)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate only, publish nothing")
    parser.add_argument(
        "--progress-every", type=int, default=0, metavar="N",
        help="progress line every N rows (default: about every 5%%, at least every 1000)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0,
        help="seconds to wait for the broker to confirm the last events (default 120)",
    )
    parser.add_argument(
        "--wait", action="store_true",
        help="then wait for the bus's receipt of every published row: rejected rows join the "
        "error report, every row's outcome goes to FILE.receipts.csv; exit 1 when a row was "
        "rejected or has no receipt in time",
    )
    parser.add_argument(
        "--wait-timeout", type=float, default=300.0, metavar="S",
        help="with --wait: seconds to wait for the receipts (default 300)",
    )
    parser.add_argument(
        "--receipt-report", type=Path, default=None,
        help="with --wait: where to write the per-row outcomes (default: FILE.receipts.csv)",
    )
    parser.set_defaults(func=run)


@dataclass
class Problem:
    row: int
    column: str
    code: str
    message: str


@dataclass
class Outcome:
    rows: int = 0
    queued: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    """Event id -> the row it was sent for."""
    skipped: list[tuple[int, int]] = field(default_factory=list)
    """(row, earlier row) of rows identical to an earlier row of the file, not sent."""


class _Usage(ConfigError):
    """A usage or file error: print it and exit 2."""


def run(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    err = out or sys.stderr
    try:
        return _run(args, err)
    except CreditbusError as exc:  # main's one error path, on this command's own stream
        print(f"error: {exc}", file=err)
        return exc.exit_code


def _run(args: argparse.Namespace, err: TextIO) -> int:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    if settings.log_level != "DEBUG":
        # transient client warnings (e.g. a broker still starting) would garble the progress
        # lines; lasting problems surface as failed deliveries in the report
        logging.getLogger(LOGGER_NAME).setLevel(logging.ERROR)
    try:
        catalog = default_catalog(settings.catalog_dir)
    except CatalogError as exc:
        raise _Usage(str(exc)) from None
    unit = _unit_code(catalog, args.unit)
    path: Path = args.file
    if not path.is_file():
        raise _Usage(f"{path}: no such file")
    try:
        kind = file_kind(path)
    except TableError as exc:
        raise _Usage(str(exc)) from None

    sink = _make_sink(settings, catalog, unit, dry_run=args.dry_run)
    outcome = Outcome()
    importer = _Importer(catalog, unit, sink, outcome, err, args.progress_every)
    try:
        if kind == "jsonl":
            importer.run_jsonl(path)
        else:
            importer.run_table(path)
    except (TableError, HeaderError, OSError) as exc:
        raise _Usage(f"{path.name}: {exc}") from None
    finally:
        failures = sink.finish(args.timeout)
    if failures and sink.publisher is not None and sink.publisher.last_error:
        print(f"broker: {redact(sink.publisher.last_error)}", file=err)
    for result in failures:
        outcome.problems.append(
            Problem(int(result.ref), "", DELIVERY_FAILED, delivery_message(result.error))
        )
    delivered = outcome.queued - len(failures)
    waited: list[RowOutcome] | None = None
    if args.wait and sink.publisher is not None:
        waited = _await_receipts(sink.publisher, outcome, failures, importer.column_of,
                                 args.wait_timeout, err)

    report = args.error_report
    if outcome.problems or report is not None:
        report = report or path.with_name(path.name + ".errors.csv")
        write_report(report, sorted(outcome.problems, key=lambda p: p.row))
    verb = "valid (dry run, nothing published)" if args.dry_run else "published"
    rejected_rows = len({p.row for p in outcome.problems})
    summary = f"{outcome.rows} rows: {delivered} {verb}, {rejected_rows} rejected"
    if outcome.duplicates:
        summary += f", {outcome.duplicates} exact duplicates of earlier rows skipped"
    if waited is not None:
        receipts = args.receipt_report or path.with_name(path.name + ".receipts.csv")
        write_receipt_report(receipts, waited)
        summary = _receipt_summary(outcome.rows, waited)
    print(summary, file=err)
    if waited is not None:
        print(f"receipt report: {receipts}", file=err)
    if outcome.problems:
        print(f"error report: {report}", file=err)
        return EXIT_REJECTED
    return EXIT_OK


def _unit_code(catalog: Catalog, text: str) -> str:
    try:
        return resolve_unit(catalog, text)
    except ValueError as exc:
        raise _Usage(str(exc)) from None


# --- where prepared events go -------------------------------------------------------------------


class _Sink:
    """Validates events (dry run) or validates and publishes them."""

    def __init__(self, encoder: EventEncoder, publisher: CreditPublisher | None) -> None:
        self.encoder = encoder
        self.publisher = publisher

    def prepare(self, event: dict[str, Any]) -> PreparedEvent:
        return self.encoder.prepare(event)

    def send(self, prepared: PreparedEvent, row: int) -> None:
        if self.publisher is not None:
            self.publisher.send(prepared, ref=row, row=row)

    def finish(self, timeout: float) -> list[DeliveryResult]:
        """Wait for the broker; return the events whose delivery failed (or never completed)."""
        if self.publisher is None:
            return []
        report = self.publisher.flush(timeout)
        failed = list(report.failed)
        if report.pending:
            failed += self.publisher.abandon_pending("not confirmed by the broker in time")
        return failed


def _make_sink(settings: Settings, catalog: Catalog, unit: str, *, dry_run: bool) -> _Sink:
    try:
        wire = default_wire(settings)
    except SchemaStoreError as exc:
        raise _Usage(str(exc)) from None
    if dry_run:
        return _Sink(EventEncoder(unit, catalog, wire), None)
    try:
        publisher = CreditPublisher(settings, unit, catalog=catalog, wire=wire)
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    try:
        publisher.ensure_topic()
    except Exception as exc:  # noqa: BLE001 - Kafka errors of many kinds: cannot reach broker
        raise _Usage(
            f"cannot create or find topic {publisher.topic} at {settings.bootstrap}: {exc}"
        ) from None
    return _Sink(publisher.encoder, publisher)


# --- the import loop ----------------------------------------------------------------------------


class _Importer:
    def __init__(
        self, catalog: Catalog, unit: str, sink: _Sink, outcome: Outcome, err: TextIO,
        every: int,
    ) -> None:
        self.catalog = catalog
        self.unit = unit
        self.sink = sink
        self.outcome = outcome
        self.err = err
        self.every = every
        self.total: int | None = None
        self.seen: set[str] = set()
        self.verb = "published" if sink.publisher is not None else "valid"
        self.messages = ReportMessages(catalog, unit)
        self.column_of: Callable[[str | None], str] = lambda field: field or ""
        """The file's column of an event field (for the bus's rejections)."""

    def run_table(self, path: Path) -> None:
        single_group = len(self.catalog.unit(self.unit).groups) == 1
        with open_table(path) as table:
            headers = map_headers(table.headers, group_optional=single_group)
            self.column_of = lambda field: headers.header_of(column_for_field(field, None))
            if headers.unknown:
                print(f"note: ignoring unknown column(s): {', '.join(headers.unknown)}",
                      file=self.err)
            self.total = table.total
            converter = RowConverter(self.catalog, self.unit)
            for number, cells in self._progress(table.rows()):
                values = headers.values(cells)
                try:
                    event = converter.convert(values)
                except RowError as exc:
                    self._reject(number, headers.header_of(exc.column), exc.code, exc.message)
                    continue
                kind = converter.names.content_kinds.get(event["category"])
                self._publish(number, event, _TableRow(headers, values, kind))

    def run_jsonl(self, path: Path) -> None:
        self.total = count_jsonl(path)
        for number, parsed in self._progress(read_jsonl(path)):
            if isinstance(parsed, Exception) or not isinstance(parsed, dict):
                text = message(WHOLE_EVENT, "", BAD_JSON, detail="该行不是 JSON 对象")
                self._reject(number, "", BAD_JSON, text)
                continue
            try:
                event = self.sink.encoder.to_datum(parsed)
            except EventRejected as exc:
                line = _JsonLine(parsed, self.catalog)
                value = shown(exc.field, line.value(exc.field)) if exc.field else ""
                text = message(line.label(exc.field), value, BAD_JSON,
                               detail=json_expectation(exc.message))
                self._reject(number, exc.field or "", BAD_JSON, text)
                continue
            self._publish(number, event, _JsonLine(parsed, self.catalog))

    def _publish(self, number: int, event: dict[str, Any], source: _TableRow | _JsonLine) -> None:
        try:
            prepared = self.sink.prepare(event)
        except EventRejected as exc:
            text = self.messages.rejection(exc, source.label(exc.field),
                                           source.value(exc.field, event), event)
            self._reject(number, source.column(exc.field), exc.code, text)
            return
        if prepared.event_id in self.seen:
            self.outcome.duplicates += 1
            self.outcome.skipped.append((number, self.outcome.sent[prepared.event_id]))
            return
        try:
            self.sink.send(prepared, number)
        except KafkaException as exc:  # refused locally by the client (not a broker answer)
            self._reject(number, "", DELIVERY_FAILED, delivery_message(str(exc)))
            return
        self.seen.add(prepared.event_id)
        self.outcome.sent[prepared.event_id] = number
        self.outcome.queued += 1

    def _reject(self, row: int, column: str, code: str, message: str) -> None:
        self.outcome.problems.append(Problem(row, column, code, redact(message)))

    def _progress(self, rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        every = self.every or max(100, min(1000, (self.total or 20_000) // 20))
        for item in rows:
            self.outcome.rows += 1
            yield item
            if self.outcome.rows % every == 0:
                self._print_progress()
        if self.outcome.rows % every:
            self._print_progress()

    def _print_progress(self) -> None:
        o = self.outcome
        total = f"/{self.total}" if self.total else ""
        print(f"{o.rows}{total} rows, {o.queued} {self.verb}, {len(o.problems)} errors",
              file=self.err, flush=True)


class _TableRow:
    """A spreadsheet row: fields are named by the file's columns, values are its cells."""

    def __init__(self, headers: HeaderMap, values: dict[str, Any], kind: str | None) -> None:
        self.headers = headers
        self.values = values
        self.kind = kind

    def column(self, field: str | None) -> str:
        return self.headers.header_of(column_for_field(field, self.kind))

    def label(self, field: str | None) -> str:
        key = column_for_field(field, self.kind)
        return COLUMNS_BY_KEY[key].zh if key is not None else field_label(field)

    def value(self, field: str | None, event: Mapping[str, Any]) -> Any:
        cell = self.values.get(column_for_field(field, self.kind) or "")
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return value_at(event, field)  # e.g. 发生日期 taken from 处罚决定日期
        return cell


class _JsonLine:
    """A .jsonl line: fields are named by their path, values are the line's JSON values."""

    def __init__(self, obj: Mapping[str, Any], catalog: Catalog) -> None:
        self.obj = obj
        category = obj.get("category")
        self.kind = (
            catalog.category(category).content_kind
            if isinstance(category, str) and catalog.has("category", category) else None
        )

    def column(self, field: str | None) -> str:
        return field or ""

    def label(self, field: str | None) -> str:
        if field is None:
            return WHOLE_EVENT
        key = column_for_field(field, self.kind)
        name = FIELD_NAMES.get(field) or (COLUMNS_BY_KEY[key].zh if key else field)
        return f"{name}（{field}）"

    def value(self, field: str | None, event: Mapping[str, Any] | None = None) -> Any:
        return value_at(self.obj, field)


# --- waiting for the receipts ----------------------------------------------------------------


def _await_receipts(publisher: CreditPublisher, outcome: Outcome,
                    failures: list[DeliveryResult], column_of: Callable[[str | None], str],
                    timeout_s: float, err: TextIO) -> list[RowOutcome]:
    """Wait for the receipts of the delivered rows; add the bus's rejections and the rows
    without a receipt to the problems; every row's outcome."""
    failed = {r.event_id for r in failures}
    awaited = {eid: row for eid, row in outcome.sent.items() if eid not in failed}
    printed = [0.0]

    def progress(p: Progress) -> None:
        now = time.monotonic()
        if now - printed[0] >= 1.0 or p.waiting == 0:
            printed[0] = now
            print(f"receipts: {p.accepted} accepted, {p.duplicate} duplicate, "
                  f"{p.rejected} rejected, {p.waiting} waiting", file=err, flush=True)

    print(f"waiting up to {timeout_s:.0f} s for the receipts of {len(awaited)} rows",
          file=err, flush=True)
    try:
        got = publisher.wait_for_receipts(set(awaited), timeout_s=timeout_s,
                                          on_progress=progress)
    except ReceiptsError as exc:
        print(f"receipts: {exc}", file=err)
        got = {}
    rows: list[RowOutcome] = []
    for event_id, row in awaited.items():
        receipt = got.get(event_id)
        if receipt is None:
            text = no_receipt_message(timeout_s)
            outcome.problems.append(Problem(row, "", NO_RECEIPT, text))
            rows.append(RowOutcome(row, UNANSWERED, NO_RECEIPT, text, event_id=event_id))
            continue
        if receipt.outcome == REJECTED:
            outcome.problems.append(Problem(row, column_of(receipt.field), receipt.reason or "",
                                            receipt.message))
        rows.append(_row_of(row, receipt))
    for row, first in outcome.skipped:
        rows.append(RowOutcome(row, DUPLICATE, DUPLICATE_IN_FILE, duplicate_in_file_message(first)))
    answered = {r.row for r in rows if r.outcome != UNANSWERED and r.code != NO_RECEIPT}
    for problem in outcome.problems:  # refused before sending, or not delivered
        if problem.row not in answered and problem.code != NO_RECEIPT:
            answered.add(problem.row)
            rows.append(RowOutcome(problem.row, REJECTED, problem.code, problem.message))
    return rows


def _row_of(row: int, receipt: Receipt) -> RowOutcome:
    return RowOutcome(row, receipt.outcome, receipt.reason or "", receipt.message,
                      receipt.version, receipt.record_id or "", receipt.event_id)


def _receipt_summary(total: int, rows: list[RowOutcome]) -> str:
    counts = {kind: sum(1 for r in rows if r.outcome == kind)
              for kind in (ACCEPTED, DUPLICATE, REJECTED, UNANSWERED)}
    by_bus = sum(1 for r in rows if r.outcome == REJECTED and r.event_id)
    return (f"{total} rows: {counts[ACCEPTED]} accepted, {counts[DUPLICATE]} duplicate, "
            f"{counts[REJECTED]} rejected ({counts[REJECTED] - by_bus} before sending, "
            f"{by_bus} by the bus), {counts[UNANSWERED]} unanswered")


def delivery_message(error: str | None) -> str:
    """The report's message of an event the broker did not confirm."""
    return message(WHOLE_EVENT, "", DELIVERY_FAILED, detail=delivery_detail(error))


def write_report(path: Path, problems: list[Problem]) -> None:
    """The error report: CSV, UTF-8 with BOM (so that Excel detects the encoding)."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REPORT_HEADER)
        for p in problems:
            writer.writerow((p.row, p.column, p.code, redact(p.message)))


def read_report(path: Path) -> list[dict[str, str]]:
    """Rows of an error report as dicts with keys row, column, code, message."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        return [dict(zip(("row", "column", "code", "message"), r, strict=True)) for r in reader]

