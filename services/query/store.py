"""Reads of one person's archive from the platform database, through the sink's DB layer.

`creditbus.platformdb.db.PlatformDB` offers whole-table reads only (`iter_rows`); a query needs
the rows of one person, so this module runs three keyed SELECTs on the back end's connection,
inside the back end's read-only `snapshot()` (one consistent state), and returns the rows in
the same canonical forms as `iter_rows` (UTC ISO text, ISO dates, booleans as bool).

Each worker thread of the service owns one `PlatformDB` (they are not thread-safe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from creditbus.contract.canonical import format_timestamp
from creditbus.platformdb import schema
from creditbus.platformdb.db import PerThreadDB, PlatformDB, open_db

APPLICATION_NAME = "creditbus-query"


@dataclass
class ArchiveRows:
    person: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _canonical(column: str, value: Any) -> Any:
    if column in schema.BOOLEAN_COLUMNS and value in (0, 1):
        return bool(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _select(db: PlatformDB, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    conn = db._connection()  # type: ignore[attr-defined]  # both back ends have one
    cursor = conn.execute(sql.replace("?", db.placeholder), params)
    columns = [d[0] for d in cursor.description or ()]
    return [{c: _canonical(c, v) for c, v in zip(columns, row, strict=True)}
            for row in cursor.fetchall()]


def read_archive(db: PlatformDB, key: str, *, with_history: bool) -> ArchiveRows | None:
    """The person's row, records and (optionally) update log; None for an unknown person."""
    with db.snapshot():
        people = _select(db, "SELECT * FROM cb_person WHERE person_key = ?", (key,))
        if not people:
            return None
        rows = ArchiveRows(people[0])
        rows.records = _select(
            db, "SELECT * FROM cb_record WHERE person_key = ? ORDER BY unit, record_id", (key,))
        if with_history:
            rows.history = _select(
                db, "SELECT * FROM cb_update_log WHERE person_key = ? ORDER BY version", (key,))
    return rows


def writable_tables(url: str) -> list[str]:
    """The platform tables the service's database login could change (it should be the reader
    role of `creditbus db migrate`, which changes none)."""
    db = open_db(url, application_name=APPLICATION_NAME)
    try:
        return db.writable_tables()
    finally:
        db.close()


class ArchiveStore:
    """One PlatformDB per thread, opened lazily from the database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._dbs = PerThreadDB(url, APPLICATION_NAME)

    def _db(self) -> PlatformDB:
        return self._dbs.get()

    def read(self, key: str, *, with_history: bool) -> ArchiveRows | None:
        db = self._db()
        try:
            return read_archive(db, key, with_history=with_history)
        except Exception:
            db.close()  # a broken connection is reopened by the next read
            raise

    def ready(self) -> bool:
        """Whether the database answers and holds the platform schema."""
        return self._db().schema_version() is not None

    def close(self) -> None:
        self._dbs.close()
