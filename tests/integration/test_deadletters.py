"""The dead-letter console on the real broker and worker: an event the catalog does not know
is dead-lettered, listed and shown masked, replayed after the catalog is fixed, accepted by the
worker, and lands once; a second replay publishes nothing. A sink's dead letter is logged once
by the sink and replays to the updates topic."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from creditbus.connectors.deadletters import DeadLetters
from creditbus.connectors.updates import Incoming

from creditbus.catalog import load_catalog
from creditbus.cli.main import main
from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.identity import mask_id
from creditbus.topics import deadletter_topic, raw_topic, updates_topic
from tests.bus import BusProcess, consume_all, produce, wait_for, worker_env
from tests.conftest import Topics
from tests.streams_data import ScenarioBuilder

NEW_CATEGORY = """
[[categories]]
code = "pro_bono"
name_zh = "法律援助服务"
content_kind = "note"
dishonesty = false
"""


def fixed_catalog(directory: Path) -> None:
    """The catalog fix: a new category, and the lawyer group allowed to carry it."""
    packaged = load_catalog().group("lawyer").required_categories
    listed = ", ".join(f'"{c}"' for c in (*packaged, "pro_bono"))
    text = NEW_CATEGORY + f'\n[[groups]]\ncode = "lawyer"\nrequired_categories = [{listed}]\n'
    (directory / "fix.toml").write_text(text, encoding="utf-8")


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


class Console:
    """`creditbus deadletters ...` in this process (no interpreter start per call), with the
    worker's environment."""

    def __init__(self, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        for key, value in env.items():
            if key.startswith("CREDITBUS_"):
                monkeypatch.setenv(key, value)
        self.capsys = capsys

    def __call__(self, *args: str) -> Ran:
        self.capsys.readouterr()
        code = main(["deadletters", *args])
        out = self.capsys.readouterr()
        return Ran(code, out.out, out.err)


def updates_of(bootstrap: str, prefix: str, record_id: str, expect: int | None) -> list[Any]:
    wire = Wire()
    messages = consume_all(bootstrap, updates_topic(prefix), expect=expect, timeout=90, idle=3)
    return [u for u in (wire.decode(m.value()).datum for m in messages)
            if u["change"]["record"]["record_id"] == record_id]


def test_dead_letter_listed_masked_replayed_after_a_catalog_fix_lands_once(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    bootstrap = kafka_broker.bootstrap
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    fix_dir = tmp_path / "fix"
    fix_dir.mkdir()
    fixed_catalog(fix_dir)
    builder = ScenarioBuilder(topic_prefix, b"test-secret", seed=5,
                              catalog=load_catalog(fix_dir))
    number, name = builder.person()
    good = builder.event(unit="justice", group="lawyer", category="career",
                         record_id="SFJ-OK", id_number=number, name=name, marker="ok")
    unknown = builder.event(unit="justice", group="lawyer", category="pro_bono",
                            record_id="SFJ-PB-1", id_number=number, name=name, marker="pb")
    env = worker_env(bus_env, tmp_path / "state", CREDITBUS_CATALOG_DIR=str(catalog_dir))
    log = tmp_path / "worker.log"
    cli = Console(env, monkeypatch, capsys)

    worker = BusProcess(["worker"], env, log).start()
    try:
        wait_for(lambda: raw_topic(topic_prefix, "justice") in topics.admin.list_topics(
            timeout=10).topics, 60, "the worker to create the topics")
        produce(bootstrap, [unknown, good])
        dead = consume_all(bootstrap, deadletter_topic(topic_prefix), expect=1, timeout=60)
        assert [header_dict(m.headers())["reason"] for m in dead] == ["UNKNOWN_CATEGORY"]
        assert updates_of(bootstrap, topic_prefix, "SFJ-OK", expect=1)
    finally:
        worker.stop()

    listed = cli("list", "--unit", "justice", "--reason", "unknown_category", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["id"] == "deadletter:0:0" and row["stage"] == "ingest"
    assert row["source"].startswith(raw_topic(topic_prefix, "justice") + ":")
    assert row["replayed_to"] is None
    assert cli("list", "--unit", "edu").stdout == ""  # the filter selects nothing

    shown = cli("show", row["id"])
    assert shown.returncode == 0, shown.stderr
    assert number not in shown.stdout and name not in shown.stdout + listed.stdout
    detail = json.loads(shown.stdout)
    person = detail["content"]["person"]
    assert person["id_number"] == mask_id(number) and person["name"].startswith(name[0])
    assert detail["content"]["category"] == "pro_bono"
    exported = tmp_path / "dead.jsonl"
    assert cli("export", "--reason", "UNKNOWN_CATEGORY", "--out", str(exported)
               ).returncode == 0
    assert number not in exported.read_text("utf-8")

    fixed_catalog(catalog_dir)  # the cause is fixed; the worker restarts with it
    worker = BusProcess(["worker"], env, log).start()
    try:
        first = cli("replay", row["id"])
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith(f"replayed\t{topic_prefix}.deadletter:0:0\t-> ")
        (landed,) = updates_of(bootstrap, topic_prefix, "SFJ-PB-1", expect=2)
        assert landed["change"]["record"]["category"] == "pro_bono"

        again = cli("replay", "--reason", "UNKNOWN_CATEGORY")
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith(f"already-replayed\t{topic_prefix}.deadletter:0:0")
        assert len(consume_all(bootstrap, raw_topic(topic_prefix, "justice"), idle=2)) == 3
        assert len(updates_of(bootstrap, topic_prefix, "SFJ-PB-1", expect=None)) == 1
    finally:
        worker.stop()
    assert "Traceback" not in worker.output(), worker.output()[-3000:]
    status = json.loads(cli("list", "--json").stdout)
    assert status["replayed_to"].startswith(raw_topic(topic_prefix, "justice") + ":")


def test_sink_dead_letter_is_logged_once_and_replays_to_the_updates_topic_once(
    kafka_broker: Any, topics: Topics, bus_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    updates = topics.create("archive.updates")
    dlq = topics.create("sink.deadletter")
    refused = Incoming(updates, 0, 7, b"person-key", b"an update the database refused")
    sink_dead_letters = DeadLetters(kafka_broker.bootstrap, dlq)
    with caplog.at_level(logging.INFO, "creditbus.sink"):
        sink_dead_letters.send(refused, "SINK_CONSTRAINT_VIOLATION", "CHECK cb_person_name")
        sink_dead_letters.flush()
    sink_dead_letters.close()
    logged = [r.getMessage() for r in caplog.records if r.name == "creditbus.sink"]
    assert logged == [f"dead letter: stage=sink reason=SINK_CONSTRAINT_VIOLATION "
                      f"source={updates}[0]@7"]

    cli = Console(bus_env, monkeypatch, capsys)
    listed = cli("list", "--stage", "sink", "--json")
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["source"]) == ("sink.deadletter:0:0", f"{updates}:0:7")
    assert json.loads(cli("show", row["id"]).stdout)["content_kind"] == "undecodable"
    table = cli("list", "--stage", "sink").stdout.splitlines()
    assert table[0].startswith("id\tfailed at (Beijing)\t") and len(table) == 2
    fields = table[1].split("\t")
    assert (fields[0], *fields[2:7]) == ("sink.deadletter:0:0", "sink",
                                         "SINK_CONSTRAINT_VIOLATION", "-", f"{updates}:0:7", "-")
    assert cli("replay", "--stage", "sink").stdout.startswith("replayed\t")
    assert cli("replay", row["id"]).stdout.startswith("already-replayed\t")
    (replayed,) = consume_all(kafka_broker.bootstrap, updates, idle=2)
    assert (replayed.key(), replayed.value()) == (refused.key, refused.value)
    assert dict(replayed.headers())["creditbus.replay.of"] == f"{dlq}:0:0".encode()
