"""PostgreSQL back end (psycopg 3).

The connection runs in autocommit mode with explicit `conn.transaction()` blocks (nested ones
are savepoints). Batches are written with `executemany`, which psycopg pipelines: one round
trip for the whole batch, not one per row. A lost connection (server restart,
`pg_terminate_backend`, network) is TRANSIENT: the connection is dropped and a new one opened on
the next transaction. Schema migration takes a transaction-scoped advisory lock, so two
connectors starting together do not race.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import psycopg

from creditbus.contract.canonical import format_timestamp
from creditbus.platformdb import schema
from creditbus.platformdb.db import ErrorKind, PlatformDB, now_text, quote
from creditbus.platformdb.records import Row

MIGRATION_LOCK = 0x63726564  # pg_advisory_xact_lock key ("cred")
CONNECT_TIMEOUT_S = 5
LOCK_TIMEOUT_MS = 5000
"""A row lock held elsewhere (an operator's open transaction) fails the batch after this long
(LockNotAvailable: TRANSIENT, retried with the consumer paused) instead of blocking the
consumer until the group evicts it."""
_MAY_MIGRATE = """SELECT r.rolsuper OR CASE
    WHEN to_regclass('cb_schema_version') IS NULL
        THEN coalesce(has_schema_privilege(current_schema(), 'CREATE'), false)
    ELSE pg_has_role(current_user, (SELECT relowner FROM pg_class
                                    WHERE oid = to_regclass('cb_schema_version')), 'USAGE')
    END
FROM pg_roles r WHERE r.rolname = current_user"""
"""A superuser, a member of the schema's owner, or (no schema yet) a role that may create it."""
_TEXT_KEY_COLUMNS = frozenset({"person_key", "unit", "record_id", "consumer_group", "topic"})


class PostgresDB(PlatformDB):
    dialect = schema.POSTGRES
    placeholder = "%s"

    def __init__(self, url: str, *, application_name: str = "creditbus-sink") -> None:
        super().__init__(url)
        self.application_name = application_name
        self._conn: psycopg.Connection[Any] | None = None
        self._cursors = 0

    # -- connection ---------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self.close()
        if self._conn is None:
            self._conn = psycopg.connect(self.url, autocommit=True,
                                         connect_timeout=CONNECT_TIMEOUT_S,
                                         application_name=self.application_name)
            self._conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._connection()
        try:
            with conn.transaction():
                yield
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if conn.closed or conn.broken:
                self.close()
            raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._connection().transaction():
            yield

    def classify(self, exc: BaseException) -> ErrorKind:
        if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
            return ErrorKind.ROW
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return ErrorKind.TRANSIENT
        return ErrorKind.FATAL

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> int:
        with self.transaction():
            conn = self._connection()
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(schema.VERSION_TABLE[self.dialect])
            row = conn.execute("SELECT max(version) FROM cb_schema_version").fetchone()
            for migration in schema.pending((row[0] if row else None) or 0):
                for statement in migration.statements[self.dialect]:
                    conn.execute(statement)
                conn.execute("INSERT INTO cb_schema_version VALUES (%s, %s, %s)",
                             (migration.version, migration.description, now_text()))
        return schema.latest_version()

    def may_migrate(self) -> bool:
        row = self._connection().execute(_MAY_MIGRATE).fetchone()
        return bool(row and row[0])

    def writable_tables(self) -> list[str]:
        rows = self._connection().execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) "
            "AND relnamespace = to_regnamespace(current_schema()) "
            "AND has_table_privilege(oid, 'INSERT, UPDATE, DELETE, TRUNCATE') ORDER BY relname",
            (list(schema.TABLES),)).fetchall()
        return [str(r[0]) for r in rows]

    def login(self) -> str:
        row = self._connection().execute("SELECT current_user").fetchone()
        return str(row[0]) if row else ""

    def schema_version(self) -> int | None:
        conn = self._connection()
        found = conn.execute("SELECT to_regclass('cb_schema_version')").fetchone()
        if not found or found[0] is None:
            return None
        row = conn.execute("SELECT max(version) FROM cb_schema_version").fetchone()
        return row[0] if row else None

    # -- writes -------------------------------------------------------------------------------

    def person_heads(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        unique = list(dict.fromkeys(keys))
        rows = self._connection().execute(
            "SELECT person_key, archive_version, chain_head FROM cb_person "
            "WHERE person_key = ANY(%s) FOR UPDATE", (unique,)).fetchall()
        return {key: (int(version), head) for key, version, head in rows}

    def _executemany(self, sql: str, rows: Sequence[Row]) -> None:
        if rows:
            with self._connection().cursor() as cur:
                cur.executemany(sql, rows)

    # -- reads --------------------------------------------------------------------------------

    def load_offsets(self, group: str, topic: str) -> dict[int, int]:
        rows = self._connection().execute(
            'SELECT "partition", next_offset FROM cb_sink_offset '
            "WHERE consumer_group = %s AND topic = %s", (group, topic)).fetchall()
        return {int(p): int(o) for p, o in rows}

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        conn = self._connection()
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    def iter_rows(self, table: str) -> Iterator[dict[str, Any]]:
        if table not in schema.TABLES:
            raise ValueError(f"unknown table {table}")
        conn = self._connection()
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self.snapshot():
                yield from self.iter_rows(table)
            return
        order = ", ".join(f'{quote(c)} COLLATE "C"' if c in _TEXT_KEY_COLUMNS else quote(c)
                          for c in schema.PRIMARY_KEYS[table])
        self._cursors += 1
        with conn.cursor(name=f"cb_rows_{self._cursors}") as cur:
            cur.itersize = 2000
            cur.execute(f"SELECT * FROM {table} ORDER BY {order}")
            columns = [d.name for d in cur.description or ()]
            for row in cur:
                yield {c: _canonical(v) for c, v in zip(columns, row, strict=True)}

def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
