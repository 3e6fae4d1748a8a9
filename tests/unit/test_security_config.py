"""Client security settings, the ACL plan and the secure broker's configuration (no broker)."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from creditbus.catalog import default_catalog
from creditbus.cli import acl_cmd, keys_cmd
from creditbus.kafka.clientconf import (
    ClientConfigError,
    aiokafka_kwargs,
    confluent_config,
    faust_broker_kwargs,
)
from creditbus.kafka.local import _server_properties, local_admin_config
from creditbus.security.acl import CredentialStore, Grant, plan_principals
from creditbus.topics import worker_app_id


def settings(**fields: str) -> SimpleNamespace:
    return SimpleNamespace(bootstrap="k1:9092,k2:9092", **fields)


def test_no_credentials_means_plaintext() -> None:
    assert confluent_config(settings()) == {"bootstrap.servers": "k1:9092,k2:9092"}
    assert faust_broker_kwargs(settings()) == {}
    assert confluent_config(settings(kafka_username="", kafka_password="")) == {
        "bootstrap.servers": "k1:9092,k2:9092"}


def test_scram_credentials() -> None:
    s = settings(kafka_username="worker", kafka_password="pw")
    conf = confluent_config(s, **{"group.id": "g", "enable.auto.commit": False})
    assert conf == {
        "bootstrap.servers": "k1:9092,k2:9092", "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "worker", "sasl.password": "pw",
        "group.id": "g", "enable.auto.commit": False,
    }
    credentials = faust_broker_kwargs(s)["broker_credentials"]
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    assert credentials_to_aiokafka_auth(credentials) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "worker", "sasl_plain_password": "pw", "ssl_context": None,
    }
    assert "pw" not in repr(credentials)
    assert aiokafka_kwargs(s)["sasl_mechanism"] == "SCRAM-SHA-512"


@pytest.mark.parametrize("fields", [{"kafka_username": "worker"}, {"kafka_password": "pw"}])
def test_half_configured_credentials_are_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ClientConfigError):
        confluent_config(settings(**fields))


def test_the_plan_gives_each_principal_only_its_own_resources() -> None:
    units = [u.code for u in default_catalog().units]
    plans = {p.name: p for p in plan_principals("credit", units)}
    assert set(plans) == {f"unit-{u}" for u in units} | {"worker", "sink", "query"}
    assert set(plans["unit-justice"].grants) == {
        Grant("TOPIC", "credit.raw.justice", "LITERAL", "WRITE"),
        Grant("TOPIC", "credit.raw.justice", "LITERAL", "DESCRIBE"),
        Grant("CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE"),
    }
    worker = set(plans["worker"].grants)
    assert Grant("TOPIC", "credit.raw.", "PREFIXED", "READ") in worker
    assert Grant("TOPIC", f"{worker_app_id('credit')}-", "PREFIXED", "CREATE") in worker
    assert Grant("GROUP", worker_app_id("credit"), "LITERAL", "READ") in worker
    assert not any(g.operation == "WRITE" and ".raw." in g.name for g in worker)
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


def test_secure_broker_properties() -> None:
    props = _server_properties(9092, 9093, Path("/data"), "s3cret")
    lines = dict(line.split("=", 1) for line in props.replace("\\\n", "").splitlines()
                 if "=" in line and not line.startswith("#"))
    assert lines["listeners"] == "SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert lines["listener.security.protocol.map"] == \
        "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert lines["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert lines["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert lines["authorizer.class.name"] == \
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert lines["allow.everyone.if.no.acl.found"] == "false"
    assert lines["super.users"] == "User:admin;User:ANONYMOUS"
    assert 'username="admin" password="s3cret";' in lines[
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    plain = _server_properties(9092, 9093, Path("/data"))
    assert "SASL" not in plain and "authorizer" not in plain


def test_local_admin_config_only_for_the_local_secure_broker(tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    state = {"pid": 1, "port": 9092, "controller_port": 9093, "bootstrap": "127.0.0.1:9092",
             "version": "3.9.1", "config": "x", "started_at": 0.0, "secure": True,
             "listener": "SASL_PLAINTEXT://127.0.0.1:9092"}
    (tmp_path / "kafka" / "broker.json").write_text(json.dumps(state))
    assert local_admin_config(tmp_path, "127.0.0.1:9092") == {}  # no admin.secret
    (tmp_path / "kafka" / "admin.secret").write_text("pw\n")
    assert local_admin_config(tmp_path, "127.0.0.1:9092")["sasl.password"] == "pw"
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
