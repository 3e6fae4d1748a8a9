"""The small interface the sink and verify use on the platform database, and its factory.

Two back ends implement it: SQLite (stdlib, WAL mode, the embedded default, `sqlite:///path`)
and PostgreSQL (psycopg 3, `postgresql://...`). Rows go in and come out in the canonical forms
of `creditbus.platformdb.records` (timestamps as UTC ISO text, dates as ISO text, booleans as bool),
whatever the column types, so the sink, verify and the tests compare like with like.

Failures are sorted by `classify`: TRANSIENT (retry the whole batch later: connection lost,
lock timeout, serialisation failure, database is locked), ROW (this row can never be written:
constraint violation, bad value; isolate it and dead-letter it) and FATAL (anything else: stop).
"""

from __future__ import annotations

import enum
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from creditbus.contract.canonical import format_timestamp
from creditbus.errors import DatabaseError
from creditbus.platformdb import schema
from creditbus.platformdb.records import (
    LOG_COLUMNS,
    OFFSET_COLUMNS,
    PERSON_COLUMNS,
    RECORD_COLUMNS,
    Row,
)

log = logging.getLogger(__name__)


class SchemaNotReady(DatabaseError):
    """The database's schema is not the one this code needs, and this login may not change it
    (run `creditbus db migrate` with the owner's URL)."""


class ErrorKind(enum.Enum):
    TRANSIENT = "transient"
    ROW = "row"
    FATAL = "fatal"


def quote(column: str) -> str:
    """Quote the columns whose names are SQL keywords in some dialect."""
    return f'"{column}"' if column in ("groups", "partition") else column


def upsert_sql(table: str, columns: Sequence[str], placeholder: str,
               guard: str | None) -> str:
    """INSERT ... ON CONFLICT (pk) DO UPDATE, only when `guard` grows (when given).

    Both SQLite (3.24+) and PostgreSQL accept this statement.
    """
    key = schema.PRIMARY_KEYS[table]
    names = ", ".join(quote(c) for c in columns)
    values = ", ".join([placeholder] * len(columns))
    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in key)
    sql = (f"INSERT INTO {table} ({names}) VALUES ({values}) "
           f"ON CONFLICT ({', '.join(quote(c) for c in key)}) DO UPDATE SET {updates}")
    if guard:
        sql += f" WHERE {table}.{guard} < excluded.{guard}"
    return sql


def insert_sql(table: str, columns: Sequence[str], placeholder: str) -> str:
    names = ", ".join(quote(c) for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join([placeholder] * len(columns))})"


class PlatformDB(ABC):
    """One connection to the platform database (not thread-safe; one per sink)."""

    dialect: str = ""
    placeholder: str = "?"

    def __init__(self, url: str) -> None:
        self.url = url
        p = self.placeholder
        self.sql_person = upsert_sql("cb_person", PERSON_COLUMNS, p, "archive_version")
        self.sql_record = upsert_sql("cb_record", RECORD_COLUMNS, p, "person_version")
        self.sql_log = insert_sql("cb_update_log", LOG_COLUMNS, p)
        self.sql_offset = upsert_sql("cb_sink_offset", OFFSET_COLUMNS, p, None)

    # -- connection and transactions ----------------------------------------------------------

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """BEGIN (connecting first if needed) ... COMMIT, or ROLLBACK on an exception."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A savepoint inside the current transaction, rolled back on an exception."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def classify(self, exc: BaseException) -> ErrorKind: ...

    # -- schema -------------------------------------------------------------------------------

    @abstractmethod
    def migrate(self) -> int:
        """Create or migrate the schema (idempotent); return the schema version."""

    @abstractmethod
    def schema_version(self) -> int | None:
        """The applied schema version, None when the database holds no platform schema."""

    def may_migrate(self) -> bool:
        """Whether this login may create and alter the schema (SQLite: always; PostgreSQL:
        a superuser, the owner of the schema, or anyone while none exists and it may create
        tables)."""
        return True

    def login(self) -> str:
        """The database role this connection uses ('' where there are no roles)."""
        return ""

    def writable_tables(self) -> list[str]:
        """Platform tables this login may insert into, update, delete from or truncate
        ([] where there are no roles)."""
        return []

    def prepare_schema(self) -> int:
        """`prepare_schema(self)`: the sink's start-up check (migrates only where allowed)."""
        return prepare_schema(self)

    # -- the sink's writes (inside `transaction`) ---------------------------------------------

    @abstractmethod
    def person_heads(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """(archive_version, chain_head) of the persons that exist among `keys`; in PostgreSQL
        the rows are locked until the transaction ends."""

    def upsert_persons(self, rows: Sequence[Row]) -> None:
        self._executemany(self.sql_person, rows)

    def upsert_records(self, rows: Sequence[Row]) -> None:
        self._executemany(self.sql_record, rows)

    def insert_log(self, rows: Sequence[Row]) -> None:
        self._executemany(self.sql_log, rows)

    def store_offsets(self, group: str, topic: str, offsets: Mapping[int, int], at: str) -> None:
        rows = [(group, topic, partition, offset, at)
                for partition, offset in sorted(offsets.items())]
        self._executemany(self.sql_offset, rows)

    @abstractmethod
    def _executemany(self, sql: str, rows: Sequence[Row]) -> None: ...

    # -- reads --------------------------------------------------------------------------------

    @abstractmethod
    def load_offsets(self, group: str, topic: str) -> dict[int, int]:
        """partition -> next offset, as committed with the rows."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[None]:
        """A read-only transaction: every read inside sees one consistent state."""

    @abstractmethod
    def iter_rows(self, table: str) -> Iterator[dict[str, Any]]:
        """Every row of `table` in canonical forms, ordered by primary key (code-point order)."""

    def dump(self, table: str) -> list[dict[str, Any]]:
        return list(self.iter_rows(table))


def prepare_schema(db: PlatformDB) -> int:
    """The sink's start-up: make sure the schema is the one this code writes; its version.

    A login that may migrate (SQLite; a PostgreSQL owner or superuser, as in development)
    creates or migrates the schema as before. Any other PostgreSQL role (the sink's own,
    made by `creditbus db migrate`) only checks the version, and raises SchemaNotReady
    telling the operator what to run. With CREDITBUS_ENV=production a PostgreSQL login that
    owns the schema is refused: no process uses the owner at run time.
    """
    latest = schema.latest_version()
    current = db.schema_version()
    if current is not None and current > latest:
        raise SchemaNotReady(f"the platform database holds schema version {current}, newer than "
                             f"this program's {latest}: upgrade it")
    may_migrate = db.may_migrate()
    if may_migrate and db.login() and _production():
        raise SchemaNotReady(
            f"CREDITBUS_ENV=production and the sink connects as {db.login()}, which owns the "
            "platform schema or is a superuser: connect with the sink role that `creditbus db "
            "migrate` made")
    if may_migrate and db.login():
        log.warning("the sink connects as %s, which owns the platform schema; give it its own "
                    "role (`creditbus db migrate`, docs/platform.md)", db.login())
    if current == latest:
        return current
    if may_migrate:
        return db.migrate()
    have = "no platform schema" if current is None else f"schema version {current}"
    raise SchemaNotReady(
        f"the platform database holds {have}, this sink needs version {latest}, and role "
        f"{db.login() or '?'} may not change the schema: run `creditbus db migrate` with "
        "the database owner's URL")


def _production() -> bool:
    from creditbus.settings import Settings

    return Settings.from_env().production


def now_text() -> str:
    """The current time in the canonical form (UTC, milliseconds, `Z`)."""
    now = datetime.now(UTC)
    return format_timestamp(now.replace(microsecond=now.microsecond // 1000 * 1000))


def redact_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, parts.query,
                       parts.fragment))


def open_db(url: str, *, application_name: str = "creditbus-sink") -> PlatformDB:
    """The back end for `url`: `sqlite:///path` or `postgresql://...` (connects lazily)."""
    if url.startswith("sqlite:"):
        from creditbus.platformdb.sqlite import SqliteDB

        return SqliteDB(url)
    if url.startswith(("postgresql:", "postgres:")):
        from creditbus.platformdb.postgres import PostgresDB

        return PostgresDB(url, application_name=application_name)
    raise ValueError(f"unsupported database URL {redact_url(url)!r}: use sqlite:///path or "
                     "postgresql://user@host:port/database")


class PerThreadDB:
    """One `PlatformDB` per thread, opened lazily from the URL: the services answer requests
    from several threads, and a database connection is not shared between threads."""

    def __init__(self, url: str, application_name: str) -> None:
        self.url = url
        self.application_name = application_name
        self._local = threading.local()
        self._opened: list[PlatformDB] = []
        self._lock = threading.Lock()

    def get(self) -> PlatformDB:
        db: PlatformDB | None = getattr(self._local, "db", None)
        if db is None:
            db = open_db(self.url, application_name=self.application_name)
            self._local.db = db
            with self._lock:
                self._opened.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()
