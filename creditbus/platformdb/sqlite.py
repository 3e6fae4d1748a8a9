"""SQLite back end (stdlib sqlite3): WAL mode, explicit BEGIN IMMEDIATE transactions.

URL: `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`, optionally
`?busy_timeout_ms=N` (default 1000): how long a statement waits for another writer's lock
before failing with "database is locked", which the sink then retries with backoff. A short
busy timeout keeps the consumer responsive and makes lock waits visible in the retry metric.
WAL with synchronous=NORMAL never loses a committed transaction to a process crash; after a
power loss the last transactions may be lost together with their offsets, which the sink then
simply applies again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from creditbus.platformdb import schema
from creditbus.platformdb.db import ErrorKind, PlatformDB, now_text, quote
from creditbus.platformdb.records import Row

DEFAULT_BUSY_TIMEOUT_MS = 1000
_IN_CHUNK = 500  # well under SQLite's limit of bound variables
_TRANSIENT_WORDS = ("locked", "busy", "disk i/o", "unable to open", "readonly database")


def parse_sqlite_url(url: str) -> tuple[Path, int]:
    """(path, busy timeout ms) of a sqlite:/// URL."""
    if not url.startswith("sqlite:///"):
        raise ValueError("a SQLite URL looks like sqlite:///path/to/platform.db")
    rest = url[len("sqlite:///"):]
    path, _, query = rest.partition("?")
    if not path:
        raise ValueError("the SQLite URL names no file")
    timeout = DEFAULT_BUSY_TIMEOUT_MS
    params = parse_qs(query)
    if "busy_timeout_ms" in params:
        timeout = int(params["busy_timeout_ms"][-1])
    return Path(path), timeout


class SqliteDB(PlatformDB):
    dialect = schema.SQLITE
    placeholder = "?"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.path, self.busy_timeout_ms = parse_sqlite_url(url)
        self._conn: sqlite3.Connection | None = None
        self._savepoints = 0

    # -- connection ---------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # also when COMMIT itself failed (busy)
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        conn = self._connection()
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")

    def classify(self, exc: BaseException) -> ErrorKind:
        if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
            return ErrorKind.ROW
        if isinstance(exc, sqlite3.OperationalError):
            text = str(exc).lower()
            if any(word in text for word in _TRANSIENT_WORDS):
                return ErrorKind.TRANSIENT
        return ErrorKind.FATAL

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> int:
        with self.transaction():
            conn = self._connection()
            conn.execute(schema.VERSION_TABLE[self.dialect])
            current = conn.execute("SELECT max(version) FROM cb_schema_version").fetchone()[0]
            for migration in schema.pending(current or 0):
                for statement in migration.statements[self.dialect]:
                    conn.execute(statement)
                conn.execute("INSERT INTO cb_schema_version VALUES (?, ?, ?)",
                             (migration.version, migration.description, now_text()))
        return schema.latest_version()

    def schema_version(self) -> int | None:
        if not self.path.exists():
            return None
        conn = self._connection()
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                             "name = 'cb_schema_version'").fetchone()
        if not found:
            return None
        return conn.execute("SELECT max(version) FROM cb_schema_version").fetchone()[0]

    # -- writes -------------------------------------------------------------------------------

    def person_heads(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        conn = self._connection()
        found: dict[str, tuple[int, str]] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _IN_CHUNK):
            chunk = unique[i:i + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for key, version, head in conn.execute(
                    "SELECT person_key, archive_version, chain_head FROM cb_person "
                    f"WHERE person_key IN ({marks})", chunk):
                found[key] = (version, head)
        return found

    def _executemany(self, sql: str, rows: Sequence[Row]) -> None:
        if rows:
            self._connection().executemany(sql, rows)

    # -- reads --------------------------------------------------------------------------------

    def load_offsets(self, group: str, topic: str) -> dict[int, int]:
        rows = self._connection().execute(
            'SELECT "partition", next_offset FROM cb_sink_offset '
            "WHERE consumer_group = ? AND topic = ?", (group, topic))
        return {int(p): int(o) for p, o in rows}

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # start the read
            yield
        finally:
            conn.execute("ROLLBACK")

    def iter_rows(self, table: str) -> Iterator[dict[str, Any]]:
        if table not in schema.TABLES:
            raise ValueError(f"unknown table {table}")
        order = ", ".join(quote(c) for c in schema.PRIMARY_KEYS[table])
        cursor = self._connection().execute(f"SELECT * FROM {table} ORDER BY {order}")
        columns = [d[0] for d in cursor.description]
        booleans = [i for i, c in enumerate(columns) if c in schema.BOOLEAN_COLUMNS]
        for row in cursor:
            values = list(row)
            for i in booleans:
                if values[i] in (0, 1):
                    values[i] = bool(values[i])
            yield dict(zip(columns, values, strict=True))

