"""Encrypted, authenticated units and least-privilege ACLs on a real broker in secure mode.

A second broker of this module's own (not the session's plaintext one) runs with SASL/SCRAM over
TLS (`SASL_SSL`, a certificate from its local CA) and the StandardAuthorizer; `creditbus acl
apply` creates the bus's principals, and confluent-kafka clients with the generated credentials
and the CA show what each principal may and may not do. Clients without the CA are refused with
one clear line; the whole bus (publisher, worker, sink, query) runs over TLS.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from creditbus.devtools.kafka.local import BrokerState, LocalBroker, answers, local_admin_config
from creditbus.devtools.kafka.ports import free_port
from creditbus.devtools.sample import sample_rows, write_rows
from creditbus.identity import person_key
from creditbus.kafka.tls import certificate_names, ensure_ca
from creditbus.settings import Settings
from creditbus.topics import (
    audit_topic,
    by_person_topic,
    deadletter_topic,
    raw_topic,
    unit_of_raw_topic,
    updates_topic,
    worker_app_id,
)

# `creditbus acl ...` through the command's own register/run, whether or not the lead has
# listed it in creditbus.cli.main yet.
ACL_CLI = """
import argparse, sys
from creditbus.cli import acl_cmd
parser = argparse.ArgumentParser(prog="creditbus")
acl_cmd.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""
SECRET_ENV = ("CREDITBUS_BOOTSTRAP", "CREDITBUS_KAFKA_USERNAME", "CREDITBUS_KAFKA_PASSWORD",
              "CREDITBUS_TOPIC_PREFIX", "CREDITBUS_HOME", "CREDITBUS_KAFKA_CA_FILE",
              "CREDITBUS_KAFKA_PASSWORD_FILE", "CREDITBUS_ENV")


@dataclass
class SecureBus:
    broker: LocalBroker
    state: BrokerState
    home: Path
    prefix: str
    env: dict[str, str]
    credentials_file: Path
    users: dict[str, str]
    outputs: list[str]
    """Everything `acl apply` printed (stdout and stderr), to check that no password shows."""

    @property
    def ca_file(self) -> str:
        return self.state.ca_file

    def auth(self, user: str, password: str | None = None) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.state.bootstrap,
            "security.protocol": "SASL_SSL", "ssl.ca.location": self.ca_file,
            "ssl.endpoint.identification.algorithm": "https",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user,
            "sasl.password": self.users[user] if password is None else password,
        }

    def client_env(self, user: str, **extra: str) -> dict[str, str]:
        """The environment of a bus process running as `user`, verifying the broker with the
        CA (named explicitly: the process's own CREDITBUS_HOME knows no local broker)."""
        return dict(self.env, CREDITBUS_BOOTSTRAP=self.state.bootstrap,
                    CREDITBUS_KAFKA_USERNAME=user, CREDITBUS_KAFKA_PASSWORD=self.users[user],
                    CREDITBUS_KAFKA_CA_FILE=self.ca_file, **extra)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.state.bootstrap,
                            **local_admin_config(self.home, self.state.bootstrap)})


def acl_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ACL_CLI, "acl", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def secure_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBus]:
    settings = Settings.from_env()
    home = tmp_path_factory.mktemp("secure-home")
    broker = LocalBroker(home, settings.cache, settings.kafka_version, heap="512m", secure=True,
                         jvm_options=settings.kafka_jvm_options)
    state = broker.up(quiet=True)
    try:
        prefix = f"s{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        env.update(CREDITBUS_HOME=str(home), CREDITBUS_TOPIC_PREFIX=prefix,
                   CREDITBUS_PARTITIONS="2")
        first = acl_cli(env, "apply")
        assert first.returncode == 0, first.stderr
        credentials_file = home / "kafka" / "credentials.json"
        users = json.loads(credentials_file.read_text())["users"]
        yield SecureBus(broker, state, home, prefix, env, credentials_file, users,
                        [first.stdout, first.stderr])
    finally:
        broker.down(purge=True)


def produce_as(bus: SecureBus, user: str, topic: str, value: bytes = b"probe",
               key: bytes | None = None) -> KafkaError | None:
    """Produce one message; the delivery error (None when it was written)."""
    producer = Producer({**bus.auth(user), "enable.idempotence": True,
                         "message.timeout.ms": 15000})
    outcome: list[KafkaError | None] = []
    producer.produce(topic, value, key, on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(20)
    assert outcome, "no delivery report"
    return outcome[0]


def consume_as(bus: SecureBus, user: str, topic: str, group: str, *, until: bytes | None = None,
               timeout: float = 30.0) -> tuple[list[bytes], list[int]]:
    """Read from the beginning without committing; (values, error codes) once the value `until`
    arrived, an authorization error came, or the time is up."""
    consumer = Consumer({**bus.auth(user), "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[bytes] = []
    errors: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and (until is None or until not in values):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                errors.append(msg.error().code())
                if msg.error().code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                          KafkaError.GROUP_AUTHORIZATION_FAILED):
                    break
                continue
            values.append(msg.value())
    finally:
        consumer.close()
    return values, errors


def test_secure_broker_requires_tls_and_authentication(secure_bus: SecureBus) -> None:
    state = json.loads((secure_bus.home / "kafka" / "broker.json").read_text())
    assert state["secure"] is True
    assert state["listener"] == f"SASL_SSL://{secure_bus.state.bootstrap}"
    kafka = secure_bus.home / "kafka"
    assert state["ca_file"] == str(kafka / "tls" / "ca.pem")
    for name in ("admin.secret", "server.properties", "credentials.json",
                 "tls/broker.keystore.pem", "tls/ca.key.pem"):
        assert stat.S_IMODE((kafka / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((kafka / "tls").stat().st_mode) == 0o700
    assert certificate_names(kafka / "tls" / "broker.keystore.pem") >= {"127.0.0.1"}
    bootstrap = secure_bus.state.bootstrap
    assert not answers(bootstrap, timeout=3.0)  # plaintext: no metadata
    password = secure_bus.users["worker"]
    assert not answers(bootstrap, timeout=3.0, config={  # SCRAM without TLS: none either
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "worker", "sasl.password": password})
    assert not answers(bootstrap, timeout=3.0, config={  # TLS, CA, no SASL: none either
        "security.protocol": "SSL", "ssl.ca.location": secure_bus.ca_file})
    assert answers(bootstrap, timeout=10.0, config=secure_bus.auth("worker"))
    status = subprocess.run(
        [sys.executable, "-m", "creditbus.cli.main", "kafka", "status"], env=secure_bus.env,
        capture_output=True, text=True, timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "secure" in status.stdout and "running" in status.stdout


def test_acl_apply_is_idempotent_and_never_prints_a_password(secure_bus: SecureBus) -> None:
    users = secure_bus.users
    assert {"worker", "sink", "query", "unit-justice", "unit-assoc_lawyers"} <= set(users)
    second = acl_cli(secure_bus.env, "apply")
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert "0 created, 0 removed" in second.stdout
    assert json.loads(secure_bus.credentials_file.read_text())["users"] == users
    listing = acl_cli(secure_bus.env, "list")
    assert listing.returncode == 0, listing.stderr
    assert f"PREFIXED {raw_topic(secure_bus.prefix, '')}" in listing.stdout
    assert "MISSING" not in listing.stdout
    printed = "\n".join([*secure_bus.outputs, second.stdout, second.stderr, listing.stdout,
                         listing.stderr])
    admin_password = (secure_bus.home / "kafka" / "admin.secret").read_text().strip()
    for password in [*users.values(), admin_password]:
        assert password not in printed


def test_a_unit_writes_its_own_topic_and_no_other(secure_bus: SecureBus) -> None:
    prefix = secure_bus.prefix
    assert produce_as(secure_bus, "unit-justice", raw_topic(prefix, "justice")) is None
    denied = produce_as(secure_bus, "unit-justice", raw_topic(prefix, "health"))
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    denied = produce_as(secure_bus, "unit-justice", updates_topic(prefix))
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_unit_cannot_read_the_archive_updates(secure_bus: SecureBus) -> None:
    # Give the unit a consumer group of its own first, so that the refusal can only come from
    # the topic ACL (without it the group ACL would refuse first).
    group = f"probe-{uuid.uuid4().hex[:8]}"
    binding = AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL,
                         "User:unit-justice", "*", AclOperation.READ, AclPermissionType.ALLOW)
    admin = secure_bus.admin()  # kept referenced until the futures are done
    for future in admin.create_acls([binding]).values():
        future.result(30)
    values, errors = consume_as(secure_bus, "unit-justice", updates_topic(secure_bus.prefix),
                                group, timeout=20)
    assert values == []
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in errors


def test_a_wrong_password_is_refused(secure_bus: SecureBus) -> None:
    errors: list[KafkaError] = []
    producer = Producer({**secure_bus.auth("unit-justice", password="not-the-password"),
                         "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not errors:
        producer.poll(0.2)
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION
    assert "invalid credentials" in errors[0].str()


def test_the_worker_reads_raw_topics_and_writes_its_outputs(secure_bus: SecureBus) -> None:
    prefix = secure_bus.prefix
    marker = uuid.uuid4().hex.encode()
    assert produce_as(secure_bus, "unit-edu", raw_topic(prefix, "edu"), marker) is None
    values, errors = consume_as(secure_bus, "worker", raw_topic(prefix, "edu"),
                                worker_app_id(prefix), until=marker)
    assert marker in values, errors
    for topic in (by_person_topic(prefix), updates_topic(prefix), deadletter_topic(prefix)):
        assert produce_as(secure_bus, "worker", topic, marker) is None, topic
    denied = produce_as(secure_bus, "worker", raw_topic(prefix, "edu"))
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_sink_reads_updates_but_cannot_write_raw_topics(secure_bus: SecureBus) -> None:
    prefix = secure_bus.prefix
    marker = uuid.uuid4().hex.encode()
    assert produce_as(secure_bus, "worker", updates_topic(prefix), marker) is None
    values, errors = consume_as(secure_bus, "sink", updates_topic(prefix),
                                f"{prefix}-platform-sink", until=marker)
    assert marker in values, errors
    denied = produce_as(secure_bus, "sink", raw_topic(prefix, "justice"))
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # the query service only writes its audit trail
    assert produce_as(secure_bus, "query", audit_topic(prefix)) is None
    denied = produce_as(secure_bus, "query", updates_topic(prefix))
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


# -- clients without the CA ---------------------------------------------------------------------


def run_cli(env: dict[str, str], *args: str, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "creditbus.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_a_client_without_the_ca_fails_with_one_clear_line(
    secure_bus: SecureBus, tmp_path: Path
) -> None:
    """The worker, the publisher and an admin command, run with a unit's credentials but
    without the broker's CA (none, or another one), stop at once with one `error:` line."""
    rows = write_rows(tmp_path / "rows.csv", sample_rows("justice", 3, seed=1))
    no_ca = secure_bus.client_env("unit-justice", CREDITBUS_HOME=str(tmp_path / "home"),
                                  CREDITBUS_STATE_DIR=str(tmp_path / "state"))
    del no_ca["CREDITBUS_KAFKA_CA_FILE"]
    other_ca, _ = ensure_ca(tmp_path / "other-ca")
    bootstrap = secure_bus.state.bootstrap
    cases = [
        (no_ca, "error: CREDITBUS_KAFKA_CA_FILE is empty: "),
        (dict(no_ca, CREDITBUS_KAFKA_CA_FILE=str(other_ca)),
         f"error: the Kafka broker {bootstrap} is not trusted: "),
    ]
    for env, first_words in cases:
        for command in (["topics", "list"], ["worker"],
                        ["publish", "--unit", "justice", str(rows)]):
            started = time.monotonic()
            result = run_cli(env, *command)
            said = result.stderr.strip().splitlines()
            assert result.returncode != 0, (command, result.stdout)
            assert len(said) == 1 and said[0].startswith(first_words), (command, result.stderr)
            assert "certificate" in said[0] or "CA" in said[0]
            assert time.monotonic() - started < 30, command  # at once, not after retries
            assert secure_bus.users["unit-justice"] not in result.stdout + result.stderr
    # a client that bypasses the project's settings and trusts only the system's CAs is
    # refused by the TLS handshake itself
    errors: list[KafkaError] = []
    auth = {k: v for k, v in secure_bus.auth("unit-justice").items() if k != "ssl.ca.location"}
    producer = Producer({**auth, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not errors:
        producer.poll(0.2)
    assert errors and "certificate verify failed" in errors[0].str()


# -- the whole bus over TLS with least-privilege principals ----------------------------------------


def test_the_whole_bus_runs_over_tls_with_least_privilege_principals(
    secure_bus: SecureBus, tmp_path: Path
) -> None:
    """Units (raw producers and `creditbus publish`), the worker, the sink and the query
    service, each with its own principal, all over SASL_SSL."""
    from tests.streams_data import ScenarioBuilder

    # A prefix of its own (ACLs are per prefix; the passwords in the file stay the same).
    prefix = f"p{uuid.uuid4().hex[:8]}"
    env = dict(secure_bus.env, CREDITBUS_TOPIC_PREFIX=prefix)
    applied = acl_cli(env, "apply")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(secure_bus.credentials_file.read_text())["users"] == secure_bus.users
    bus = SecureBus(secure_bus.broker, secure_bus.state, secure_bus.home, prefix, env,
                    secure_bus.credentials_file, secure_bus.users, [])

    scenario = ScenarioBuilder(prefix, b"test-secret", seed=3).mixed(
        persons=12, bad_fraction=0.0, exact_fraction=0.0, content_fraction=0.0)
    from_units = sum(t.versions for t in scenario.records.values())
    # rows the publisher imports: first versions only, so that each is one archive update
    seen: set[str] = set()
    rows = [r for r in sample_rows("justice", 30, seed=11) if r["操作(新增/撤销)"] == "新增"
            and not (r["记录编号"] in seen or seen.add(r["记录编号"]))]
    expected = from_units + len(rows)
    home = tmp_path / "home"

    def principal_env(user: str, **extra: str) -> dict[str, str]:
        return bus.client_env(user, CREDITBUS_HOME=str(home), CREDITBUS_LOG_LEVEL="WARNING",
                              CREDITBUS_PERSON_KEY_SECRET="test-secret", **extra)

    worker_log = open(tmp_path / "worker.log", "wb")  # closed in the finally below
    worker = subprocess.Popen(
        [sys.executable, "-m", "creditbus.cli.main", "worker"],
        env=principal_env("worker", CREDITBUS_STATE_DIR=str(tmp_path / "state"),
                          CREDITBUS_WORKER_WEB_PORT=str(free_port()),
                          CREDITBUS_WORKER_METRICS_PORT=str(free_port())),
        stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    query: subprocess.Popen[bytes] | None = None
    try:
        by_unit: dict[str, list[tuple[str, bytes | None, bytes]]] = {}
        for topic, key, value in scenario.messages:
            by_unit.setdefault(unit_of_raw_topic(prefix, topic) or "", []).append(
                (topic, key, value))
        failed: list[KafkaError] = []
        for unit, messages in by_unit.items():
            producer = Producer({**bus.auth(f"unit-{unit}"), "enable.idempotence": True})
            for topic, key, value in messages:
                producer.produce(topic, value, key,
                                 on_delivery=lambda err, _m: err and failed.append(err))
            assert producer.flush(30) == 0
        assert failed == []
        published = run_cli(principal_env("unit-justice"), "publish", "--unit", "justice",
                            str(write_rows(tmp_path / "justice.csv", rows)))
        assert published.returncode == 0, published.stdout[-2000:] + published.stderr[-2000:]

        updates = _count(bus, updates_topic(prefix), expected, timeout=180,
                         alive=lambda: worker.poll() is None)
        assert updates == expected, (tmp_path / "worker.log").read_text()[-3000:]

        database = tmp_path / "platform.db"
        url = f"sqlite:///{database}"
        sink = subprocess.run(
            [sys.executable, "-m", "creditbus.cli.main", "sink", "--until-idle", "10"],
            env=principal_env("sink", CREDITBUS_DATABASE_URL=url,
                              CREDITBUS_SINK_METRICS_PORT=str(free_port())),
            capture_output=True, text=True, timeout=180,
        )
        assert sink.returncode == 0, sink.stdout[-2000:] + sink.stderr[-2000:]
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT count(*) FROM cb_update_log").fetchone()[0] == expected

        # the query service answers from the platform DB and audits over TLS as `query`
        tokens = tmp_path / "query-tokens.toml"
        query_env = principal_env("query", CREDITBUS_DATABASE_URL=url,
                                  CREDITBUS_QUERY_TOKENS=str(tokens),
                                  CREDITBUS_QUERY_PORT=str(free_port()))
        added = subprocess.run(
            [sys.executable, "-m", "creditbus.cli.main", "query", "token", "add", "--role",
             "office", "--name", "信用办"], env=query_env, capture_output=True, text=True,
            timeout=60)
        assert added.returncode == 0, added.stderr
        token = added.stdout.strip()
        query = subprocess.Popen(
            [sys.executable, "-m", "creditbus.cli.main", "query", "--host", "127.0.0.1"],
            env=query_env, stdout=open(tmp_path / "query.log", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        person = person_key(rows[0]["身份证号码"], b"test-secret")
        reply = _ask(f"http://127.0.0.1:{query_env['CREDITBUS_QUERY_PORT']}/v1/persons/{person}",
                     token, alive=lambda: query is not None and query.poll() is None,
                     log=tmp_path / "query.log")
        assert rows[0]["记录编号"] in {r["record_id"] for r in reply["records"]}
        audited = _count(bus, audit_topic(prefix), 1, timeout=60, alive=lambda: True)
        assert audited == 1
    finally:
        for proc in (worker, query):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        worker_log.close()


def _ask(url: str, token: str, alive: Callable[[], bool], log: Path,
         timeout: float = 60) -> dict[str, Any]:
    """GET `url` as the office once the service answers; the JSON reply."""
    request = urllib.request.Request(url, headers={
        "Authorization": f"Bearer {token}",
        "X-Query-Purpose": urllib.parse.quote("安全测试")})
    deadline = time.monotonic() + timeout
    while True:
        assert alive(), log.read_text(errors="replace")[-3000:]
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{exc.code}: {exc.read()[:500]!r}") from None
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _count(bus: SecureBus, topic: str, expect: int, timeout: float,
           alive: Callable[[], bool]) -> int:
    """Messages on `topic`, read as the admin, once `expect` arrived, the time is up or the
    process that should write them died."""
    consumer = Consumer({"bootstrap.servers": bus.state.bootstrap,
                         **local_admin_config(bus.home, bus.state.bootstrap),
                         "group.id": f"count-{uuid.uuid4().hex}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and seen < expect and alive():
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                seen += 1
    finally:
        consumer.close()
    return seen


def test_acl_apply_sets_the_passwords_the_deployment_chose(secure_bus: SecureBus) -> None:
    """`--password-from-env` (docker-compose's kafka-setup): the principal gets exactly that
    password, applying again changes nothing, a new value replaces the old one."""
    chosen = uuid.uuid4().hex + uuid.uuid4().hex
    original = secure_bus.users["query"]
    try:
        env = dict(secure_bus.env, QUERY_PW=chosen)
        first = acl_cli(env, "apply", "--no-topics", "--password-from-env", "query=QUERY_PW")
        assert first.returncode == 0, first.stderr
        assert "new password: query" in first.stdout and chosen not in first.stdout
        again = acl_cli(env, "apply", "--no-topics", "--password-from-env", "query=QUERY_PW")
        assert "nothing changed" in again.stdout
        assert not answers(secure_bus.state.bootstrap, timeout=3.0,
                           config=secure_bus.auth("query"))  # the old password: refused
        secure_bus.users["query"] = chosen
        assert produce_as(secure_bus, "query", audit_topic(secure_bus.prefix)) is None
    finally:  # the other tests' password back, by the same route
        restored = acl_cli(dict(secure_bus.env, QUERY_PW=original), "apply", "--no-topics",
                           "--password-from-env", "query=QUERY_PW")
        secure_bus.users["query"] = original
        assert restored.returncode == 0, restored.stderr


# -- docker-compose's Kafka node, on a real broker ------------------------------------------------


def test_the_compose_kafka_node_runs_as_rendered(tmp_path: Path) -> None:
    """kafka-certs, kafka-1-format, kafka-1 and kafka-setup of docker-compose.yml, run here with
    the apache/kafka image's rendering of KAFKA_* variables (`a_b` -> `a.b`, `__` -> `_`,
    `___` -> `-`): one node, `kafka-1` named `localhost`, free ports. Its SASL_SSL listeners,
    its TLS controller listener with client certificates, the health check's client settings
    and `acl apply --password-from-env` work on Kafka 3.9.1."""
    import yaml

    from creditbus.devtools.kafka.jars import ensure_broker_jars
    from creditbus.devtools.kafka.toolchain import find_java
    from tests.unit.test_compose import COMPOSE_FILE, example_secrets, render

    services = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]
    secrets = {name: uuid.uuid4().hex for name in example_secrets()}
    secrets["KAFKA_EXTERNAL_HOST"] = "127.0.0.1"
    port, cport, eport = free_port(), free_port(), free_port()
    paths = {"/etc/kafka/tls": str(tmp_path / "tls"), "/var/lib/kafka/data": str(tmp_path / "data")}

    def here(value: object) -> str:
        text = render(str(value), secrets)
        text = text.replace("1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093", "1@kafka-1:9093")
        for old, new in [(":19092", f":{eport}"), (":9092", f":{port}"), (":9093", f":{cport}"),
                         ("kafka-1", "localhost"), *paths.items()]:
            text = text.replace(old, new)
        return text

    def run(argv: list[str], env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)

    # kafka-certs, for this node only (no --owner: this test is not root)
    argv = [here(a) for a in services["kafka-certs"]["command"]]
    argv = [*argv[:argv.index("--broker")], "--broker", "localhost", "--host", "127.0.0.1"]
    argv = [{"/tls": str(tmp_path / "tls"), "/ca": str(tmp_path / "ca")}.get(a, a) for a in argv]
    made = run([sys.executable, "-m", "creditbus.cli.main", *argv])
    assert made.returncode == 0, made.stderr
    # kafka-1-format: its heredoc and its StorageTool call
    java, settings = str(find_java()), Settings.from_env()
    jvm = settings.kafka_jvm_options.split()  # the tests' short-lived JVMs: C1 alone
    classpath = f"{ensure_broker_jars(settings.cache, settings.kafka_version, quiet=True)}/*"
    fenv = {k: here(v) for k, v in services["kafka-1-format"]["environment"].items()}
    script = services["kafka-1-format"]["command"][0]
    heredoc = script.split("<<EOF\n", 1)[1].split("\nEOF", 1)[0].replace("$$", "$")
    for name, value in fenv.items():
        heredoc = heredoc.replace(f"${name}", value)
    (tmp_path / "format.properties").write_text(here(heredoc) + "\n")
    formatted = run([java, *jvm, "-cp", classpath, "kafka.tools.StorageTool", "format",
                     "--ignore-formatted", "-t", fenv["CLUSTER_ID"], "-c",
                     str(tmp_path / "format.properties"), "--add-scram",
                     f"SCRAM-SHA-512=[name=admin,password={fenv['ADMIN_PASSWORD']}]"])
    assert formatted.returncode == 0, formatted.stderr[-2000:]
    # kafka-1: the image's rendering of its environment
    lines = []
    for key, value in services["kafka-1"]["environment"].items():
        if key.startswith("KAFKA_"):
            name = key[6:].lower().replace("___", "-").replace("__", "\0").replace("_", ".")
            lines.append(f"{name.replace(chr(0), '_')}={here(value)}")
    lines += ["offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
              "transaction.state.log.min.isr=1", "min.insync.replicas=1",
              "default.replication.factor=1"]  # one node here, three in compose
    (tmp_path / "server.properties").write_text("\n".join(lines) + "\n")
    log = open(tmp_path / "broker.log", "wb")  # closed in the finally below
    node = subprocess.Popen([java, "-Xmx384m", *jvm, "-cp", classpath, "kafka.Kafka",
                             str(tmp_path / "server.properties")], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ca = str(tmp_path / "tls" / "ca.pem")
        admin = {"security.protocol": "SASL_SSL", "ssl.ca.location": ca,
                 "ssl.endpoint.identification.algorithm": "https",
                 "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
                 "sasl.password": fenv["ADMIN_PASSWORD"]}
        deadline = time.monotonic() + 120
        while not answers(f"localhost:{port}", 2.0, admin):
            assert node.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "broker.log").read_text()[-3000:]
            time.sleep(1)
        assert answers(f"127.0.0.1:{eport}", 10.0, admin)  # EXTERNAL, named by --host
        assert not answers(f"localhost:{port}", 3.0, {"security.protocol": "SSL",
                                                      "ssl.ca.location": ca})
        # the health check's client settings, through Kafka's own tool
        check = services["kafka-1"]["healthcheck"]["test"][1]
        config = re.search(r"printf '(.*?)' ", check).group(1)  # type: ignore[union-attr]
        (tmp_path / "hc.properties").write_text(here(config.replace("\\n", "\n").replace(
            "%s", fenv["ADMIN_PASSWORD"])))
        health = run([java, *jvm, "-cp", classpath, "kafka.admin.BrokerApiVersionsCommand",
                      "--bootstrap-server", f"localhost:{port}", "--command-config",
                      str(tmp_path / "hc.properties")])
        assert health.returncode == 0, health.stderr[-2000:]
        # kafka-setup, then the worker with the password of the secrets file
        env = {k: here(v) for k, v in services["kafka-setup"]["environment"].items()}
        env.update(PATH=os.environ["PATH"], CREDITBUS_BOOTSTRAP=f"localhost:{port}",
                   CREDITBUS_KAFKA_CA_FILE=ca, CREDITBUS_HOME=str(tmp_path / "home"),
                   CREDITBUS_PARTITIONS="2", CREDITBUS_REPLICATION="1")
        setup = run([sys.executable, "-m", "creditbus.cli.main",
                     *services["kafka-setup"]["command"]], env)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        assert answers(f"localhost:{port}", 10.0, dict(
            admin, **{"sasl.username": "worker", "sasl.password": env["KAFKA_WORKER_PASSWORD"]}))
    finally:
        node.terminate()
        try:
            node.wait(60)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait(30)
        log.close()


# -- receipts: `publish --wait` and who may read them ---------------------------------------------


def test_publish_wait_reports_every_rows_outcome_and_receipts_are_the_units_own(
    secure_bus: SecureBus, tmp_path: Path
) -> None:
    """A unit imports a file with good rows, a content duplicate, a row the publisher refuses
    and a retraction the worker refuses; `publish --wait` names each row's outcome and exits
    1. The receipts are readable with the unit's own credentials and not with another's."""
    from creditbus.cli.publish_cmd import read_report
    from creditbus.publish.receipt_report import read_receipt_report
    from creditbus.receipts import Receipt

    prefix = secure_bus.prefix
    good = [r for r in sample_rows("justice", 12, seed=23) if r["操作(新增/撤销)"] == "新增"][:3]
    assert len({r["记录编号"] for r in good}) == 3
    duplicate = dict(good[0], 信息来源="另一份来源文号")  # new event id, same content
    number = good[1]["身份证号码"]
    broken = dict(good[1], 记录编号="JUS-BROKEN-1",
                  身份证号码=number[:17] + ("0" if number[17] != "0" else "1"))
    retract = dict(good[2], 记录编号="JUS-TYPO-1", **{"操作(新增/撤销)": "撤销"})
    rows = [good[0], duplicate, good[1], broken, retract, good[2]]  # file rows 2..7
    path = write_rows(tmp_path / "justice.csv", rows)
    home = tmp_path / "home"

    def as_user(user: str, **extra: str) -> dict[str, str]:
        return secure_bus.client_env(user, CREDITBUS_HOME=str(home), CREDITBUS_LOG_LEVEL="INFO",
                                     CREDITBUS_PERSON_KEY_SECRET="test-secret", **extra)

    worker_log = tmp_path / "worker.log"
    with open(worker_log, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "creditbus.cli.main", "worker"],
            env=as_user("worker", CREDITBUS_STATE_DIR=str(tmp_path / "state"),
                        CREDITBUS_WORKER_METRICS_PORT=str(free_port())),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        published = run_cli(as_user("unit-justice"), "publish", "--unit", "justice", "--wait",
                            "--wait-timeout", "150", str(path), timeout=240)
        said = published.stdout + published.stderr
        assert published.returncode == 1, said + worker_log.read_text()[-3000:]
        outcomes = {int(r["row"]): r for r in read_receipt_report(
            tmp_path / "justice.csv.receipts.csv")}
        assert {row: (r["outcome"], r["code"]) for row, r in outcomes.items()} == {
            2: ("已接收", ""), 3: ("重复", "DUPLICATE_CONTENT"), 4: ("已接收", ""),
            5: ("退回", "ID_CHECKSUM"), 6: ("退回", "RETRACT_UNKNOWN_RECORD"), 7: ("已接收", ""),
        }, said
        assert all(outcomes[row]["version"] for row in (2, 4, 7))
        assert "JUS-TYPO-1" in outcomes[6]["message"]
        errors = {(int(r["row"]), r["code"]) for r in read_report(
            tmp_path / "justice.csv.errors.csv")}
        assert errors == {(5, "ID_CHECKSUM"), (6, "RETRACT_UNKNOWN_RECORD")}
        assert re.search(r"receipts: \d+ accepted, \d+ duplicate, \d+ rejected, 0 waiting",
                         said), said
        assert ("6 rows: 3 accepted, 1 duplicate, 2 rejected (1 before sending, 1 by the bus), "
                "0 unanswered") in said

        # the unit reads its own receipts; another unit is refused
        listed = run_cli(as_user("unit-justice"), "receipts", "list", "--unit", "justice",
                         "--json")
        assert listed.returncode == 0, listed.stderr
        receipts = [Receipt(**json.loads(line)) for line in listed.stdout.splitlines()]
        mine = {r.source_row: r for r in receipts if r.source_row is not None}
        assert {row: r.outcome for row, r in mine.items()} == {
            2: "accepted", 3: "duplicate", 4: "accepted", 6: "rejected", 7: "accepted"}
        for text in (listed.stdout, published.stdout, published.stderr):
            for row in rows:
                assert row["身份证号码"] not in text
        summary = run_cli(as_user("unit-justice"), "receipts", "summary", "--unit", "justice")
        assert summary.returncode == 0, summary.stderr
        assert summary.stdout.splitlines()[0].split("\t") == [
            "单位", "日期", "已接收", "重复", "退回", "合计"]
        other = run_cli(as_user("unit-health"), "receipts", "list", "--unit", "justice")
        assert other.returncode == 2 and other.stdout == ""
        assert "not authorised to read" in other.stderr, other.stderr
        # the dead letter the worker wrote is in its log once, with reason and position only
        lines = [line for line in worker_log.read_text().splitlines()
                 if "dead letter: stage=archive reason=RETRACT_UNKNOWN_RECORD" in line]
        assert len(lines) == 1 and f"{raw_topic(prefix, 'justice')}[" in lines[0], lines
        assert "JUS-TYPO-1" not in lines[0] and number not in worker_log.read_text()
    finally:
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(30)
