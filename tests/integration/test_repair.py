"""Credit repair on the platform: migration 2 on SQLite and PostgreSQL, and one repair through
the real broker, worker and sink (record marked 已修复, out of the public view, verify clean)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from creditbus.connectors.platform.sink import PlatformWriter
from creditbus.connectors.platform.verify import verify
from creditbus.connectors.updates import Incoming
from creditbus.services.query.access import Principal, archive_view
from creditbus.services.query.store import read_archive

from creditbus.archive.person import apply_event
from creditbus.catalog import default_catalog
from creditbus.contract.canonical import derive_event_id
from creditbus.contract.schemas import tagged
from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.identity import make_resident_id, person_key
from creditbus.platformdb import schema
from creditbus.platformdb.db import PlatformDB, open_db, upsert_sql
from creditbus.platformdb.records import (
    LOG_COLUMNS,
    PERSON_COLUMNS,
    RECORD_COLUMNS,
    log_row,
    person_row,
    record_row,
)
from creditbus.topics import deadletter_topic, raw_topic, updates_topic
from tests.bus import BusProcess, consume_all, produce, wait_for, worker_env
from tests.conftest import Topics
from tests.platform_data import ARCHIVE_UPDATE, encode
from tests.unit.test_repair import penalty, repair_event

CST = timezone(timedelta(hours=8))
WIRE = Wire()
V1_RECORD_COLUMNS = RECORD_COLUMNS[:RECORD_COLUMNS.index("is_repaired")]


class NoDeadLetters:
    def send(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("nothing here is refused")

    def flush(self) -> None:
        pass


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/platform.db"
    return str(request.getfixturevalue("fresh_postgres_url")())


def _migrate_to_version_1(db: PlatformDB) -> None:
    """The schema as the release before credit repair left it."""
    conn = db._connection()  # type: ignore[attr-defined]  # both back ends have one
    p = db.placeholder
    with db.transaction():
        conn.execute(schema.VERSION_TABLE[db.dialect])
        for statement in schema.MIGRATIONS[0].statements[db.dialect]:
            conn.execute(statement)
        conn.execute(f"INSERT INTO cb_schema_version VALUES ({p}, {p}, {p})",
                     (1, schema.MIGRATIONS[0].description, "2026-01-01T00:00:00.000Z"))


def _write_as_version_1(db: PlatformDB, updates: list[Any]) -> None:
    """What the sink of that release wrote: the same rows without the repair columns."""
    p = db.placeholder
    with db.transaction():
        for update in updates:
            doc, body = json.loads(update.body), update.body.decode()
            db._executemany(upsert_sql("cb_person", PERSON_COLUMNS, p, "archive_version"),
                            [person_row(doc, update.hash)])
            db._executemany(upsert_sql("cb_record", V1_RECORD_COLUMNS, p, "person_version"),
                            [record_row(doc)[:len(V1_RECORD_COLUMNS)]])
            db._executemany(upsert_sql("cb_update_log", LOG_COLUMNS, p, None),
                            [log_row(doc, body, update.datum["previous_hash"], update.hash,
                                     "2026-01-02T00:00:00.000Z")])


def test_migration_2_keeps_old_rows_verifiable_and_takes_repairs(database_url: str) -> None:
    first = apply_event(None, penalty(), horizon_ms=10**12)
    fixed = apply_event(first.state, repair_event(date(2026, 5, 1)), horizon_ms=10**12)
    db = open_db(database_url)
    try:
        _migrate_to_version_1(db)
        _write_as_version_1(db, first.updates)
        assert db.schema_version() == 1

        assert db.migrate() == schema.latest_version()
        assert db.migrate() == schema.latest_version()  # idempotent
        [row] = db.dump("cb_record")
        assert row["is_repaired"] is False and row["repair_date"] is None
        assert row["is_public"] is True
        report = verify(db)
        assert report.ok, [str(p) for p in report.problems]

        writer = PlatformWriter(db, WIRE, NoDeadLetters(), "g", "t")  # type: ignore[arg-type]
        msgs = [Incoming("t", 0, i, None, encode(u.datum)) for i, u in enumerate(fixed.updates)]
        writer.write(writer.prepare(msgs))
        [row] = db.dump("cb_record")
        assert (row["is_repaired"], row["repair_decision_number"], row["repair_date"],
                row["repair_authority"]) == \
            (True, "赣司修〔2026〕3号", "2026-05-01", "赣州市司法局")
        assert row["is_public"] is False and row["is_retracted"] is False
        assert [r["kind"] for r in db.dump("cb_update_log")] == ["UPSERT_RECORD",
                                                                 "REPAIR_RECORD"]
        report = verify(db)
        assert report.ok and report.updates == 2, [str(p) for p in report.problems]

        with db.transaction():  # a repair undone outside the bus is found
            db._connection().execute(  # type: ignore[attr-defined]
                "UPDATE cb_record SET is_repaired = "
                + ("0" if db.dialect == schema.SQLITE else "false"))
        problems = [str(p) for p in verify(db).problems]
        assert any("is_repaired" in p for p in problems), problems
    finally:
        db.close()


# -- through the real bus ---------------------------------------------------------------------

def _events(number: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A general penalty decided 200 days ago, its repair today, and a repair of a record the
    unit never published."""
    person = {"id_number": number, "name": "刘建华", "organisation": None,
              "organisation_uscc": None, "sealed": None}
    now = datetime.now(UTC).replace(microsecond=0)
    decided = (now - timedelta(days=200)).astimezone(CST).date()
    upsert: dict[str, Any] = {
        "event_id": "", "unit": "justice", "published_at": now - timedelta(days=199),
        "occurred_at": datetime(decided.year, decided.month, decided.day, tzinfo=CST),
        "action": "UPSERT", "record_id": "SFJ-CF-R1", "person": person, "group": "lawyer",
        "category": "practice_penalty", "severity": "GENERAL", "domain": None,
        "source_ref": None,
        "content": tagged("Penalty", {
            "decision_number": "赣市司罚决字〔2026〕7号", "illegal_facts": "私自收案收费。",
            "legal_basis": "《律师法》第四十八条", "penalty_types": ["警告"],
            "penalty_content": "给予警告。", "fine_amount": None, "decision_date": decided,
            "disclosure_until": None, "authority": "赣州市司法局", "authority_uscc": None})}
    today = now.astimezone(CST).date()
    repair: dict[str, Any] = dict(
        upsert, action="REPAIR", published_at=now, severity=None,
        occurred_at=datetime(today.year, today.month, today.day, tzinfo=CST),
        content=tagged("CreditRepair", {"decision_number": "赣市司信修字〔2026〕3号",
                                        "decision_date": today, "authority": "赣州市司法局",
                                        "authority_uscc": None}))
    unknown = dict(repair, record_id="SFJ-CF-NONE")
    for datum in (upsert, repair, unknown):
        datum["event_id"] = derive_event_id(datum)
    return upsert, repair, unknown


def test_a_repair_through_the_bus_is_marked_repaired_and_leaves_the_public_view(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str], tmp_path: Path,
) -> None:
    number = make_resident_id("360702", date(1982, 5, 14), 77)
    upsert, repair, unknown = _events(number)
    url = f"sqlite:///{tmp_path}/platform.db"
    env = dict(bus_env, CREDITBUS_DATABASE_URL=url, CREDITBUS_SINK_METRICS_PORT="0")
    worker = BusProcess(["worker"], worker_env(env, tmp_path / "state"),
                        tmp_path / "worker.log").start()
    try:
        wait_for(lambda: raw_topic(topic_prefix, "justice") in topics.admin.list_topics(
            timeout=10).topics, 90, "the worker to create the topics")
        topic = raw_topic(topic_prefix, "justice")
        produce(kafka_broker.bootstrap, [(topic, b"SFJ-CF-R1", WIRE.encode("CreditEvent", d))
                                         for d in (upsert, repair, unknown)])
        updates = consume_all(kafka_broker.bootstrap, updates_topic(topic_prefix), expect=2,
                              timeout=120)
        dead = consume_all(kafka_broker.bootstrap, deadletter_topic(topic_prefix), expect=1,
                           timeout=60)
    finally:
        worker.stop()
    assert "Traceback" not in worker.output(), worker.output()[-3000:]
    kinds = [WIRE.decode(m.value()).datum["change"]["kind"] for m in updates]
    assert kinds == ["UPSERT_RECORD", "REPAIR_RECORD"]
    assert [header_dict(m.headers())["reason"] for m in dead] == ["REPAIR_UNKNOWN_RECORD"]
    assert WIRE.decode(updates[1].value()).record_name == ARCHIVE_UPDATE

    sink = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "sink", "--until-idle",
                           "2"], env=env, capture_output=True, text=True, timeout=180)
    assert sink.returncode == 0, sink.stderr[-2000:]
    verified = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "verify"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout[-2000:]
    assert "1 persons, 2 updates, 1 records checked: no problems" in verified.stdout

    db = open_db(url)
    try:
        [row] = db.dump("cb_record")
        assert row["is_repaired"] is True and row["is_public"] is False
        assert row["repair_decision_number"] == "赣市司信修字〔2026〕3号"
        assert row["content_json"].startswith('{"Penalty":')  # still in the archive
        key = person_key(number, b"test-secret")
        rows = read_archive(db, key, with_history=True)
    finally:
        db.close()
    assert rows is not None
    catalog, today = default_catalog(), datetime.now(CST).date()
    public = archive_view(Principal("网站", "public"), rows.person, rows.records, [], catalog,
                          today)
    assert public is None  # the query service answers 404, as for an unknown person
    unit = archive_view(Principal("司法局", "unit", "justice"), rows.person, rows.records, [],
                        catalog, today)
    assert unit is not None
    [record] = unit["records"]
    assert (record["status"], record["status_name"], record["repaired"]) == \
        ("repaired", "已修复", True)
    assert record["repair"]["decision_number"] == "赣市司信修字〔2026〕3号"
