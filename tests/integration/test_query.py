"""The query service against the real broker (audit topic) and a real SQLite platform database:
roles, purpose, tokens, lookup by ID number, one audit record per query, `creditbus audit`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from creditbus.services.query.access import mask_resident_ids
from creditbus.services.query.app import QueryService, create_app
from creditbus.services.query.auditor import AuditUnavailable
from creditbus.services.query.store import ArchiveStore
from creditbus.services.query.tokens import (
    TokenFileError,
    TokenStore,
    add_token,
    load_entries,
    revoke_token,
)

from creditbus.audit import AuditRecord
from creditbus.catalog import default_catalog
from creditbus.cli import main as cli_main
from creditbus.devtools.kafka.local import BrokerState
from creditbus.devtools.kafka.ports import free_port
from creditbus.identity import make_uscc, mask_id, person_key
from creditbus.topics import audit_topic
from tests.bus import consume_all, wait_for
from tests.platform_fill import (
    CIVIL_SERVANT_ID,
    LAWYER2_ID,
    LAWYER_ID,
    LEGAL_REP_ID,
    SECRET,
    TEACHER_ID,
    UNKNOWN_ID,
    PersonSpec,
    fill_platform,
)

ALL_IDS = (LAWYER_ID, LAWYER2_ID, LEGAL_REP_ID, TEACHER_ID, CIVIL_SERVANT_ID, UNKNOWN_ID)
PURPOSE = "律师执业年度考核核查"


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    text: str
    headers: dict[str, str]

    @property
    def request_id(self) -> str:
        return self.headers["X-Request-Id"]


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, *, token: str | None = None,
             purpose: str | bytes | None = None, body: dict[str, Any] | None = None) -> Reply:
        headers: dict[str, Any] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if purpose is not None:
            headers["X-Query-Purpose"] = purpose
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw, got = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            status, raw, got = exc.code, exc.read(), dict(exc.headers)
        text = raw.decode("utf-8")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = {}
        return Reply(status, parsed, text, got)

    def get(self, key: str, **kw: Any) -> Reply:
        return self.call("GET", f"/v1/persons/{key}", **kw)

    def lookup(self, body: dict[str, Any], **kw: Any) -> Reply:
        return self.call("POST", "/v1/persons/lookup", body=body, **kw)


@dataclass
class Service:
    client: Client
    tokens: dict[str, str]
    specs: dict[str, PersonSpec]
    env: dict[str, str]
    log: Path


@pytest.fixture()
def service(kafka_broker: BrokerState, topic_prefix: str, bus_env: dict[str, str],
            tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> Iterator[Service]:
    url = f"sqlite:///{tmp_path}/platform.db"
    specs = {p.id_number: p for p in fill_platform(url)}
    tokens_file = tmp_path / "tokens" / "query-tokens.toml"
    monkeypatch.setenv("CREDITBUS_HOME", bus_env["CREDITBUS_HOME"])
    monkeypatch.setenv("CREDITBUS_QUERY_TOKENS", str(tokens_file))
    tokens: dict[str, str] = {}
    for name, args in {
        "司法局查询": ["--role", "unit", "--unit", "justice"],
        "市场监管局查询": ["--role", "unit", "--unit", "amr"],
        "信用办": ["--role", "office"],
        "信用中国（赣州）网站": ["--role", "public"],
    }.items():
        capsys.readouterr()
        assert cli_main.main(["query", "token", "add", *args, "--name", name]) == 0
        tokens[name] = capsys.readouterr().out.strip()
    stored = tokens_file.read_text("utf-8")
    assert all(t not in stored for t in tokens.values())  # hashes only
    assert oct(tokens_file.stat().st_mode & 0o777) == "0o600"

    port = free_port()
    env = dict(bus_env, CREDITBUS_DATABASE_URL=url, CREDITBUS_QUERY_TOKENS=str(tokens_file),
               CREDITBUS_QUERY_PORT=str(port), CREDITBUS_PERSON_KEY_SECRET=SECRET.decode())
    log = tmp_path / "query.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "creditbus.cli.main", "query", "--host", "127.0.0.1"], env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    client = Client(f"http://127.0.0.1:{port}")

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            return client.call("GET", "/healthz").status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 60, "the query service")
        yield Service(client, tokens, specs, env, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def test_roles_purpose_tokens_lookup_and_audit(
        service: Service, kafka_broker: BrokerState, topic_prefix: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    c, t = service.client, service.tokens
    lawyer, legal_rep, lawyer2 = (service.specs[i] for i in (LAWYER_ID, LEGAL_REP_ID,
                                                            LAWYER2_ID))
    expected: dict[str, dict[str, Any]] = {}  # request id -> what its audit record must say

    def check(reply: Reply, status: int, who: str | None, key: str | None, records: int,
              result: str, reason: str | None = None, purpose: str | None = PURPOSE) -> Reply:
        assert reply.status == status, reply.text
        for number in ALL_IDS:
            assert number not in reply.text
        expected[reply.request_id] = {"who": who, "key": key, "records": records,
                                      "status": status, "result": result, "reason": reason,
                                      "purpose": purpose}
        if status != 200:
            shown = "NOT_FOUND" if reason == "NO_VISIBLE_RECORDS" else reason
            assert reply.body["error"] == shown and reply.body["message"]
        return reply

    # unit: only its own current records
    r = check(c.get(lawyer.key, token=t["司法局查询"], purpose=PURPOSE.encode()), 200,
              "司法局查询", lawyer.key, 4, "allowed")
    assert {x["record_id"] for x in r.body["records"]} == {"J-1", "J-2", "J-3", "J-4"}
    assert {x["unit"] for x in r.body["records"]} == {"justice"}
    assert r.body["person"]["masked_id"] == lawyer.masked and r.body["person"]["name"] == "张明律"
    assert "history" not in r.body and "retracted" not in r.body["records"][0]
    j3 = next(x for x in r.body["records"] if x["record_id"] == "J-3")
    detail = json.dumps(j3["content"], ensure_ascii=False)
    assert LAWYER2_ID[:6] + "********" + LAWYER2_ID[-4:] in detail  # an ID in free text: masked
    check(c.get(lawyer.key, token=t["市场监管局查询"], purpose=PURPOSE.encode()), 404,
          "市场监管局查询", lawyer.key, 0, "not_found", "NO_VISIBLE_RECORDS")
    r = check(c.get(legal_rep.key, token=t["市场监管局查询"],
                    purpose=urllib.parse.quote("企业登记 核查")), 200,
              "市场监管局查询", legal_rep.key, 1, "allowed", purpose="企业登记 核查")
    assert [x["record_id"] for x in r.body["records"]] == ["A-1"]

    # office: everything, retracted records flagged, the history
    r = check(c.get(lawyer.key, token=t["信用办"], purpose=PURPOSE.encode()), 200, "信用办",
              lawyer.key, 6, "allowed")
    flags = {x["record_id"]: x["retracted"] for x in r.body["records"]}
    assert flags == {"J-1": False, "J-2": False, "J-3": False, "J-4": False, "J-5": True,
                     "Z-1": False}
    assert [h["version"] for h in r.body["history"]] == list(range(1, 8))
    assert [(h["kind"], h["record_id"]) for h in r.body["history"]
            if h["kind"] != "UPSERT_RECORD"] == [("RETRACT_RECORD", "J-5")]
    assert r.body["person"]["birth_date"] == "1980-05-17"

    # public: records in their public window today only, masked ID, no birth date
    r = check(c.get(lawyer.key, token=t["信用中国（赣州）网站"], purpose=PURPOSE.encode()), 200,
              "信用中国（赣州）网站", lawyer.key, 1, "allowed")
    assert len(r.body["records"]) == 1 and r.body["records"][0]["category"] == "punishment"
    assert "record_id" not in r.body["records"][0]  # J-3; J-4's window ended, J-5 retracted
    assert set(r.body["person"]) == {"person_key", "masked_id", "name", "groups"}
    assert r.body["person"]["masked_id"] == lawyer.masked
    check(c.get(lawyer2.key, token=t["信用中国（赣州）网站"], purpose=PURPOSE.encode()), 404,
          "信用中国（赣州）网站", lawyer2.key, 0, "not_found", "NO_VISIBLE_RECORDS")

    # lookup by ID number: in the body only, never echoed
    r = check(c.lookup({"id_number": LEGAL_REP_ID.lower(), "purpose": PURPOSE},
                       token=t["信用办"]), 200, "信用办", legal_rep.key, 2, "allowed")
    assert r.body["person"]["person_key"] == legal_rep.key
    assert r.body["person"]["masked_id"] == legal_rep.masked
    check(c.lookup({"id_number": UNKNOWN_ID}, token=t["信用办"], purpose=PURPOSE.encode()), 404,
          "信用办", _key(UNKNOWN_ID), 0, "not_found",
          "NOT_FOUND")
    bad_id = LAWYER_ID[:17] + ("0" if LAWYER_ID[17] != "0" else "1")
    check(c.lookup({"id_number": bad_id, "purpose": PURPOSE}, token=t["信用办"]), 400, "信用办",
          None, 0, "invalid", "ID_INVALID")
    check(c.call("POST", "/v1/persons/lookup", body={"purpose": PURPOSE}, token=t["信用办"]),
          400, "信用办", None, 0, "invalid", "BAD_REQUEST")

    # refusals: no purpose, too long a purpose, bad or no token
    check(c.get(lawyer.key, token=t["信用办"]), 400, "信用办", lawyer.key, 0, "invalid",
          "PURPOSE_REQUIRED", purpose=None)
    check(c.get(lawyer.key, token=t["信用办"], purpose="   "), 400, "信用办", lawyer.key, 0,
          "invalid", "PURPOSE_REQUIRED", purpose=None)
    check(c.lookup({"id_number": LAWYER_ID, "purpose": "查" * 201}, token=t["信用办"]), 400,
          "信用办", lawyer.key, 0, "invalid", "PURPOSE_TOO_LONG", purpose="查" * 200)
    check(c.get(lawyer.key, token="cbq_not-a-token", purpose=PURPOSE.encode()), 401, None,
          lawyer.key, 0, "denied", "BAD_TOKEN")
    check(c.lookup({"id_number": LAWYER_ID, "purpose": PURPOSE}), 401, None, lawyer.key, 0,
          "denied", "NO_TOKEN")
    r = check(c.get(lawyer.key, token=t["信用办"],
                    purpose=f"核查 {LAWYER_ID} 的投诉".encode()), 200, "信用办", lawyer.key, 6,
              "allowed", purpose=f"核查 {LAWYER_ID[:6]}********{LAWYER_ID[-4:]} 的投诉")

    metrics = c.call("GET", "/metrics").text
    assert 'creditbus_queries_total{role="office",status="200"}' in metrics
    assert 'creditbus_process_up{process="query"} 1.0' in metrics

    # the audit topic: one record per query, already there when the answer came
    topic = audit_topic(topic_prefix)
    messages = consume_all(kafka_broker.bootstrap, topic, idle=2.0)
    assert len(messages) == len(expected)
    secrets = (*ALL_IDS, bad_id, LEGAL_REP_ID.lower(), *service.tokens.values())
    records = {}
    for msg in messages:
        raw = msg.value()
        assert not any(s.encode() in raw for s in secrets)
        record = AuditRecord.from_bytes(raw)
        records[record.request_id] = record
    assert set(records) == set(expected)
    roles = {"司法局查询": "unit", "市场监管局查询": "unit", "信用办": "office",
             "信用中国（赣州）网站": "public"}
    for request_id, want in expected.items():
        got = records[request_id]
        assert got.caller.name == want["who"]
        assert got.caller.role == (roles[want["who"]] if want["who"] else None)
        assert got.person_key == want["key"], (want, got)
        assert got.records_returned == want["records"]
        assert (got.status, got.result, got.reason) == (want["status"], want["result"],
                                                         want["reason"])
        assert got.purpose == want["purpose"]
        assert got.at_datetime().tzinfo is not None and got.action in ("get", "lookup")
    assert records[next(iter(expected))].caller.unit == "justice"

    # `creditbus audit` lists them
    monkeypatch.setenv("CREDITBUS_BOOTSTRAP", kafka_broker.bootstrap)
    monkeypatch.setenv("CREDITBUS_TOPIC_PREFIX", topic_prefix)
    capsys.readouterr()
    assert cli_main.main(["audit"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + len(expected) and "司法局查询" in lines[1]
    assert cli_main.main(["audit", "--json", "--person", legal_rep.key]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == 2 and {x["person_key"] for x in listed} == {legal_rep.key}
    assert cli_main.main(["audit", "--json", "--person", lawyer.key[:12]]) == 0
    assert len(capsys.readouterr().out.splitlines()) == sum(
        1 for w in expected.values() if w["key"] == lawyer.key)
    assert cli_main.main(["audit", "--json", "--since", "2000-01-01T00:00:00+08:00"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(expected)
    assert cli_main.main(["audit", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""
    log = service.log.read_text(errors="replace")
    assert not any(number in log for number in ALL_IDS)


def _key(id_number: str) -> str:
    return person_key(id_number, SECRET)


# -- no untraced reads: an undelivered audit record withholds the answer --------------------

class _FailingAudit:
    def __init__(self) -> None:
        self.attempts: list[AuditRecord] = []

    async def write(self, record: AuditRecord) -> None:
        self.attempts.append(record)
        raise AuditUnavailable("broker down")

    def close(self, timeout_s: float = 10.0) -> int:
        return 0


def test_answer_is_withheld_when_the_audit_record_is_not_delivered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/platform.db"
    fill_platform(url)
    catalog = default_catalog()
    token = add_token(tmp_path / "tokens.toml", name="信用办", role="office", unit=None,
                      catalog=catalog)
    audit = _FailingAudit()
    service = QueryService(catalog, TokenStore(tmp_path / "tokens.toml", catalog),
                           ArchiveStore(url), audit, SECRET)

    async def scenario() -> tuple[int, dict[str, Any], int]:
        async with TestClient(TestServer(create_app(service))) as client:
            ok = await client.get(f"/v1/persons/{_key(LAWYER_ID)}",
                                  headers={"Authorization": f"Bearer {token}",
                                           "X-Query-Purpose": "audit test"})
            denied = await client.get(f"/v1/persons/{_key(LAWYER_ID)}")
            return ok.status, await ok.json(), denied.status

    status, body, denied = asyncio.run(scenario())
    assert status == 503 and body["error"] == "AUDIT_UNAVAILABLE" and "records" not in body
    assert denied == 401  # a refusal stays a refusal
    assert [a.status for a in audit.attempts] == [200, 401]


def test_timestamps_in_audit_records_are_utc() -> None:
    record = AuditRecord(action="get", status=200, result="allowed")
    assert record.at.endswith("Z")
    assert abs(record.at_datetime().timestamp() - time.time()) < 5


# -- tokens and masking (no broker) ----------------------------------------------------------

def test_tokens_file_is_validated_reloaded_and_revocable(tmp_path: Path) -> None:
    catalog = default_catalog()
    path = tmp_path / "tokens.toml"
    store = TokenStore(path, catalog)
    assert len(store) == 0 and store.find("anything") is None
    first = add_token(path, name="司法局查询", role="unit", unit="justice", catalog=catalog)
    assert store.find(first) is not None and store.find(first).unit == "justice"  # reloaded
    with pytest.raises(TokenFileError, match="exists already"):
        add_token(path, name="司法局查询", role="office", unit=None, catalog=catalog)
    with pytest.raises(TokenFileError, match="not in the catalog"):
        add_token(path, name="x", role="unit", unit="no_such_unit", catalog=catalog)
    second = add_token(path, name="信用办", role="office", unit=None, catalog=catalog)
    assert [e.name for e in load_entries(path)] == ["司法局查询", "信用办"]
    assert revoke_token(path, "司法局查询") and not revoke_token(path, "司法局查询")
    assert store.find(first) is None and store.find(second).role == "office"
    path.write_text(path.read_text("utf-8") + "\n[[tokens]]\nname = 1\n", "utf-8")
    assert store.find(second) is not None  # a broken file keeps the tokens in force
    with pytest.raises(TokenFileError, match="no name"):
        load_entries(path)


def test_only_valid_resident_ids_are_masked_in_content() -> None:
    uscc = make_uscc("MA35XX001")
    not_an_id = LAWYER_ID[:17] + ("0" if LAWYER_ID[17] != "0" else "1")
    text = f"{LAWYER_ID} {LAWYER_ID.lower()} {uscc} {not_an_id} 123456789012345678901"
    masked = mask_resident_ids(text)
    assert LAWYER_ID not in masked and masked.count(mask_id(LAWYER_ID)) == 2
    assert uscc in masked and not_an_id in masked and "123456789012345678901" in masked


# -- listening: HTTPS with HSTS, loopback by default, a taken port ------------------------------

def test_https_with_hsts_when_a_certificate_is_configured(
        kafka_broker: BrokerState, topic_prefix: str, bus_env: dict[str, str],
        tmp_path: Path) -> None:
    """The real `creditbus query` with a certificate: HTTPS only, HSTS on every answer, on
    127.0.0.1 when no host is given; a client without the CA is refused; queries are audited
    as over HTTP."""
    import ssl

    from tests.tls_certs import issue_server_cert, make_ca

    ca = make_ca(tmp_path / "ca")
    cert = issue_server_cert(ca, tmp_path / "tls")
    catalog = default_catalog()
    tokens_file = tmp_path / "tokens.toml"
    token = add_token(tokens_file, name="信用办", role="office", unit=None, catalog=catalog)
    port = free_port()
    env = dict(bus_env, CREDITBUS_DATABASE_URL=f"sqlite:///{tmp_path}/platform.db",
               CREDITBUS_QUERY_TOKENS=str(tokens_file), CREDITBUS_QUERY_PORT=str(port),
               CREDITBUS_QUERY_TLS_CERT=str(cert.cert_path),
               CREDITBUS_QUERY_TLS_KEY=str(cert.key_path))
    env.pop("CREDITBUS_QUERY_HOST", None)
    log = tmp_path / "query.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "creditbus.cli.main", "query"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    trusted = ssl.create_default_context(cafile=str(ca.cert_path))

    def call(path: str, context: ssl.SSLContext, scheme: str = "https",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}",
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as answer:
                return answer.status, dict(answer.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers)

    def up() -> bool:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            call("/healthz", trusted)
            return True
        except (OSError, urllib.error.URLError):
            return False

    try:
        wait_for(up, 60, "the query service over HTTPS")
        status, headers = call("/healthz", trusted)
        assert status == 503  # no schema yet; the answer is still HTTPS with HSTS
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        key = "ab" * 32
        status, headers = call(f"/v1/persons/{key}", trusted, headers={
            "Authorization": f"Bearer {token}", "X-Query-Purpose": "https test"})
        assert status in (404, 503) and "Strict-Transport-Security" in headers
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            call("/healthz", ssl.create_default_context())
        with pytest.raises((OSError, urllib.error.URLError)):  # no plain HTTP on that port
            call("/healthz", trusted, scheme="http")
        assert f"query service on https://127.0.0.1:{port}" in log.read_text(errors="replace")
        records = consume_all(kafka_broker.bootstrap, audit_topic(topic_prefix), expect=1)
        audited = AuditRecord.from_bytes(records[0].value())
        assert audited.person_key == key and audited.caller.name == "信用办"
        assert audited.purpose == "https test"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def test_a_taken_port_ends_with_one_clear_line(bus_env: dict[str, str], tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = dict(bus_env, CREDITBUS_DATABASE_URL=f"sqlite:///{tmp_path}/platform.db")
        done = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "query", "--port",
                               str(port)], env=env, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: " \
                                  "address already in use"
