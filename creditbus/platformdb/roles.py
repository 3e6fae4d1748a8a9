"""`creditbus db migrate`: the schema and the run-time roles, set up by the database owner.

Run with the owner's URL, it applies the missing migrations, then (PostgreSQL) creates the
sink's and the reader's login roles when they are missing, sets their passwords when given,
and makes their table privileges exactly `schema.GRANTS`. Everything is idempotent: a second
run changes nothing and says so.

Passwords never travel or get logged in clear: the client computes the SCRAM-SHA-256 verifier
(libpq's PQencryptPasswordConn) and only the verifier is sent in `ALTER ROLE ... PASSWORD`, so
not even the server's statement log holds the password.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from creditbus.errors import DatabaseError
from creditbus.platformdb import schema
from creditbus.platformdb.db import PlatformDB, open_db, redact_url

ROLE_LOCK = 0x63726564  # the migration's advisory lock: one owner-side change at a time


class RoleSetupError(DatabaseError):
    """A role cannot be set up as asked (e.g. it is the owner itself, or a superuser)."""


@dataclass(frozen=True)
class RoleSpec:
    kind: str
    """`schema.SINK_ROLE` or `schema.READER_ROLE`: which privileges."""
    name: str
    password: str = field(default="", repr=False)
    password_setting: str = ""
    """Where the password comes from, for messages (never the password)."""


@dataclass
class MigrateReport:
    schema_before: int | None = None
    schema_after: int = 0
    lines: list[str] = field(default_factory=list)


def run_migrate(db: PlatformDB, roles: list[RoleSpec]) -> MigrateReport:
    """Migrate the schema; on PostgreSQL also the roles and their grants."""
    report = MigrateReport(schema_before=db.schema_version())
    if report.schema_before is not None and report.schema_before > schema.latest_version():
        raise RoleSetupError(f"the database holds schema version {report.schema_before}, newer "
                             f"than this program's {schema.latest_version()}: upgrade it")
    report.schema_after = db.migrate()
    before = "none" if report.schema_before is None else str(report.schema_before)
    if report.schema_before == report.schema_after:
        report.lines.append(f"schema: version {report.schema_after} (nothing to migrate)")
    else:
        report.lines.append(f"schema: version {before} -> {report.schema_after}")
    if db.dialect != schema.POSTGRES:
        report.lines.append("roles: none in SQLite (protect the file with its permissions)")
        return report
    report.lines += _setup_roles(db, roles)
    return report


def _setup_roles(db: PlatformDB, roles: list[RoleSpec]) -> list[str]:
    from psycopg import sql

    conn = db._connection()  # type: ignore[attr-defined]  # the PostgreSQL back end's
    lines: list[str] = []
    with _locked(db):
        owner = conn.execute("SELECT current_user").fetchone()[0]
        names = [r.name for r in roles]
        if len(set(names)) != len(names):
            raise RoleSetupError(f"the run-time roles must differ ({', '.join(names)})")
        grants_before = _grants(conn, names)
        for role in roles:
            lines.append(_setup_role(conn, role, owner))
        schema_name = conn.execute("SELECT current_schema()").fetchone()[0]
        for role in roles:
            ident = sql.Identifier(role.name)
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema_name), ident))
            for table in schema.TABLES:
                wanted = schema.GRANTS[role.kind][table]
                conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(
                    sql.Identifier(table), ident))
                if wanted:
                    conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                        sql.SQL(", ").join(sql.SQL(p) for p in wanted), sql.Identifier(table),
                        ident))
        for table in schema.TABLES:
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC").format(
                sql.Identifier(table)))
        lines.append(_revoke_public_create(conn, schema_name))
        grants_after = _grants(conn, names)
    added, removed = grants_after - grants_before, grants_before - grants_after
    if added or removed:
        lines.append(f"grants: {len(added)} added, {len(removed)} removed "
                     f"({len(grants_after)} in place)")
    else:
        lines.append(f"grants: {len(grants_after)} in place (nothing changed)")
    return lines


@contextmanager
def _locked(db: PlatformDB) -> Iterator[None]:
    with db.transaction():
        db._connection().execute("SELECT pg_advisory_xact_lock(%s)",  # type: ignore[attr-defined]
                                 (ROLE_LOCK,))
        yield


def _setup_role(conn: Any, role: RoleSpec, owner: str) -> str:
    from psycopg import sql

    if role.name == owner:
        raise RoleSetupError(f"the {role.kind} role is {role.name}, the login running this "
                             "migration: run-time roles must not be the owner")
    ident = sql.Identifier(role.name)
    row = conn.execute("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = %s",
                       (role.name,)).fetchone()
    if row is None:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                             "NOREPLICATION").format(ident))
        state = "created"
    else:
        if row[0]:
            raise RoleSetupError(f"role {role.name} is a superuser: it cannot serve as the "
                                 f"{role.kind} role; pick another name")
        if not row[1]:
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(ident))
        state = "exists"
    if role.password:
        verifier = conn.pgconn.encrypt_password(role.password.encode("utf-8"),
                                                role.name.encode("utf-8"), b"scram-sha-256")
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            ident, sql.Literal(verifier.decode("ascii"))))
        return f"role {role.name} ({role.kind}): {state}, password set from " \
               f"{role.password_setting}"
    if state == "created":
        return (f"role {role.name} ({role.kind}): created without a password: set "
                f"{role.password_setting} and run again, or authenticate it otherwise "
                "(certificate, peer)")
    return f"role {role.name} ({role.kind}): exists, password unchanged"


def _revoke_public_create(conn: Any, schema_name: str) -> str:
    """Nobody but the owner creates objects in the schema (PostgreSQL 15's default; older
    servers let PUBLIC create in `public`)."""
    from psycopg import errors, sql

    allowed = conn.execute("SELECT has_schema_privilege('public', %s, 'CREATE')",
                           (schema_name,)).fetchone()[0]
    if not allowed:
        return f"schema {schema_name}: PUBLIC may not create objects"
    try:
        with conn.transaction():
            conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(
                sql.Identifier(schema_name)))
    except errors.InsufficientPrivilege:
        return (f"schema {schema_name}: WARNING PUBLIC may create objects and this login may "
                "not revoke it: ask the schema's owner to run REVOKE CREATE ON SCHEMA "
                f"{schema_name} FROM PUBLIC")
    return f"schema {schema_name}: CREATE revoked from PUBLIC"


def _grants(conn: Any, roles: list[str]) -> set[tuple[str, str, str]]:
    """(table, role, privilege) of our tables for `roles`."""
    rows = conn.execute(
        """SELECT c.relname, r.rolname, a.privilege_type
           FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
           JOIN pg_roles r ON r.oid = a.grantee
           WHERE c.relnamespace = to_regnamespace(current_schema())
             AND c.relname = ANY(%s) AND r.rolname = ANY(%s)""",
        (list(schema.TABLES), roles)).fetchall()
    return {(t, r, p) for t, r, p in rows}


def role_specs(settings: Any) -> list[RoleSpec]:
    """The run-time roles as the settings name them."""
    return [
        RoleSpec(schema.SINK_ROLE, settings.db_sink_role, settings.db_sink_password,
                 "CREDITBUS_DB_SINK_PASSWORD(_FILE)"),
        RoleSpec(schema.READER_ROLE, settings.db_reader_role, settings.db_reader_password,
                 "CREDITBUS_DB_READER_PASSWORD(_FILE)"),
        RoleSpec(schema.PORTAL_ROLE, settings.db_portal_role, settings.db_portal_password,
                 "CREDITBUS_DB_PORTAL_PASSWORD(_FILE)"),
    ]


def run_db_migrate(settings: Any, url: str) -> int:
    """The command: print what was done, one line each; 0, or 2 with one error line."""
    db = open_db(url, application_name="creditbus-migrate")
    try:
        report = run_migrate(db, role_specs(settings))
    except RoleSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the drivers' errors share no base class  # noqa: BLE001
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"error: cannot migrate {redact_url(url)}: {type(exc).__name__}: {first}",
              file=sys.stderr)
        return 2
    finally:
        db.close()
    print(f"database {redact_url(url)}")
    for line in report.lines:
        print(line)
    return 0
