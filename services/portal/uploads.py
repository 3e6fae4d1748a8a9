"""A unit's upload, as `creditbus publish` does it: every row converted and validated by the
publisher's code (creditbus.publish), valid rows published to the unit's inbound topic as that
unit, then each published row's outcome taken from the bus's receipts (creditbus.receipts).

A job runs in a worker thread; its `progress` is what the page polls. Rows refused before
publishing (a cell that cannot be read, an event that breaks the contract) are `rejected` with
the same reason codes and Chinese messages as the CLI's error report.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from creditbus.services.portal.store import Outcome, PortalStore

from creditbus.catalog import Catalog
from creditbus.contract.validation import EventRejected
from creditbus.errors import ConfigError
from creditbus.identity import redact
from creditbus.publish.messages import ReportMessages, shown
from creditbus.publish.producer import CreditPublisher, PreparedEvent, default_wire
from creditbus.publish.row_events import (
    DELIVERY_FAILED,
    HeaderError,
    RowConverter,
    RowError,
    column_for_field,
    map_headers,
)
from creditbus.publish.spreadsheet import TableError, open_table
from creditbus.receipts import ReceiptsError, wait_for_receipts
from creditbus.security.acl import CredentialStore, unit_principal
from creditbus.settings import Settings

log = logging.getLogger(__name__)

DUPLICATE_IN_FILE = "DUPLICATE_IN_FILE"
SAVE_EVERY = 500
RETRY_S = 1.0


class UploadRefused(ConfigError, ValueError):
    """The file cannot be imported at all (its message is Chinese, for the page)."""


@dataclass
class Progress:
    """What the upload page shows while the job runs."""

    phase: str = "读取文件"
    rows: int = 0
    total: int | None = None
    published: int = 0
    rejected: int = 0
    decided: int = 0
    done: bool = False
    failed: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "rows": self.rows, "total": self.total,
                "published": self.published, "rejected": self.rejected,
                "decided": self.decided, "done": self.done, "failed": self.failed}


def publishing_settings(settings: Settings, unit: str, credentials: Path | None) -> Settings:
    """The unit's own Kafka login from the credentials file (the ACL model of the CLI)."""
    if credentials is None:
        return settings
    store = CredentialStore.load(credentials)
    principal = unit_principal(unit)
    password = store.users.get(principal)
    if not password:
        raise UploadRefused(f"门户未配置本单位（{unit}）的消息总线凭据，请联系信用办。")
    return replace(settings, kafka_username=principal, kafka_password=password)


@dataclass
class UploadJob:
    settings: Settings
    catalog: Catalog
    store: PortalStore
    unit: str
    submission_id: str
    path: Path
    receipt_timeout_s: float = 60.0
    credentials: Path | None = None
    progress: Progress = field(default_factory=Progress)
    _outcomes: list[Outcome] = field(default_factory=list)
    _sent: dict[str, tuple[int, str]] = field(default_factory=dict)
    """event id -> (row, record id) of the published rows."""
    _unit_settings: Settings | None = None
    """The settings with the unit's own Kafka login: it publishes and reads the receipts."""

    def run(self) -> None:
        try:
            self._run()
        except UploadRefused as exc:
            self._finish("failed", str(exc))
        except Exception as exc:  # a job never takes the portal down
            log.exception("upload %s failed", self.submission_id)
            self._finish("failed", f"导入失败：{redact(type(exc).__name__)}")
        finally:
            self.path.unlink(missing_ok=True)

    def _finish(self, status: str, message: str | None = None) -> None:
        p = self.progress
        self.store.update_submission(self.submission_id, status=status, message=message or "",
                                     finished=True, total_rows=p.rows, published=p.published,
                                     **outcome_counts(self.store, self.submission_id))
        p.failed = message if status == "failed" else None
        p.phase = "完成" if status == "done" else "失败"
        p.done = True  # after the row: a poll that sees `done` reads the final counts

    def _save(self) -> None:
        self.store.save_outcomes(self.submission_id, self._outcomes)
        self._outcomes.clear()
        self.store.update_submission(self.submission_id, total_rows=self.progress.rows,
                                     published=self.progress.published,
                                     rejected=self.progress.rejected)

    def _run(self) -> None:
        publisher = self._publisher()
        started_ms = int(time.time() * 1000)
        try:
            self._import(publisher)
            self.progress.phase = "等待消息总线确认"
            report = publisher.flush(120.0)
            failed = list(report.failed)
            if report.pending:
                failed += publisher.abandon_pending("not confirmed by the broker in time")
        finally:
            publisher.close(10.0)
        for result in failed:
            row, record_id = self._sent.pop(result.event_id)
            self._reject(row, DELIVERY_FAILED, "消息总线未确认收到该行，请稍后重新上传。",
                         record_id=record_id)
            self.progress.published -= 1
        self._outcomes += [Outcome(row, "pending", record_id, event_id,
                                   message="已发送至消息总线，等待处理结果")
                           for event_id, (row, record_id) in self._sent.items()]
        self._save()
        self._wait_for_receipts(started_ms)
        self._finish("done")

    def _publisher(self) -> CreditPublisher:
        settings = self._unit_settings = publishing_settings(self.settings, self.unit,
                                                             self.credentials)
        publisher = CreditPublisher(settings, self.unit, catalog=self.catalog,
                                    wire=default_wire(settings))
        publisher.ensure_topic()
        return publisher

    def _import(self, publisher: CreditPublisher) -> None:
        single_group = len(self.catalog.unit(self.unit).groups) == 1
        messages = ReportMessages(self.catalog, self.unit)
        try:
            table = open_table(self.path)
        except (TableError, OSError) as exc:
            raise UploadRefused(f"无法读取该文件：{redact(str(exc))}") from None
        with table:
            try:
                headers = map_headers(table.headers, group_optional=single_group)
            except HeaderError:
                raise UploadRefused("表头不符合模板。") from None
            self.progress.total = table.total
            self.progress.phase = "校验并发送"
            converter = RowConverter(self.catalog, self.unit)
            first_row: dict[str, int] = {}
            try:
                rows = list(table.rows()) if table.total is None else table.rows()
                for number, cells in rows:
                    self.progress.rows += 1
                    values = headers.values(cells)
                    self._row(publisher, converter, messages, headers, number, values,
                              first_row)
                    if self.progress.rows % SAVE_EVERY == 0:
                        self._save()
            except TableError as exc:
                raise UploadRefused(f"无法读取该文件：{redact(str(exc))}") from None

    def _row(self, publisher: CreditPublisher, converter: RowConverter,
             messages: ReportMessages, headers: Any, number: int, values: dict[str, Any],
             first_row: dict[str, int]) -> None:
        record_id = values.get("record_id")
        record_text = str(record_id).strip() if record_id not in (None, "") else None
        try:
            event = converter.convert(values)
        except RowError as exc:
            self._reject(number, exc.code, exc.message, field=headers.header_of(exc.column),
                         value=shown(exc.column, values.get(exc.column or "")),
                         record_id=record_text)
            return
        kind = converter.names.content_kinds.get(event["category"])
        try:
            prepared: PreparedEvent = publisher.prepare(event)
        except EventRejected as exc:
            key = column_for_field(exc.field, kind)
            cell = values.get(key or "")
            label = headers.header_of(key) if key else (exc.field or "")
            text = messages.rejection(exc, label, cell, event)
            self._reject(number, exc.code, text, field=label, value=shown(key, cell),
                         record_id=record_text)
            return
        if prepared.event_id in first_row:
            self._outcomes.append(Outcome(
                number, "duplicate", prepared.record_id, prepared.event_id, DUPLICATE_IN_FILE,
                f"与本文件第 {first_row[prepared.event_id]} 行完全相同，未重复发送"))
            return
        publisher.send(prepared, ref=number)
        first_row[prepared.event_id] = number
        self._sent[prepared.event_id] = (number, prepared.record_id)
        self.progress.published += 1

    def _reject(self, row: int, code: str, message: str, *, field: str | None = None,
                value: str | None = None, record_id: str | None = None) -> None:
        self.progress.rejected += 1
        self._outcomes.append(Outcome(row, "rejected", record_id, None, code, redact(message),
                                      field or None, redact(value) if value else None))

    def _wait_for_receipts(self, since_ms: int) -> None:
        outcomes = decided_outcomes(self._unit_settings or self.settings, self.unit, self._sent,
                                    since_ms,
                                    self.receipt_timeout_s, self.progress)
        self.store.save_outcomes(self.submission_id, outcomes)


def decided_outcomes(settings: Settings, unit: str, sent: dict[str, tuple[int, str]],
                     since_ms: int, timeout_s: float, progress: Progress) -> list[Outcome]:
    """Each published row's outcome as the bus decided it (creditbus.receipts), for the rows
    `sent` (event id -> (row, record id)); rows without a receipt in time are left out (they
    stay `pending`)."""
    if not sent:
        return []
    progress.phase = "等待总线处理结果"

    def on_progress(p: Any) -> None:
        progress.decided = int(p.accepted + p.duplicate + p.rejected)

    deadline = time.monotonic() + timeout_s
    decided: dict[str, Any] = {}
    while True:
        try:
            decided = wait_for_receipts(settings, unit, list(sent), since_ms=since_ms,
                                        timeout_s=max(1.0, deadline - time.monotonic()),
                                        on_progress=on_progress)
            break
        except ReceiptsError as exc:  # e.g. a partition leader moving
            if time.monotonic() + RETRY_S >= deadline:
                log.warning("no receipts for %s: %s", unit, exc)
                break
            time.sleep(RETRY_S)
    outcomes = []
    for event_id, receipt in decided.items():
        if event_id not in sent:
            continue
        row, record_id = sent[event_id]
        outcomes.append(Outcome(row, str(receipt.outcome), receipt.record_id or record_id,
                                event_id, receipt.reason, receipt.message, receipt.field,
                                receipt.value))
    progress.decided = len(outcomes)
    return outcomes


def outcome_counts(store: PortalStore, submission_id: str) -> dict[str, int]:
    """The submission's counters, from its stored outcomes."""
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0, "pending": 0}
    key = {"accepted": "accepted", "duplicate": "duplicates", "rejected": "rejected",
           "pending": "pending"}
    for o in store.outcomes(submission_id):
        counts[key[o.outcome]] += 1
    return counts


@dataclass
class ReceiptRefresh:
    """Waits again for the receipts of a finished submission's `pending` rows (the bus was
    slow or down during the upload) and stores the outcomes as they are decided."""

    settings: Settings
    store: PortalStore
    unit: str
    submission_id: str
    since_ms: int
    timeout_s: float = 60.0
    credentials: Path | None = None
    progress: Progress = field(default_factory=Progress)

    def run(self) -> None:
        self.progress.phase = "等待总线处理结果"
        try:
            pending = self.store.outcomes(self.submission_id, only="pending")
            sent = {o.event_id: (o.source_row, o.record_id or "")
                    for o in pending if o.event_id}
            settings = publishing_settings(self.settings, self.unit, self.credentials)
            outcomes = decided_outcomes(settings, self.unit, sent, self.since_ms,
                                        self.timeout_s, self.progress)
            self.store.save_outcomes(self.submission_id, outcomes)
            self.store.update_submission(self.submission_id,
                                         **outcome_counts(self.store, self.submission_id))
        except Exception:  # a refresh never takes the portal down
            log.exception("receipts refresh of %s failed", self.submission_id)
        finally:
            self.progress.phase = "完成"
            self.progress.done = True


def start(job: UploadJob | ReceiptRefresh) -> threading.Thread:
    thread = threading.Thread(target=job.run, name=f"upload-{job.submission_id[:8]}",
                              daemon=True)
    thread.start()
    return thread
