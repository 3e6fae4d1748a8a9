"""A throw-away PostgreSQL server for the tests (a pytest plugin module).

Finds `initdb`, `pg_ctl` and `postgres` (PATH, then /usr/lib/postgresql/*/bin); when they are
missing and we are root with apt-get, installs the Debian `postgresql` package (saying so on
stderr). Then it initialises a cluster in a temporary directory, starts it on a free loopback
port, creates a database and hands out its URL; at the end it stops the server and removes the
directory. PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
system user. Tests that need PostgreSQL never skip: without it they fail, saying why.

`postgres_secure_cluster` is a second server as a deployment runs it: TLS with a certificate
of a throw-away CA (`ca_file`), and password (SCRAM) authentication for every role but the
test harness's superuser.

Use with `pytest -p tests.pg_fixture` or `pytest_plugins = ["tests.pg_fixture"]`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from creditbus.devtools.kafka.ports import free_port

PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")
SERVER_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be found, installed or started here."""


def find_bin_dir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    found = [shutil.which(p) for p in PG_PROGRAMS]
    if all(found):
        return Path(str(found[0])).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                        else 0, reverse=True)
    for directory in candidates:
        if all(os.access(Path(directory) / p, os.X_OK) for p in PG_PROGRAMS):
            return Path(directory)
    return None


def install_postgres() -> None:
    """apt-get install postgresql (root only); loud on stderr, as it changes the machine."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PostgresUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or in "
            "/usr/lib/postgresql/*/bin, and they cannot be installed automatically (needs root "
            "and apt-get). Install PostgreSQL 13+ (Debian/Ubuntu: apt-get install postgresql).")
    print("tests: PostgreSQL is missing; installing the Debian package 'postgresql' with "
          "apt-get (once)...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run("apt-get update -qq && apt-get install -y -qq postgresql",
                            shell=True, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise PostgresUnavailable("apt-get install postgresql failed:\n"
                                  + (result.stderr or result.stdout)[-2000:])


@dataclass
class PostgresCluster:
    """A running throw-away cluster."""

    bin_dir: Path
    root: Path
    port: int
    as_user: str | None  # run the server programs as this user (when we are root)
    ca_file: Path | None = None  # the CA of the server's certificate, when TLS is on

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bin_dir / program), *args]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                cwd=self.root)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{program} failed (exit {result.returncode}):\n{result.stderr[-2000:]}\n{tail}")

    def start(self, *, password_auth: bool = False, tls: tuple[Path, Path] | None = None,
              log_statements: bool = False) -> None:
        """initdb and start; `password_auth`: SCRAM for every role but the superuser over
        TCP; `tls`: (certificate chain, key) files the server presents; `log_statements`:
        every statement in `server_log` (to prove what never reaches it)."""
        self._run("initdb", "-D", str(self.data_dir), "-U", SERVER_USER, "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=50")
        if password_auth:
            self._server_file("pg_hba.conf", (
                "local all all trust\n"
                f"host all {SERVER_USER} 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 scram-sha-256\n").encode())
        if tls:
            self._server_file("server.crt", tls[0].read_bytes())
            self._server_file("server.key", tls[1].read_bytes())
            options += " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
        if log_statements:
            options += " -c log_statement=all"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    @property
    def server_log(self) -> Path:
        return self.root / "server.log"

    def _server_file(self, name: str, data: bytes) -> None:
        """A file in the data directory, 0600, owned by the server's user."""
        path = self.data_dir / name
        path.write_bytes(data)
        path.chmod(0o600)
        if self.as_user:
            account = pwd.getpwnam(self.as_user)
            os.chown(path, account.pw_uid, account.pw_gid)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop",
                      timeout=60)
        except (PostgresUnavailable, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "stop")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.admin_url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_cluster(*, password_auth: bool = False, tls: tuple[Path, Path] | None = None,
                  log_statements: bool = False) -> PostgresCluster:
    """Find (or install) PostgreSQL and start a cluster in a fresh temporary directory
    (options: `PostgresCluster.start`)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        install_postgres()
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable("the postgresql package is installed, but initdb, pg_ctl "
                                      "and postgres are still not found")
    as_user = None
    root = Path(tempfile.mkdtemp(prefix="creditbus-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(
                "running as root, PostgreSQL needs an unprivileged system user "
                f"{SERVER_USER!r} to run as, and there is none") from None
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = SERVER_USER
    cluster = PostgresCluster(bin_dir, root, free_port(), as_user)
    try:
        cluster.start(password_auth=password_auth, tls=tls, log_statements=log_statements)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster


def stop_cluster(cluster: PostgresCluster) -> None:
    try:
        cluster.stop()
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                shutil.rmtree(cluster.root)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = start_cluster()
    except (PostgresUnavailable, subprocess.TimeoutExpired, OSError) as exc:
        pytest.fail(f"PostgreSQL is needed by this test and could not be had: {exc}",
                    pytrace=False)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(scope="session")
def postgres_secure_cluster(tmp_path_factory: pytest.TempPathFactory
                            ) -> Iterator[PostgresCluster]:
    """A second server with TLS (certificate for 127.0.0.1 and localhost, CA in `ca_file`),
    SCRAM password authentication for every role but the harness's superuser, and every
    statement logged."""
    from tests.tls_certs import issue_server_cert, make_ca

    certs = tmp_path_factory.mktemp("pg-tls")
    ca = make_ca(certs, "creditbus test PostgreSQL CA")
    server = issue_server_cert(ca, certs)
    try:
        cluster = start_cluster(password_auth=True, tls=(server.cert_path, server.key_path),
                                log_statements=True)
    except (PostgresUnavailable, subprocess.TimeoutExpired, OSError) as exc:
        pytest.fail(f"PostgreSQL is needed by this test and could not be had: {exc}",
                    pytrace=False)
    cluster.ca_file = ca.cert_path
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """URL of a database in the session's throw-away PostgreSQL server."""
    return postgres_cluster.create_database("creditbus_test")


@pytest.fixture()
def fresh_postgres_url(postgres_cluster: PostgresCluster) -> Iterator[Callable[[], str]]:
    """A factory of empty databases in the session's server, dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return postgres_cluster.create_database(name)

    try:
        yield make
    finally:
        for name in made:
            postgres_cluster.drop_database(name)
