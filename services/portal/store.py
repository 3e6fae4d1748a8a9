"""The portal's rows in the platform database (migration 3): accounts, sessions, submissions
with their per-row outcomes, and the units' progress rows with the history of their changes.

Runs plain SQL on the back end's connection (`PlatformDB`), like the query service's store; one
`PlatformDB` per thread (they are not thread-safe). Times are epoch milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from creditbus.platformdb.db import PerThreadDB, PlatformDB

APPLICATION_NAME = "creditbus-portal"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    """`unit` or `office`."""
    unit: str | None
    display_name: str
    password_hash: str
    disabled: bool = False


@dataclass(frozen=True)
class Session:
    session_hash: str
    username: str
    csrf_token: str
    purpose: str | None
    expires_at: int


@dataclass(frozen=True)
class Outcome:
    """What became of one row of an upload (from the publisher's checks or the receipts)."""

    source_row: int
    outcome: str
    """accepted | duplicate | rejected | pending (published, no receipt yet)."""
    record_id: str | None = None
    event_id: str | None = None
    reason: str | None = None
    message: str | None = None
    field: str | None = None
    value: str | None = None


@dataclass(frozen=True)
class ProgressEntry:
    unit: str
    documents: str
    next_step: str
    remark: str
    version: int
    updated_at: int
    updated_by: str


SUBMISSION_COUNTERS = ("total_rows", "published", "accepted", "duplicates", "rejected",
                       "pending")


class PortalStore:
    """One PlatformDB per thread, opened lazily from the database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._dbs = PerThreadDB(url, APPLICATION_NAME)

    # -- plumbing -----------------------------------------------------------------------------

    def db(self) -> PlatformDB:
        return self._dbs.get()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.db().placeholder)

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        db = self.db()
        try:
            with db.snapshot():
                cursor = db._connection().execute(self._sql(sql), tuple(params))  # type: ignore[attr-defined]
                columns = [d[0] for d in cursor.description or ()]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        except Exception:
            db.close()  # a broken connection is reopened by the next call
            raise

    def execute(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Run the statements in one transaction."""
        db = self.db()
        try:
            with db.transaction():
                conn = db._connection()  # type: ignore[attr-defined]
                for sql, params in statements:
                    conn.execute(self._sql(sql), tuple(params))
        except Exception:
            db.close()
            raise

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        db = self.db()
        try:
            with db.transaction():
                cursor = db._connection().cursor()  # type: ignore[attr-defined]
                cursor.executemany(self._sql(sql), [tuple(r) for r in rows])
        except Exception:
            db.close()
            raise

    def migrate(self) -> int:
        return self.db().migrate()

    def schema_version(self) -> int | None:
        return self.db().schema_version()

    def close(self) -> None:
        self._dbs.close()

    # -- accounts -----------------------------------------------------------------------------

    def account(self, username: str) -> Account | None:
        rows = self.select("SELECT * FROM cb_portal_account WHERE username = ?", (username,))
        if not rows:
            return None
        r = rows[0]
        return Account(r["username"], r["role"], r["unit"], r["display_name"],
                       r["password_hash"], bool(r["disabled"]))

    def accounts(self) -> list[Account]:
        rows = self.select("SELECT * FROM cb_portal_account ORDER BY username")
        return [Account(r["username"], r["role"], r["unit"], r["display_name"],
                        r["password_hash"], bool(r["disabled"])) for r in rows]

    def save_account(self, account: Account) -> None:
        self.execute([
            ("DELETE FROM cb_portal_account WHERE username = ?", (account.username,)),
            ("INSERT INTO cb_portal_account (username, role, unit, display_name, password_hash,"
             " created_at, disabled) VALUES (?, ?, ?, ?, ?, ?, ?)",
             (account.username, account.role, account.unit, account.display_name,
              account.password_hash, now_ms(), int(account.disabled))),
        ])

    def set_password_hash(self, username: str, password_hash: str) -> None:
        self.execute([("UPDATE cb_portal_account SET password_hash = ? WHERE username = ?",
                       (password_hash, username))])

    # -- sessions -----------------------------------------------------------------------------

    def create_session(self, session: Session) -> None:
        self.execute([
            ("DELETE FROM cb_portal_session WHERE expires_at < ?", (now_ms(),)),
            ("INSERT INTO cb_portal_session (session_hash, username, csrf_token, purpose, "
             "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
             (session.session_hash, session.username, session.csrf_token, session.purpose,
              now_ms(), session.expires_at)),
        ])

    def session(self, session_hash: str) -> Session | None:
        rows = self.select("SELECT * FROM cb_portal_session WHERE session_hash = ? AND "
                           "expires_at >= ?", (session_hash, now_ms()))
        if not rows:
            return None
        r = rows[0]
        return Session(r["session_hash"], r["username"], r["csrf_token"], r["purpose"],
                       r["expires_at"])

    def set_session_purpose(self, session_hash: str, purpose: str | None) -> None:
        self.execute([("UPDATE cb_portal_session SET purpose = ? WHERE session_hash = ?",
                       (purpose, session_hash))])

    def delete_session(self, session_hash: str) -> None:
        self.execute([("DELETE FROM cb_portal_session WHERE session_hash = ?", (session_hash,))])

    # -- submissions and outcomes -------------------------------------------------------------

    def create_submission(self, submission_id: str, unit: str, username: str,
                          filename: str) -> None:
        self.execute([(
            "INSERT INTO cb_portal_submission (submission_id, unit, username, filename, "
            "started_at, status) VALUES (?, ?, ?, ?, ?, ?)",
            (submission_id, unit, username, filename, now_ms(), "running"))])

    def update_submission(self, submission_id: str, *, status: str | None = None,
                          message: str | None = None, finished: bool = False,
                          **counters: int) -> None:
        sets: list[str] = []
        params: list[Any] = []
        for name, value in counters.items():
            if name not in SUBMISSION_COUNTERS:
                raise ValueError(f"unknown counter {name}")
            sets.append(f"{name} = ?")
            params.append(int(value))
        if status is not None:
            sets.append("status = ?")
            params.append(status)
        if message is not None:
            sets.append("message = ?")
            params.append(message)
        if finished:
            sets.append("finished_at = ?")
            params.append(now_ms())
        if sets:
            self.execute([(f"UPDATE cb_portal_submission SET {', '.join(sets)} "
                           "WHERE submission_id = ?", (*params, submission_id))])

    def submission(self, submission_id: str, unit: str | None) -> dict[str, Any] | None:
        """The submission; with `unit`, only when it is that unit's (None otherwise)."""
        sql = "SELECT * FROM cb_portal_submission WHERE submission_id = ?"
        params: list[Any] = [submission_id]
        if unit is not None:
            sql += " AND unit = ?"
            params.append(unit)
        rows = self.select(sql, params)
        return rows[0] if rows else None

    def submissions(self, unit: str | None, limit: int = 200) -> list[dict[str, Any]]:
        if unit is None:
            return self.select("SELECT * FROM cb_portal_submission ORDER BY started_at DESC "
                               f"LIMIT {int(limit)}")
        return self.select("SELECT * FROM cb_portal_submission WHERE unit = ? "
                           f"ORDER BY started_at DESC LIMIT {int(limit)}", (unit,))

    def save_outcomes(self, submission_id: str, outcomes: Sequence[Outcome]) -> None:
        """Insert or replace the outcomes of these rows."""
        if not outcomes:
            return
        db = self.db()
        rows = [(submission_id, o.source_row, o.outcome, o.record_id, o.event_id, o.reason,
                 o.message, o.field, o.value) for o in outcomes]
        try:
            with db.transaction():
                cursor = db._connection().cursor()  # type: ignore[attr-defined]
                cursor.executemany(self._sql(
                    "DELETE FROM cb_portal_outcome WHERE submission_id = ? AND source_row = ?"),
                    [(submission_id, o.source_row) for o in outcomes])
                cursor.executemany(self._sql(
                    "INSERT INTO cb_portal_outcome (submission_id, source_row, outcome, "
                    "record_id, event_id, reason, message, field, value) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"), rows)
        except Exception:
            db.close()
            raise

    def outcomes(self, submission_id: str, *, only: str | None = None,
                 limit: int | None = None) -> list[Outcome]:
        sql = "SELECT * FROM cb_portal_outcome WHERE submission_id = ?"
        params: list[Any] = [submission_id]
        if only:
            sql += " AND outcome = ?"
            params.append(only)
        sql += " ORDER BY source_row"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [Outcome(r["source_row"], r["outcome"], r["record_id"], r["event_id"],
                        r["reason"], r["message"], r["field"], r["value"])
                for r in self.select(sql, params)]

    def outcome_counts(self, unit: str | None = None) -> list[dict[str, Any]]:
        """Rejections by unit and reason (from the stored outcomes of portal uploads)."""
        sql = ("SELECT s.unit AS unit, o.reason AS reason, count(*) AS n "
               "FROM cb_portal_outcome o JOIN cb_portal_submission s "
               "ON s.submission_id = o.submission_id WHERE o.outcome = 'rejected'")
        params: list[Any] = []
        if unit is not None:
            sql += " AND s.unit = ?"
            params.append(unit)
        sql += " GROUP BY s.unit, o.reason ORDER BY s.unit, n DESC"
        return self.select(sql, params)

    # -- progress rows ------------------------------------------------------------------------

    def progress_entries(self) -> dict[str, ProgressEntry]:
        return {r["unit"]: ProgressEntry(**r)
                for r in self.select("SELECT * FROM cb_portal_progress")}

    def progress_history(self, unit: str) -> list[dict[str, Any]]:
        return self.select("SELECT * FROM cb_portal_progress_history WHERE unit = ? "
                           "ORDER BY version DESC", (unit,))

    def save_progress(self, unit: str, documents: str, next_step: str, remark: str,
                      username: str) -> int:
        """Store the unit's texts as a new version (kept in the history); the version."""
        current = self.progress_entries().get(unit)
        version = (current.version if current else 0) + 1
        at = now_ms()
        self.execute([
            ("DELETE FROM cb_portal_progress WHERE unit = ?", (unit,)),
            ("INSERT INTO cb_portal_progress (unit, documents, next_step, remark, version, "
             "updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
             (unit, documents, next_step, remark, version, at, username)),
            ("INSERT INTO cb_portal_progress_history (unit, version, documents, next_step, "
             "remark, changed_at, changed_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
             (unit, version, documents, next_step, remark, at, username)),
        ])
        return version

    # -- the unit's records on the platform ---------------------------------------------------

    def unit_records(self, unit: str, text: str, limit: int = 100) -> list[dict[str, Any]]:
        """The unit's current records whose person's name contains `text` or whose masked ID
        matches it (either form: the masked one or the first 6 / last 4 digits)."""
        sql = ("SELECT r.person_key, r.unit, r.record_id, r.category, r.group_code, "
               "r.occurred_at, r.published_at, r.is_retracted, p.name, p.masked_id "
               "FROM cb_record r JOIN cb_person p ON p.person_key = r.person_key "
               "WHERE r.unit = ?")
        params: list[Any] = [unit]
        text = text.strip()
        if text:
            sql += " AND (p.name LIKE ? OR p.masked_id LIKE ? OR p.masked_id LIKE ?)"
            like = f"%{text}%"
            params += [like, like, _masked_pattern(text)]
        sql += f" ORDER BY r.published_at DESC, r.record_id LIMIT {int(limit)}"
        return self.select(sql, params)

    def unit_record(self, unit: str, record_id: str) -> dict[str, Any] | None:
        rows = self.select(
            "SELECT r.*, p.name, p.masked_id FROM cb_record r JOIN cb_person p "
            "ON p.person_key = r.person_key WHERE r.unit = ? AND r.record_id = ?",
            (unit, record_id))
        return rows[0] if rows else None


def _masked_pattern(text: str) -> str:
    """`362101********1234` from `362101 1234`, `3621011234` (6 + 4 digits) or the text."""
    digits = "".join(c for c in text.upper() if c.isdigit() or c == "X")
    if len(digits) == 10:
        return f"{digits[:6]}%{digits[6:]}"
    return text
