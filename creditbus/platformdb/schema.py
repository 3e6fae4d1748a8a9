"""The platform database (前置库) schema: numbered migrations, one SQL text per dialect.

Migrations are append-only: a released migration is never edited, a change is a new number.
`cb_schema_version` records which have been applied; the connector applies the missing ones on
start, in one transaction, so running it twice (or two connectors at once) is harmless.
Every table and column is documented in docs/platform.md.

Length limits follow the contract (creditbus.contract.limits): PostgreSQL enforces them with
varchar(n), SQLite with CHECK constraints, so both refuse the same over-long values.
"""

from __future__ import annotations

from dataclasses import dataclass

SQLITE = "sqlite"
POSTGRES = "postgres"

TABLES = ("cb_person", "cb_record", "cb_update_log", "cb_sink_offset", "cb_schema_version",
          "cb_portal_account", "cb_portal_session", "cb_portal_submission", "cb_portal_outcome",
          "cb_portal_progress", "cb_portal_progress_history")
"""Every table of the platform schema."""

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "cb_person": ("person_key",),
    "cb_record": ("person_key", "unit", "record_id"),
    "cb_update_log": ("person_key", "version"),
    "cb_sink_offset": ("consumer_group", "topic", "partition"),
    "cb_schema_version": ("version",),
    "cb_portal_account": ("username",),
    "cb_portal_session": ("session_hash",),
    "cb_portal_submission": ("submission_id",),
    "cb_portal_outcome": ("submission_id", "source_row"),
    "cb_portal_progress": ("unit",),
    "cb_portal_progress_history": ("unit", "version"),
}

BOOLEAN_COLUMNS = frozenset({"is_public", "is_retracted", "is_repaired"})
"""Stored as 0/1 in SQLite, boolean in PostgreSQL."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: dict[str, tuple[str, ...]]  # dialect -> statements, run in order


VERSION_TABLE = {
    SQLITE: """CREATE TABLE IF NOT EXISTS cb_schema_version (
    version     INTEGER NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL,
    applied_at  TEXT    NOT NULL
)""",
    POSTGRES: """CREATE TABLE IF NOT EXISTS cb_schema_version (
    version     integer     NOT NULL PRIMARY KEY,
    description text        NOT NULL,
    applied_at  timestamptz NOT NULL
)""",
}

_SQLITE_V1 = (
    """CREATE TABLE cb_person (
    person_key      TEXT    NOT NULL PRIMARY KEY CHECK (length(person_key) <= 64),
    masked_id       TEXT    NOT NULL CHECK (length(masked_id) <= 32),
    name            TEXT    NOT NULL CHECK (length(name) <= 64),
    birth_date      TEXT    NOT NULL CHECK (length(birth_date) = 10),
    sex             TEXT    NOT NULL CHECK (length(sex) <= 1),
    division_code   TEXT    NOT NULL CHECK (length(division_code) <= 6),
    "groups"        TEXT    NOT NULL,
    archive_version INTEGER NOT NULL CHECK (archive_version >= 1),
    updated_at      TEXT    NOT NULL,
    chain_head      TEXT    NOT NULL CHECK (length(chain_head) = 64)
)""",
    """CREATE TABLE cb_record (
    person_key       TEXT    NOT NULL CHECK (length(person_key) <= 64),
    unit             TEXT    NOT NULL CHECK (length(unit) <= 128),
    record_id        TEXT    NOT NULL CHECK (length(record_id) <= 128),
    record_version   INTEGER NOT NULL,
    group_code       TEXT    NOT NULL CHECK (length(group_code) <= 128),
    category         TEXT    NOT NULL CHECK (length(category) <= 128),
    severity         TEXT    CHECK (length(severity) <= 16),
    domain           TEXT    CHECK (length(domain) <= 128),
    occurred_at      TEXT    NOT NULL,
    published_at     TEXT    NOT NULL,
    disclosure_start TEXT    CHECK (length(disclosure_start) = 10),
    disclosure_end   TEXT    CHECK (length(disclosure_end) = 10),
    is_public        INTEGER NOT NULL CHECK (is_public IN (0, 1)),
    is_retracted     INTEGER NOT NULL CHECK (is_retracted IN (0, 1)),
    content_json     TEXT    NOT NULL,
    person_version   INTEGER NOT NULL,
    PRIMARY KEY (person_key, unit, record_id)
)""",
    """CREATE TABLE cb_update_log (
    person_key    TEXT    NOT NULL CHECK (length(person_key) <= 64),
    version       INTEGER NOT NULL CHECK (version >= 1),
    previous_hash TEXT    NOT NULL CHECK (length(previous_hash) = 64),
    hash          TEXT    NOT NULL CHECK (length(hash) = 64),
    body          TEXT    NOT NULL,
    event_id      TEXT    CHECK (length(event_id) <= 128),
    kind          TEXT    NOT NULL CHECK (length(kind) <= 32),
    committed_at  TEXT    NOT NULL,
    PRIMARY KEY (person_key, version)
)""",
    """CREATE TABLE cb_sink_offset (
    consumer_group TEXT    NOT NULL,
    topic          TEXT    NOT NULL,
    "partition"    INTEGER NOT NULL,
    next_offset    INTEGER NOT NULL,
    updated_at     TEXT    NOT NULL,
    PRIMARY KEY (consumer_group, topic, "partition")
)""",
    "CREATE INDEX cb_record_public ON cb_record (is_public, disclosure_end)",
)

_POSTGRES_V1 = (
    """CREATE TABLE cb_person (
    person_key      varchar(64)  NOT NULL PRIMARY KEY,
    masked_id       varchar(32)  NOT NULL,
    name            varchar(64)  NOT NULL,
    birth_date      date         NOT NULL,
    sex             varchar(1)   NOT NULL,
    division_code   varchar(6)   NOT NULL,
    "groups"        text         NOT NULL,
    archive_version bigint       NOT NULL CHECK (archive_version >= 1),
    updated_at      timestamptz  NOT NULL,
    chain_head      varchar(64)  NOT NULL
)""",
    """CREATE TABLE cb_record (
    person_key       varchar(64)  NOT NULL,
    unit             varchar(128) NOT NULL,
    record_id        varchar(128) NOT NULL,
    record_version   integer      NOT NULL,
    group_code       varchar(128) NOT NULL,
    category         varchar(128) NOT NULL,
    severity         varchar(16),
    domain           varchar(128),
    occurred_at      timestamptz  NOT NULL,
    published_at     timestamptz  NOT NULL,
    disclosure_start date,
    disclosure_end   date,
    is_public        boolean      NOT NULL,
    is_retracted     boolean      NOT NULL,
    content_json     text         NOT NULL,
    person_version   bigint       NOT NULL,
    PRIMARY KEY (person_key, unit, record_id)
)""",
    """CREATE TABLE cb_update_log (
    person_key    varchar(64)  NOT NULL,
    version       bigint       NOT NULL CHECK (version >= 1),
    previous_hash varchar(64)  NOT NULL,
    hash          varchar(64)  NOT NULL,
    body          text         NOT NULL,
    event_id      varchar(128),
    kind          varchar(32)  NOT NULL,
    committed_at  timestamptz  NOT NULL,
    PRIMARY KEY (person_key, version)
)""",
    """CREATE TABLE cb_sink_offset (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    "partition"    integer     NOT NULL,
    next_offset    bigint      NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (consumer_group, topic, "partition")
)""",
    "CREATE INDEX cb_record_public ON cb_record (is_public, disclosure_end)",
)

# -- migration 3: the web portal's accounts, sessions, submissions and progress rows ---------
# Times are milliseconds since the epoch (UTC) in both dialects: the portal only orders and
# shows them. Identity numbers are never stored here (outcome values are masked).


def _portal_tables(text: str, big: str) -> tuple[str, ...]:
    """The portal's tables; `text` and `big` are the dialect's text and 64-bit integer types."""
    return (
        f"""CREATE TABLE cb_portal_account (
    username      {text} NOT NULL PRIMARY KEY,
    role          {text} NOT NULL CHECK (role IN ('unit', 'office')),
    unit          {text},
    display_name  {text} NOT NULL,
    password_hash {text} NOT NULL,
    created_at    {big}  NOT NULL,
    disabled      {big}  NOT NULL DEFAULT 0,
    CHECK ((role = 'unit') = (unit IS NOT NULL))
)""",
        f"""CREATE TABLE cb_portal_session (
    session_hash {text} NOT NULL PRIMARY KEY,
    username     {text} NOT NULL,
    csrf_token   {text} NOT NULL,
    purpose      {text},
    created_at   {big}  NOT NULL,
    expires_at   {big}  NOT NULL
)""",
        f"""CREATE TABLE cb_portal_submission (
    submission_id {text} NOT NULL PRIMARY KEY,
    unit          {text} NOT NULL,
    username      {text} NOT NULL,
    filename      {text} NOT NULL,
    started_at    {big}  NOT NULL,
    finished_at   {big},
    status        {text} NOT NULL,
    total_rows    {big}  NOT NULL DEFAULT 0,
    published     {big}  NOT NULL DEFAULT 0,
    accepted      {big}  NOT NULL DEFAULT 0,
    duplicates    {big}  NOT NULL DEFAULT 0,
    rejected      {big}  NOT NULL DEFAULT 0,
    pending       {big}  NOT NULL DEFAULT 0,
    message       {text}
)""",
        "CREATE INDEX cb_portal_submission_unit ON cb_portal_submission (unit, started_at)",
        f"""CREATE TABLE cb_portal_outcome (
    submission_id {text} NOT NULL,
    source_row    {big}  NOT NULL,
    outcome       {text} NOT NULL,
    record_id     {text},
    event_id      {text},
    reason        {text},
    message       {text},
    field         {text},
    value         {text},
    PRIMARY KEY (submission_id, source_row)
)""",
        f"""CREATE TABLE cb_portal_progress (
    unit       {text} NOT NULL PRIMARY KEY,
    documents  {text} NOT NULL,
    next_step  {text} NOT NULL,
    remark     {text} NOT NULL,
    version    {big}  NOT NULL,
    updated_at {big}  NOT NULL,
    updated_by {text} NOT NULL
)""",
        f"""CREATE TABLE cb_portal_progress_history (
    unit       {text} NOT NULL,
    version    {big}  NOT NULL,
    documents  {text} NOT NULL,
    next_step  {text} NOT NULL,
    remark     {text} NOT NULL,
    changed_at {big}  NOT NULL,
    changed_by {text} NOT NULL,
    PRIMARY KEY (unit, version)
)""",
    )


PORTAL_TABLES = ("cb_portal_account", "cb_portal_session", "cb_portal_submission",
                 "cb_portal_outcome", "cb_portal_progress", "cb_portal_progress_history")

# -- migration 2: credit repair (信用修复): a record marked repaired, with its decision --------
# Added columns with defaults: rows written before read as not repaired, which is what their
# update-log bodies (without a `repair`) say, so `creditbus verify` agrees without a backfill.

_SQLITE_V2 = (
    "ALTER TABLE cb_record ADD COLUMN is_repaired INTEGER NOT NULL DEFAULT 0 "
    "CHECK (is_repaired IN (0, 1))",
    "ALTER TABLE cb_record ADD COLUMN repair_decision_number TEXT "
    "CHECK (length(repair_decision_number) <= 128)",
    "ALTER TABLE cb_record ADD COLUMN repair_date TEXT CHECK (length(repair_date) = 10)",
    "ALTER TABLE cb_record ADD COLUMN repair_authority TEXT "
    "CHECK (length(repair_authority) <= 256)",
)

_POSTGRES_V2 = (
    "ALTER TABLE cb_record ADD COLUMN is_repaired boolean NOT NULL DEFAULT false",
    "ALTER TABLE cb_record ADD COLUMN repair_decision_number varchar(128)",
    "ALTER TABLE cb_record ADD COLUMN repair_date date",
    "ALTER TABLE cb_record ADD COLUMN repair_authority varchar(256)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "persons, records, update log, sink offsets",
              {SQLITE: _SQLITE_V1, POSTGRES: _POSTGRES_V1}),
    Migration(2, "credit repair: cb_record.is_repaired and the repair decision",
              {SQLITE: _SQLITE_V2, POSTGRES: _POSTGRES_V2}),
    Migration(3, "web portal: accounts, sessions, submissions, outcomes, progress rows",
              {SQLITE: _portal_tables("TEXT", "INTEGER"),
               POSTGRES: _portal_tables("text", "bigint")}),
)


def latest_version() -> int:
    return MIGRATIONS[-1].version


def pending(current: int) -> list[Migration]:
    """The migrations after `current`, in order."""
    return [m for m in MIGRATIONS if m.version > current]


# -- roles (PostgreSQL) ------------------------------------------------------------------------

SINK_ROLE = "sink"
READER_ROLE = "reader"
PORTAL_ROLE = "portal"

GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    SINK_ROLE: {
        "cb_person": ("SELECT", "INSERT", "UPDATE"),
        "cb_record": ("SELECT", "INSERT", "UPDATE"),
        "cb_update_log": ("SELECT", "INSERT"),
        "cb_sink_offset": ("SELECT", "INSERT", "UPDATE"),
        "cb_schema_version": ("SELECT",),
        **{table: () for table in PORTAL_TABLES},
    },
    READER_ROLE: {
        "cb_person": ("SELECT",),
        "cb_record": ("SELECT",),
        "cb_update_log": ("SELECT",),
        "cb_sink_offset": (),
        "cb_schema_version": ("SELECT",),
        **{table: () for table in PORTAL_TABLES},
    },
    PORTAL_ROLE: {
        "cb_person": ("SELECT",),
        "cb_record": ("SELECT",),
        "cb_update_log": ("SELECT",),
        "cb_sink_offset": (),
        "cb_schema_version": ("SELECT",),
        **{table: ("SELECT", "INSERT", "UPDATE", "DELETE") for table in PORTAL_TABLES},
    },
}
"""Table privileges of the run-time roles, exactly (`creditbus db migrate` revokes anything
else on these tables). The sink writes the archive tables and may never delete, nor change a
row of the append-only update log; the reader role (query service, reports, verify) only reads
the archives; the portal role reads the archives and keeps its own tables (accounts,
sessions, submissions, progress rows). None creates or alters anything: the schema belongs to
the owner who runs `creditbus db migrate`. A new table needs its line here (a test checks
every table has one)."""
