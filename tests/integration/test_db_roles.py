"""Least privilege in the platform database, on a real PostgreSQL server run as a deployment
runs it (TLS with verify-full, SCRAM passwords, every statement logged): `creditbus db migrate`
run by a non-superuser owner makes the sink's and the reader's roles, idempotently; the reader
cannot write; the sink writes its tables and nothing else; a sink with its role never
migrates and says what to run; passwords never reach any log."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from creditbus.connectors.backoff import Backoff
from creditbus.connectors.consuming import LoopOptions
from creditbus.connectors.platform.verify import run as verify_run
from psycopg import errors

from creditbus.contract.wire import Wire
from creditbus.platformdb import schema
from creditbus.platformdb.db import SchemaNotReady, open_db, prepare_schema
from creditbus.topics import sink_deadletter_topic, updates_topic
from tests.bus import produce
from tests.pg_fixture import PostgresCluster
from tests.platform_data import generate
from tests.tls_certs import make_ca

pytestmark = pytest.mark.postgres

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass
class Deployment:
    cluster: PostgresCluster
    database: str
    owner: str
    sink_role: str
    reader_role: str
    passwords: dict[str, str]
    env: dict[str, str]

    def url(self, role: str, *, database: str | None = None, ca: Path | None = None,
            host: str = "localhost", hostaddr: str = "") -> str:
        """A verify-full URL for `role` (with its password) against the CA of the cluster."""
        query = f"sslmode=verify-full&sslrootcert={ca or self.cluster.ca_file}"
        if hostaddr:
            query += f"&hostaddr={hostaddr}"
        return (f"postgresql://{role}:{self.passwords[role]}@{host}:{self.cluster.port}/"
                f"{database or self.database}?{query}")

    def migrate(self, **extra_env: str) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, CREDITBUS_DATABASE_URL=self.url(self.owner), **extra_env)
        return subprocess.run([sys.executable, "-m", "creditbus.cli.main", "db", "migrate"],
                              env=env, capture_output=True, text=True, timeout=120)


def _admin(cluster: PostgresCluster) -> psycopg.Connection[Any]:
    return psycopg.connect(cluster.admin_url(), autocommit=True)


@pytest.fixture()
def deployment(postgres_secure_cluster: PostgresCluster, tmp_path: Path
               ) -> Iterator[Deployment]:
    """A database owned by a non-superuser owner (CREATEROLE), and the settings of
    `creditbus db migrate`: role names of this test, the sink's password in a 0600 file."""
    tag = uuid.uuid4().hex[:8]
    owner, sink, reader = f"cb_owner_{tag}", f"cb_sink_{tag}", f"cb_reader_{tag}"
    passwords = {name: secrets.token_urlsafe(24) for name in (owner, sink, reader)}
    database = f"cb_{tag}"
    with _admin(postgres_secure_cluster) as admin:
        admin.execute(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{passwords[owner]}'")
        admin.execute(f"CREATE DATABASE {database} OWNER {owner}")
    password_file = tmp_path / "sink-db-password"
    password_file.write_text(passwords[sink] + "\n")
    password_file.chmod(0o600)
    env = dict(os.environ, CREDITBUS_HOME=str(tmp_path / "home"),
               CREDITBUS_DB_SINK_ROLE=sink, CREDITBUS_DB_READER_ROLE=reader,
               CREDITBUS_DB_SINK_PASSWORD_FILE=str(password_file),
               CREDITBUS_DB_READER_PASSWORD=passwords[reader])
    env.pop("CREDITBUS_DB_SINK_PASSWORD", None)
    try:
        yield Deployment(postgres_secure_cluster, database, owner, sink, reader, passwords, env)
    finally:
        with _admin(postgres_secure_cluster) as admin:
            for name in (database, f"{database}_empty"):
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            for role in (sink, reader, owner):
                admin.execute(f"DROP ROLE IF EXISTS {role}")


def _state(d: Deployment) -> dict[str, Any]:
    """Roles' attributes, every privilege of the two roles on every table, schema version."""
    with _admin(d.cluster) as admin:
        roles = admin.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles "
            "WHERE rolname = ANY(%s) ORDER BY rolname", ([d.sink_role, d.reader_role],)
        ).fetchall()
    with psycopg.connect(d.cluster.admin_url(d.database), autocommit=True) as conn:
        privileges = {
            (role, table): tuple(p for p in PRIVILEGES if conn.execute(
                "SELECT has_table_privilege(%s, %s, %s)", (role, table, p)).fetchone()[0])
            for role in (d.sink_role, d.reader_role) for table in schema.TABLES}
        create = {role: conn.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')",
                                     (role,)).fetchone()[0]
                  for role in (d.sink_role, d.reader_role)}
        version = conn.execute("SELECT max(version) FROM cb_schema_version").fetchone()[0]
    return {"roles": roles, "privileges": privileges, "create": create, "version": version}


def test_every_table_has_a_grant_decision_for_each_role() -> None:
    for role in (schema.SINK_ROLE, schema.READER_ROLE):
        assert set(schema.GRANTS[role]) == set(schema.TABLES)


def test_db_migrate_makes_least_privilege_roles_idempotently(deployment: Deployment) -> None:
    d = deployment
    first = d.migrate()
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert f"schema: version none -> {schema.latest_version()}" in out
    assert f"role {d.sink_role} (sink): created, password set from " \
           "CREDITBUS_DB_SINK_PASSWORD(_FILE)" in out
    assert f"role {d.reader_role} (reader): created, password set" in out
    assert "grants: " in out and " added, 0 removed" in out
    state = _state(d)
    assert state["version"] == schema.latest_version()
    for name, superuser, createrole, createdb, login in state["roles"]:
        assert (superuser, createrole, createdb, login) == (False, False, False, True), name
    for (role, table), held in state["privileges"].items():
        kind = schema.SINK_ROLE if role == d.sink_role else schema.READER_ROLE
        assert held == schema.GRANTS[kind][table], (role, table)
    assert state["create"] == {d.sink_role: False, d.reader_role: False}

    second = d.migrate()
    assert second.returncode == 0, second.stderr
    assert f"schema: version {schema.latest_version()} (nothing to migrate)" in second.stdout
    assert f"role {d.sink_role} (sink): exists, password set" in second.stdout
    in_place = sum(len(privileges) for grants in schema.GRANTS.values()
                   for privileges in grants.values())
    assert f"grants: {in_place} in place (nothing changed)" in second.stdout
    assert _state(d) == state
    # the roles still log in with their passwords after the second run
    for role in (d.sink_role, d.reader_role):
        with psycopg.connect(d.url(role)) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == role

    # no password in the command's output, nor in the server's statement log, which does
    # show that the roles' passwords were set (as SCRAM verifiers)
    log = d.cluster.server_log.read_text(errors="replace")
    assert f'ALTER ROLE "{d.sink_role}" PASSWORD \'SCRAM-SHA-256$' in log
    for role in (d.sink_role, d.reader_role):
        secret = d.passwords[role]
        for text in (first.stdout, first.stderr, second.stdout, second.stderr, log):
            assert secret not in text


def test_the_reader_cannot_write_and_the_sink_writes_only_what_it_must(
        deployment: Deployment) -> None:
    d = deployment
    assert d.migrate().returncode == 0
    denied = (errors.InsufficientPrivilege,)
    with psycopg.connect(d.url(d.reader_role), autocommit=True) as reader:
        assert reader.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                              ).fetchone()[0] is True
        assert reader.execute("SELECT count(*) FROM cb_person").fetchone()[0] == 0
        reader.execute("SELECT * FROM cb_update_log LIMIT 1")
        for statement in (
            "INSERT INTO cb_sink_offset VALUES ('g', 't', 0, 1, now())",
            "INSERT INTO cb_person VALUES ('k', 'm', 'n', '2000-01-01', 'M', '360702', '[]', "
            "1, now(), repeat('0', 64))",
            "UPDATE cb_record SET is_public = false",
            "DELETE FROM cb_update_log",
            "TRUNCATE cb_person",
            "SELECT * FROM cb_sink_offset",
            "CREATE TABLE cb_mine (x int)",
            "DROP TABLE cb_person",
        ):
            with pytest.raises(denied):
                reader.execute(statement)

    with psycopg.connect(d.url(d.sink_role), autocommit=True) as sink:
        sink.execute("INSERT INTO cb_sink_offset VALUES ('g', 't', 0, 1, now())")
        sink.execute("UPDATE cb_sink_offset SET next_offset = 2")
        for statement in (
            "DELETE FROM cb_person",
            "DELETE FROM cb_sink_offset",
            "UPDATE cb_update_log SET body = ''",  # the log is append-only, even for the sink
            "DELETE FROM cb_update_log",
            "TRUNCATE cb_record",
            "INSERT INTO cb_schema_version VALUES (99, 'x', now())",
            "CREATE TABLE cb_mine (x int)",
            "ALTER TABLE cb_person ADD COLUMN x int",
            "DROP TABLE cb_record",
        ):
            with pytest.raises(denied):
                sink.execute(statement)


def test_the_sink_with_its_role_writes_and_the_reader_verifies(
        deployment: Deployment, kafka_broker: Any, topics: Any, topic_prefix: str) -> None:
    from creditbus.connectors.platform.sink import run_platform_sink

    d = deployment
    assert d.migrate().returncode == 0
    topics.create("archive.updates", 2)
    topics.create("sink.deadletter", 1)
    stream = generate(40, 400, seed=7)
    produce(kafka_broker.bootstrap, stream.topic_messages(updates_topic(topic_prefix)))
    options = LoopOptions(bootstrap=kafka_broker.bootstrap, topic=updates_topic(topic_prefix),
                          group=f"sink-{uuid.uuid4().hex[:8]}", batch_size=100, batch_ms=100,
                          until_idle=3.0, backoff=Backoff(initial=0.05, factor=2.0, cap=1.0))
    code = run_platform_sink(options, d.url(d.sink_role), sink_deadletter_topic(topic_prefix),
                             Wire())
    assert code == 0
    with psycopg.connect(d.url(d.reader_role)) as reader:
        logged = reader.execute("SELECT count(*) FROM cb_update_log").fetchone()[0]
        persons = reader.execute("SELECT count(*) FROM cb_person").fetchone()[0]
    assert logged == len(stream.updates)
    assert persons == len({u["person_key"] for u in stream.updates})
    assert verify_run(d.url(d.reader_role)) == 0  # verify needs nothing but the reader role


def test_a_sink_role_never_migrates_and_says_what_to_run(
        deployment: Deployment, bus_env: dict[str, str]) -> None:
    d = deployment
    assert d.migrate().returncode == 0  # the roles exist; a second database has no schema
    empty = f"{d.database}_empty"
    with _admin(d.cluster) as admin:
        admin.execute(f"CREATE DATABASE {empty} OWNER {d.owner}")
    url = d.url(d.sink_role, database=empty)
    db = open_db(url)
    try:
        with pytest.raises(SchemaNotReady) as caught:
            prepare_schema(db)
        assert db.schema_version() is None  # nothing was created
    finally:
        db.close()
    message = str(caught.value)
    assert "run `creditbus db migrate` with the database owner's URL" in message
    assert d.sink_role in message and d.passwords[d.sink_role] not in message

    # the command: one line on stderr, exit 4 (a DatabaseError), no traceback
    env = dict(bus_env, CREDITBUS_DATABASE_URL=url, CREDITBUS_SINK_METRICS_PORT="0")
    done = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "sink",
                           "--until-idle", "2"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 4, done.stderr
    errors_out = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors_out) == 1 and "creditbus db migrate" in errors_out[0]
    assert "Traceback" not in done.stderr and d.passwords[d.sink_role] not in done.stderr

    # the owner, in development, still migrates on start as before
    owner_db = open_db(d.url(d.owner, database=empty))
    try:
        assert prepare_schema(owner_db) == schema.latest_version()
    finally:
        owner_db.close()


def test_tls_verify_full_refuses_another_ca_and_another_host_name(
        deployment: Deployment, tmp_path: Path) -> None:
    d = deployment
    with psycopg.connect(d.url(d.owner)) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone()[0] is True
    stranger = make_ca(tmp_path / "other-ca", "some other CA")
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(d.url(d.owner, ca=stranger.cert_path), connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        psycopg.connect(d.url(d.owner, host="db.example.org", hostaddr="127.0.0.1"),
                        connect_timeout=5)


def test_production_refuses_owner_logins_at_run_time(
        deployment: Deployment, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """What each login could change, and CREDITBUS_ENV=production refusing the owner in the
    sink and a writing login in the query service."""
    from creditbus.cli import query_cmd
    from creditbus.settings import Settings

    d = deployment
    assert d.migrate().returncode == 0
    expected = {
        d.reader_role: [],
        d.sink_role: ["cb_person", "cb_record", "cb_sink_offset", "cb_update_log"],
        d.owner: sorted(schema.TABLES),
    }
    for role, tables in expected.items():
        db = open_db(d.url(role))
        try:
            assert db.writable_tables() == tables, role
        finally:
            db.close()

    monkeypatch.setenv("CREDITBUS_ENV", "production")
    owner_db = open_db(d.url(d.owner))
    try:
        with pytest.raises(SchemaNotReady, match="CREDITBUS_ENV=production and the sink "
                                                 f"connects as {d.owner}"):
            prepare_schema(owner_db)
    finally:
        owner_db.close()
    sink_db = open_db(d.url(d.sink_role))
    try:
        assert prepare_schema(sink_db) == schema.latest_version()  # its own role: fine
    finally:
        sink_db.close()

    monkeypatch.setenv("CREDITBUS_DATABASE_URL", d.url(d.sink_role))
    assert not query_cmd._database_login_is_read_only(Settings.from_env())
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: CREDITBUS_ENV=production and the "
                                               "database login")
    assert "may write cb_person, cb_record, cb_sink_offset, cb_update_log" in err[0]
    assert d.passwords[d.sink_role] not in err[0]
    monkeypatch.setenv("CREDITBUS_DATABASE_URL", d.url(d.reader_role))
    assert query_cmd._database_login_is_read_only(Settings.from_env())


def test_db_migrate_on_sqlite_and_on_a_newer_schema(tmp_path: Path) -> None:
    from creditbus.platformdb.roles import RoleSetupError, run_migrate

    db = open_db(f"sqlite:///{tmp_path}/platform.db")
    try:
        first = run_migrate(db, [])
        assert first.lines == [f"schema: version none -> {schema.latest_version()}",
                               "roles: none in SQLite (protect the file with its permissions)"]
        assert run_migrate(db, []).lines[0].endswith("(nothing to migrate)")
        with db.transaction():
            db._connection().execute(  # type: ignore[attr-defined]
                "INSERT INTO cb_schema_version VALUES (99, 'from the future', '')")
        with pytest.raises(RoleSetupError, match="newer than this program's"):
            run_migrate(db, [])
    finally:
        db.close()
