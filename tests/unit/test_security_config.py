"""Client security settings, the ACL plan and the secure broker's configuration (no broker)."""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import stat
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from creditbus.catalog import default_catalog
from creditbus.cli import acl_cmd, kafka_cmd, keys_cmd
from creditbus.devtools.kafka.local import _server_properties, local_admin_config
from creditbus.kafka.clientconf import (
    ClientConfigError,
    aiokafka_kwargs,
    confluent_auth,
    confluent_config,
    faust_broker_kwargs,
)
from creditbus.kafka.tls import (
    LOCAL_NAMES,
    BrokerTls,
    certificate_names,
    ensure_broker_certificate,
    ensure_ca,
)
from creditbus.security.acl import AclError, CredentialStore, Grant, plan_principals
from creditbus.topics import edge_group_id, worker_app_id


def settings(bootstrap: str = "127.0.0.1:9092,localhost:9093", **fields: object
             ) -> SimpleNamespace:
    return SimpleNamespace(bootstrap=bootstrap, **fields)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> BrokerTls:
    """A CA and a certificate for a broker on 127.0.0.1."""
    return ensure_broker_certificate(tmp_path_factory.mktemp("tls") / "tls", "broker",
                                     LOCAL_NAMES)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_credentials_means_plaintext_on_loopback_only() -> None:
    assert confluent_auth(settings()) == {}
    assert faust_broker_kwargs(settings()) == {}
    assert confluent_auth(settings("[::1]:9092", kafka_username="", kafka_password="")) == {}
    with pytest.raises(ClientConfigError, match="plaintext Kafka is for loopback development"):
        confluent_config(settings("127.0.0.1:9092,kafka-2:9092"))
    with pytest.raises(ClientConfigError, match="kafka-1 is not loopback"):
        faust_broker_kwargs(settings("kafka-1:9092"))


def test_credentials_are_never_sent_without_tls() -> None:
    with pytest.raises(ClientConfigError, match=r"^CREDITBUS_KAFKA_CA_FILE is empty"):
        confluent_config(settings(kafka_username="worker", kafka_password="pw"))


def test_scram_over_tls(ca: BrokerTls) -> None:
    bootstrap = f"127.0.0.1:{closed_port()}"  # nothing answers: the preflight lets it pass
    s = settings(bootstrap, kafka_username="worker", kafka_password="pw",
                 kafka_ca_file=ca.ca_file)
    conf = confluent_config(s, **{"group.id": "g", "enable.auto.commit": False})
    conf.pop("logger")  # librdkafka's lines through Python logging (clientlog)
    assert conf == {
        "bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(ca.ca_file), "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "worker", "sasl.password": "pw",
        "group.id": "g", "enable.auto.commit": False,
    }
    credentials = faust_broker_kwargs(s)["broker_credentials"]
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    auth = credentials_to_aiokafka_auth(credentials)
    context = auth.pop("ssl_context")
    assert auth == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_plain_username": "worker", "sasl_plain_password": "pw"}
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert "pw" not in repr(credentials)
    kwargs = aiokafka_kwargs(s)
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["ssl_context"].check_hostname


def test_a_ca_without_credentials_means_tls_without_sasl(ca: BrokerTls) -> None:
    s = settings(f"127.0.0.1:{closed_port()}", kafka_ca_file=ca.ca_file)
    auth = confluent_config(s)
    assert auth["security.protocol"] == "SSL" and "sasl.username" not in auth
    credentials = faust_broker_kwargs(s)["broker_credentials"]
    assert type(credentials).__name__ == "SSLCredentials"


def test_a_ca_file_must_hold_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    for path in (tmp_path / "ca.pem", tmp_path / "missing.pem"):
        with pytest.raises(ClientConfigError, match=r"^CREDITBUS_KAFKA_CA_FILE: "):
            confluent_config(settings(kafka_ca_file=path))


def test_a_broker_the_ca_does_not_vouch_for_is_refused_at_once(
    ca: BrokerTls, tmp_path: Path
) -> None:
    """A real TLS server with the broker's certificate: trusted with its CA, refused in one
    line with another CA."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(ca.keystore)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with server.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        other_ca, _ = ensure_ca(tmp_path / "other")
        bootstrap = f"127.0.0.1:{port}"
        with pytest.raises(ClientConfigError) as refused:
            confluent_config(settings(bootstrap, kafka_username="u", kafka_password="p",
                                      kafka_ca_file=other_ca))
        message = str(refused.value)
        assert "\n" not in message
        assert message.startswith(f"the Kafka broker {bootstrap} is not trusted: ")
        assert "CREDITBUS_KAFKA_CA_FILE" in message
        conf = confluent_config(settings(bootstrap, kafka_username="u", kafka_password="p",
                                         kafka_ca_file=ca.ca_file))
        assert conf["security.protocol"] == "SASL_SSL"
    finally:
        listener.close()


@pytest.mark.parametrize("fields", [{"kafka_username": "worker"}, {"kafka_password": "pw"}])
def test_half_configured_credentials_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ClientConfigError):
        confluent_config(settings(**fields))


def test_broker_certificate(ca: BrokerTls, tmp_path: Path) -> None:
    tls_dir = ca.keystore.parent
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(ca.keystore.stat().st_mode) == 0o600
    assert stat.S_IMODE((tls_dir / "ca.key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.ca_file.stat().st_mode) == 0o644
    assert certificate_names(ca.keystore) == {"127.0.0.1", "::1", "localhost"}
    # the keystore is the key, the broker's certificate and the CA's, in that order
    text = ca.keystore.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    assert text.count("BEGIN CERTIFICATE") == 2
    # reused while valid; re-issued by the same CA when the names change
    again = ensure_broker_certificate(tls_dir, "broker", LOCAL_NAMES)
    assert again.keystore.read_text() == text
    renamed = ensure_broker_certificate(tls_dir, "broker", ["kafka-1", "localhost"])
    assert certificate_names(renamed.keystore) == {"kafka-1", "localhost"}
    assert renamed.ca_file.read_bytes() == ca.ca_file.read_bytes()
    ensure_broker_certificate(tls_dir, "broker", LOCAL_NAMES)  # back, for the other tests
    # a separate CA directory: only the CA certificate is copied next to the keystores
    split = ensure_broker_certificate(tmp_path / "out", "kafka-1", ["kafka-1"],
                                      ca_dir=tmp_path / "ca")
    assert split.ca_file == tmp_path / "out" / "ca.pem"
    assert not (tmp_path / "out" / "ca.key.pem").exists()
    assert (tmp_path / "ca" / "ca.key.pem").is_file()


def test_the_plan_gives_each_principal_only_its_own_resources() -> None:
    units = [u.code for u in default_catalog().units]
    plans = {p.name: p for p in plan_principals("credit", units)}
    assert set(plans) == {f"unit-{u}" for u in units} | {"worker", "sink", "query", "portal"}
    assert set(plans["unit-justice"].grants) == {
        Grant("TOPIC", "credit.raw.justice", "LITERAL", "WRITE"),
        Grant("TOPIC", "credit.raw.justice", "LITERAL", "DESCRIBE"),
        Grant("TOPIC", "credit.receipts.justice", "LITERAL", "READ"),
        Grant("TOPIC", "credit.receipts.justice", "LITERAL", "DESCRIBE"),
        Grant("GROUP", "credit-receipts-justice", "LITERAL", "READ"),
        Grant("CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE"),
    }
    worker = set(plans["worker"].grants)
    assert Grant("TOPIC", "credit.raw.", "PREFIXED", "READ") in worker
    assert Grant("TOPIC", f"{worker_app_id('credit')}-", "PREFIXED", "CREATE") in worker
    assert Grant("GROUP", worker_app_id("credit"), "LITERAL", "READ") in worker
    assert Grant("GROUP", edge_group_id("credit"), "LITERAL", "READ") in worker
    assert not any(g.operation == "WRITE" and ".raw." in g.name for g in worker)
    assert Grant("TOPIC", "credit.receipts.", "PREFIXED", "WRITE") in worker
    # a unit reads only its own receipts; the sink and the query service none; the portal
    # reads every unit's (the office's view) and writes none
    assert not any(".receipts." in g.name for p in plans.values()
                   if p.name not in ("worker", "portal") and p.role != "unit" for g in p.grants)
    portal = set(plans["portal"].grants)
    assert Grant("TOPIC", "credit.receipts.", "PREFIXED", "READ") in portal
    assert not any(g.operation == "WRITE" and ".receipts." in g.name for g in portal)
    assert not any("archive.updates" in g.name or "by-person" in g.name for g in portal)
    for unit in units:
        assert {g.name for g in plans[f"unit-{unit}"].grants if ".receipts." in g.name} == {
            f"credit.receipts.{unit}"}
    sink = set(plans["sink"].grants)
    assert Grant("TOPIC", "credit.archive.updates", "LITERAL", "READ") in sink
    assert Grant("GROUP", "credit-platform-sink", "LITERAL", "READ") in sink
    assert not any(".raw." in g.name for g in sink)
    assert {g.name for g in plans["query"].grants} == {"credit.audit", "kafka-cluster"}
    # nobody but the worker may create topics, and no grant is on everything
    for plan in plans.values():
        assert all(g.name not in ("*", "credit", "credit.") for g in plan.grants)
        if plan.name != "worker":
            assert all(g.operation != "CREATE" for g in plan.grants)


def test_credentials_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "credentials.json"
    store = CredentialStore(path, {"worker": "secret-1"})
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert CredentialStore.load(path).users == {"worker": "secret-1"}
    assert json.loads(path.read_text())["mechanism"] == "SCRAM-SHA-512"


def test_secure_broker_properties(ca: BrokerTls) -> None:
    props = _server_properties(9092, 9093, Path("/data"), "s3cret", ca)
    lines = dict(line.split("=", 1) for line in props.replace("\\\n", "").splitlines()
                 if "=" in line and not line.startswith("#"))
    assert lines["listeners"] == "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert lines["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert lines["inter.broker.listener.name"] == "SASL_SSL"
    assert lines["listener.name.controller.ssl.client.auth"] == "required"
    assert (lines["ssl.keystore.type"], lines["ssl.truststore.type"]) == ("PEM", "PEM")
    assert lines["ssl.keystore.location"] == str(ca.keystore)
    assert lines["ssl.truststore.location"] == str(ca.ca_file)
    assert lines["ssl.endpoint.identification.algorithm"] == "https"
    assert lines["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert lines["authorizer.class.name"] == \
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert lines["allow.everyone.if.no.acl.found"] == "false"
    assert lines["super.users"] == "User:admin;User:CN=broker"  # no ANONYMOUS super user
    assert 'username="admin" password="s3cret";' in lines[
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    plain = _server_properties(9092, 9093, Path("/data"))
    assert "SASL" not in plain and "authorizer" not in plain and "ssl" not in plain


def test_local_admin_config_only_for_the_local_secure_broker(tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    state = {"pid": 1, "port": 9092, "controller_port": 9093, "bootstrap": "127.0.0.1:9092",
             "version": "3.9.1", "config": "x", "started_at": 0.0, "secure": True,
             "listener": "SASL_SSL://127.0.0.1:9092", "ca_file": "/ca.pem"}
    (tmp_path / "kafka" / "broker.json").write_text(json.dumps(state))
    assert local_admin_config(tmp_path, "127.0.0.1:9092") == {}  # no admin.secret
    (tmp_path / "kafka" / "admin.secret").write_text("pw\n")
    admin = local_admin_config(tmp_path, "127.0.0.1:9092")
    assert admin["sasl.password"] == "pw" and admin["security.protocol"] == "SASL_SSL"
    assert admin["ssl.ca.location"] == "/ca.pem"
    assert local_admin_config(tmp_path, "kafka-1:9092") == {}  # another cluster
    state["secure"] = False
    (tmp_path / "kafka" / "broker.json").write_text(json.dumps(state))
    assert local_admin_config(tmp_path, "127.0.0.1:9092") == {}


def test_commands_register() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    acl_cmd.register(commands)
    keys_cmd.register(commands)
    args = parser.parse_args(["acl", "apply", "--out", "/x.json", "--rotate", "worker"])
    assert args.out == Path("/x.json") and args.rotate == ["worker"]
    assert parser.parse_args(["acl", "list"]).acl_action == "list"
    assert parser.parse_args(["keys", "generate", "--out", "d"]).keys_action == "generate"


def test_keys_generate_prints_no_key_material(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    keys_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["keys", "generate", "--out", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "BEGIN" not in out and "key id:" in out
    assert len(list(tmp_path.glob("field-*.key.pem"))) == 1


def test_kafka_certs_keeps_the_ca_key_apart_and_prints_no_key_material(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    kafka_cmd.register(parser.add_subparsers(dest="command", required=True))
    argv = ["kafka", "certs", "--out", str(tmp_path / "tls"), "--ca-dir", str(tmp_path / "ca"),
            "--broker", "kafka-1", "--broker", "kafka-2", "--host", "bus.example.org"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "BEGIN" not in out and "ca.pem" in out
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == [
        "ca.pem", "kafka-1.keystore.pem", "kafka-2.keystore.pem"]
    assert certificate_names(tmp_path / "tls" / "kafka-2.keystore.pem") == {
        "kafka-2", "bus.example.org"}
    before = (tmp_path / "tls" / "kafka-1.keystore.pem").read_bytes()
    args = parser.parse_args(argv)
    assert args.func(args) == 0  # run again: nothing changes
    assert (tmp_path / "tls" / "kafka-1.keystore.pem").read_bytes() == before


def test_acl_apply_takes_chosen_passwords_from_the_environment(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_PW", "a" * 32)
    monkeypatch.setenv("SHORT_PW", "tiny-s3cr3t")
    assert acl_cmd.passwords_from_env(["worker=WORKER_PW"]) == {"worker": "a" * 32}
    for pair in ("worker=SHORT_PW", "worker=UNSET_PW", "worker"):
        with pytest.raises(AclError) as refused:
            acl_cmd.passwords_from_env([pair])
        assert "tiny-s3cr3t" not in str(refused.value)  # the value is never shown
