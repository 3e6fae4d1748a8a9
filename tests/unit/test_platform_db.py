"""The pure pieces of the platform sink, against a real SQLite file (no broker)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from creditbus.connectors.backoff import Backoff
from creditbus.connectors.consuming import _append_in_order, next_offsets
from creditbus.connectors.errors import TransientError
from creditbus.connectors.http.payload import batch_body, idempotency_key
from creditbus.connectors.platform.plan import FORK, GAP, plan_batch
from creditbus.connectors.platform.sink import PlatformWriter
from creditbus.connectors.platform.verify import run as verify_run
from creditbus.connectors.platform.verify import verify
from creditbus.connectors.updates import HASH_MISMATCH, Incoming, prepare

from creditbus.contract.wire import Wire
from creditbus.errors import DatabaseError
from creditbus.platformdb import schema
from creditbus.platformdb.db import ErrorKind, open_db, redact_url
from creditbus.platformdb.sqlite import SqliteDB, parse_sqlite_url
from creditbus.settings import REPO_ROOT
from tests.platform_data import Generator, encode, expected_rows, generate

WIRE = Wire()


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[Incoming, str, str, dict[str, str]]] = []

    def send(self, msg: Incoming, reason: str, message: str, *, unit: str | None = None,
             extra: dict[str, str] | None = None) -> None:
        self.sent.append((msg, reason, message, extra or {}))

    def flush(self) -> None:
        pass


@pytest.fixture()
def db(tmp_path: Path) -> Any:
    database = open_db(f"sqlite:///{tmp_path}/platform.db")
    database.migrate()
    yield database
    database.close()


def person_updates(count: int, seed: int = 1) -> list[dict[str, Any]]:
    gen = Generator(seed)
    person = gen.person(0)
    out: list[dict[str, Any]] = []
    while len(out) < count:
        out += gen.step(person)[:count - len(out)]
    return out


def incoming(updates: list[Any], start: int = 0, partition: int = 0) -> list[Incoming]:
    return [Incoming("t", partition, start + i, None, u if isinstance(u, bytes) else encode(u))
            for i, u in enumerate(updates)]


def write(writer: PlatformWriter, msgs: list[Incoming]) -> None:
    writer.write(writer.prepare(msgs))


# -- schema ------------------------------------------------------------------------------------

def test_migrate_creates_the_schema_once_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    for _ in range(2):
        database = open_db(url)
        assert database.migrate() == schema.latest_version()
        database.close()
    with sqlite3.connect(tmp_path / "p.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert set(schema.TABLES) <= tables
        assert conn.execute("SELECT version FROM cb_schema_version ORDER BY version"
                            ).fetchall() == [(m.version,) for m in schema.MIGRATIONS]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_docs_describe_every_table_and_column(db: SqliteDB) -> None:
    docs = (REPO_ROOT / "docs" / "platform.md").read_text()
    conn = sqlite3.connect(db.path)
    for table in schema.TABLES:
        assert f"### `{table}`" in docs, table
        section = docs.split(f"### `{table}`", 1)[1].split("\n### ", 1)[0]
        for column in (r[1] for r in conn.execute(f"PRAGMA table_info({table})")):
            assert re.search(rf"^\| `{column}` \|", section, re.M), f"{table}.{column}"


def test_column_limits_are_enforced_like_postgresql(db: SqliteDB) -> None:
    def person(name: str) -> tuple[Any, ...]:
        return ("a" * 64, "360702********1234", name, "1980-01-01", "M", "360702", "[]", 1,
                "2025-01-01T00:00:00.000Z", "0" * 64)

    with pytest.raises(sqlite3.IntegrityError) as err, db.transaction():
        db.upsert_persons([person("名" * 65)])  # varchar(64) in PostgreSQL
    assert db.classify(err.value) is ErrorKind.ROW
    with db.transaction():
        db.upsert_persons([person("名" * 64)])
    assert db.dump("cb_person")[0]["name"] == "名" * 64


# -- planning ----------------------------------------------------------------------------------

def test_plan_skips_versions_already_held_and_flags_gaps_and_forks() -> None:
    ups = person_updates(5)
    items = [prepare(WIRE, m) for m in incoming(ups)]
    pk = ups[0]["person_key"]
    plan = plan_batch(items, {pk: (2, ups[1]["hash"])}, "2025-01-01T00:00:00.000Z")
    assert [i.version for i in plan.applied] == [3, 4, 5]
    assert plan.skipped == 2 and not plan.breaks
    assert plan.persons[pk][7] == 5 and plan.persons[pk][9] == ups[4]["hash"]

    gap = plan_batch([items[0], items[3]], {}, "x")
    assert [(b.version, b.kind) for b in gap.breaks] == [(4, GAP)]
    fork = plan_batch([items[2]], {pk: (2, "f" * 64)}, "x")
    assert [(b.version, b.kind) for b in fork.breaks] == [(3, FORK)]


# -- the writer --------------------------------------------------------------------------------

def test_writer_applies_each_version_once_and_stores_offsets_with_the_rows(db: SqliteDB) -> None:
    ups = person_updates(6)
    writer = PlatformWriter(db, WIRE, FakeDeadLetters(), "g", "t")  # type: ignore[arg-type]
    write(writer, incoming(ups[:3]))
    # a replay after a crash (v2, v3 again), the rest, then stale versions
    write(writer, incoming([ups[1], ups[2], ups[3], ups[4], ups[5], ups[0], ups[2]], start=3))
    persons, records = expected_rows(ups)
    assert {r["person_key"]: r for r in db.dump("cb_person")} == persons
    assert {(r["person_key"], r["unit"], r["record_id"]): r
            for r in db.dump("cb_record")} == records
    assert [r["version"] for r in db.dump("cb_update_log")] == [1, 2, 3, 4, 5, 6]
    assert db.load_offsets("g", "t") == {0: 10}
    assert verify(db).ok


def test_a_refused_update_is_isolated_dead_lettered_and_passed_over(db: SqliteDB) -> None:
    stream = generate(10, 60, seed=4)
    gen = Generator(seed=99)
    bad_person = gen.person(1)
    bad_person.name = "长" * 70
    bad = gen.step(bad_person)
    msgs = incoming([*stream.updates[:30], *bad, *stream.updates[30:]])
    dead = FakeDeadLetters()
    writer = PlatformWriter(db, WIRE, dead, "g", "t")  # type: ignore[arg-type]
    write(writer, msgs)
    assert [(m.offset, reason) for m, reason, _, _ in dead.sent] == \
        [(30, "SINK_CONSTRAINT_VIOLATION")]
    assert "CHECK constraint failed" in dead.sent[0][2]
    assert dead.sent[0][3]["person.key"] == bad[0]["person_key"]
    persons, records = expected_rows(stream.updates)
    assert {r["person_key"]: r for r in db.dump("cb_person")} == persons
    assert len(db.dump("cb_record")) == len(records)
    assert db.load_offsets("g", "t") == {0: len(msgs)}


def test_undecodable_and_forged_updates_are_dead_lettered(db: SqliteDB) -> None:
    ups = person_updates(3)
    # the hashed text changed, the hash not recomputed
    forged = dict(ups[1], hashed_body=ups[1]["hashed_body"].replace(ups[1]["name"], "篡改"))
    # the text of another version under this one's hash and key fields
    swapped = dict(ups[1], hashed_body=ups[2]["hashed_body"])
    dead = FakeDeadLetters()
    writer = PlatformWriter(db, WIRE, dead, "g", "t")  # type: ignore[arg-type]
    write(writer, incoming([ups[0], b"\x7fnot avro", encode(forged), encode(swapped)]))
    assert [reason for _, reason, _, _ in dead.sent] == [
        "WIRE_UNKNOWN_FRAMING", HASH_MISMATCH, HASH_MISMATCH]
    assert [r["version"] for r in db.dump("cb_update_log")] == [1]
    assert db.load_offsets("g", "t") == {0: 4}


def test_the_hashed_text_is_what_the_platform_stores(db: SqliteDB) -> None:
    """Fields altered beside an intact hashed text change nothing: the rows come from the
    text the chain covers. A consumer that uses the fields checks them against it."""
    [first] = person_updates(1)
    altered = dict(first, name="篡改")
    writer = PlatformWriter(db, WIRE, FakeDeadLetters(), "g", "t")  # type: ignore[arg-type]
    write(writer, incoming([altered]))
    [person] = db.dump("cb_person")
    assert person["name"] == first["name"] != "篡改"
    checked = prepare(WIRE, incoming([altered])[0], check_fields=True)
    assert checked.reason == HASH_MISMATCH
    assert prepare(WIRE, incoming([first])[0], check_fields=True).reason is None


def test_updates_from_producers_before_the_carried_text_still_land(db: SqliteDB) -> None:
    ups = [{k: v for k, v in u.items() if k != "hashed_body"} for u in person_updates(3)]
    old = WIRE.store.versions("ArchiveUpdate")[0]
    assert "hashed_body" not in {f["name"] for f in old.raw["fields"]}
    messages = [Incoming("t", 0, i, None, old_encode(old, u)) for i, u in enumerate(ups)]
    dead = FakeDeadLetters()
    writer = PlatformWriter(db, WIRE, dead, "g", "t")  # type: ignore[arg-type]
    write(writer, messages)
    assert not dead.sent
    assert [r["version"] for r in db.dump("cb_update_log")] == [1, 2, 3]
    assert verify(db).ok


def old_encode(version: Any, datum: dict[str, Any]) -> bytes:
    """`datum` in the single-object encoding of an older schema version."""
    from fastavro import schemaless_writer

    from creditbus.contract.wire import SINGLE_OBJECT_MARKER

    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MARKER + version.fingerprint)
    schemaless_writer(buf, version.parsed, datum)
    return buf.getvalue()


def test_database_locked_is_transient_and_the_retry_loses_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/locked.db?busy_timeout_ms=50"
    database = open_db(url)
    database.migrate()
    writer = PlatformWriter(database, WIRE, FakeDeadLetters(), "g", "t")  # type: ignore[arg-type]
    ups = person_updates(4)
    batch = writer.prepare(incoming(ups))
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(TransientError, match="locked"):
        writer.write(batch)
    other.execute("COMMIT")
    other.close()
    writer.write(batch)
    assert [r["version"] for r in database.dump("cb_update_log")] == [1, 2, 3, 4]
    database.close()


# -- verify ------------------------------------------------------------------------------------

def test_verify_reports_what_was_changed_outside_the_bus(db: SqliteDB) -> None:
    stream = generate(15, 150, seed=6)
    writer = PlatformWriter(db, WIRE, FakeDeadLetters(), "g", "t")  # type: ignore[arg-type]
    write(writer, incoming(stream.updates))
    report = verify(db)
    assert report.ok and (report.persons, report.updates) == (15, 150)

    logs = db.dump("cb_update_log")
    persons = db.dump("cb_person")
    rec = db.dump("cb_record")[0]
    conn = sqlite3.connect(db.path)
    with conn:
        conn.execute("UPDATE cb_record SET is_public = 1 - is_public WHERE person_key = ? AND "
                     "unit = ? AND record_id = ?", (rec["person_key"], rec["unit"],
                                                    rec["record_id"]))
        conn.execute("UPDATE cb_person SET name = '冒名' WHERE person_key = ?",
                     (persons[3]["person_key"],))
        altered = next(r for r in logs if r["person_key"] == persons[5]["person_key"])
        conn.execute("UPDATE cb_update_log SET body = replace(body, '\"version\":1', "
                     "'\"version\":1 ') WHERE person_key = ? AND version = 1",
                     (altered["person_key"],))
        conn.execute("DELETE FROM cb_person WHERE person_key = ?", (persons[7]["person_key"],))
        conn.execute("INSERT INTO cb_person SELECT 'z' || substr(person_key, 2), masked_id, "
                     "name, birth_date, sex, division_code, \"groups\", archive_version, "
                     "updated_at, chain_head FROM cb_person WHERE person_key = ?",
                     (persons[9]["person_key"],))
    text = "\n".join(str(p) for p in verify(db).problems)
    assert (f"person {rec['person_key']} version {rec['person_version']} record "
            f"{rec['unit']}/{rec['record_id']}: cb_record differs from the log in is_public"
            in text)
    assert f"person {persons[3]['person_key']} version " in text
    assert "cb_person differs from the log in name" in text
    assert (f"person {altered['person_key']} version 1: update log: hash does not match the "
            "stored content") in text
    assert f"person {persons[7]['person_key']} version" in text
    assert "cb_person row missing" in text
    forged = "z" + persons[9]["person_key"][1:]
    assert f"person {forged} version" in text and "cb_person row without any update" in text

    out = io.StringIO()
    assert verify_run(f"sqlite:///{db.path}", out=out) == 1
    assert out.getvalue().splitlines()[-1].startswith("verify: 16 persons, 150 updates")


def test_verify_without_a_schema_is_a_database_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="holds no platform schema"):  # exit 4
        verify_run(f"sqlite:///{tmp_path}/none.db", out=io.StringIO())
    assert not (tmp_path / "none.db").exists()


# -- small pieces ------------------------------------------------------------------------------

def test_database_urls() -> None:
    assert parse_sqlite_url("sqlite:////abs/p.db") == (Path("/abs/p.db"), 1000)
    assert parse_sqlite_url("sqlite:///rel/p.db?busy_timeout_ms=250") == (Path("rel/p.db"), 250)
    with pytest.raises(ValueError):
        open_db("mysql://x")
    assert redact_url("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert type(open_db("postgresql://u@h/db")).__name__ == "PostgresDB"


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(initial=0.1, factor=2.0, cap=1.0)
    assert [backoff.delay(i) for i in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.delay(10_000) == 1.0


def test_http_batch_body_and_idempotency_key() -> None:
    ups = person_updates(3)
    decoded = [WIRE.decode(encode(u)).datum for u in ups]
    body, key = batch_body(WIRE.store.current("cn.gov.ganzhou.creditbus.ArchiveUpdate"), decoded)
    pairs = [[u["person_key"], u["version"]] for u in ups]
    assert key == hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()
    assert key == idempotency_key(decoded)
    doc = json.loads(body)
    assert doc["idempotency_key"] == key and doc["count"] == 3
    assert [u["version"] for u in doc["updates"]] == [1, 2, 3]
    assert doc["updates"][0]["hash"] == ups[0]["hash"]
    assert doc["updates"][0]["birth_date"] == ups[0]["birth_date"].isoformat()


def test_batches_keep_each_partition_in_offset_order() -> None:
    batch: list[Incoming] = []
    for partition, offset in [(0, 5), (1, 7), (0, 6), (1, 8), (0, 3), (0, 4)]:
        _append_in_order(batch, Incoming("t", partition, offset, None, b""))
    assert [(m.partition, m.offset) for m in batch] == [(1, 7), (1, 8), (0, 3), (0, 4)]
    assert next_offsets(batch) == {("t", 1): 9, ("t", 0): 5}
