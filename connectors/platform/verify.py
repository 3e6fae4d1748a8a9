"""`creditbus verify`: check the platform database against its own update log.

For every person, in one consistent snapshot:

1. the hash chain of `cb_update_log` (versions 1..n without gaps, each previous hash the hash
   before, each hash the SHA-256 of the previous hash and the stored body, the person's chain
   head the last hash) with `creditbus.archive.chain.chain_problems`;
2. each log row's columns against its body (person key, version, kind, event id);
3. `cb_person` against the last body, and every `cb_record` row against the last change of
   that record in the bodies (the bodies replayed through the sink's own projection,
   `creditbus.platformdb.records`);
4. no `cb_person` or `cb_record` row without log entries.

So a row altered, deleted or inserted outside the bus is reported with its person key and
version (and unit / record id), as is a log row that was altered or deleted. The three tables
are read in primary-key order and merged by person key, so memory stays per person.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, TextIO

from creditbus.archive.chain import chain_problems
from creditbus.errors import ConfigError, DatabaseError
from creditbus.platformdb.db import PlatformDB, open_db, redact_url
from creditbus.platformdb.records import (
    PERSON_COLUMNS,
    RECORD_COLUMNS,
    as_dict,
    person_row,
    record_key,
    record_row,
)

OUTSIDE = "(changed outside the bus)"


@dataclass(frozen=True)
class Problem:
    person_key: str
    version: int | None
    what: str
    unit: str | None = None
    record_id: str | None = None

    def __str__(self) -> str:
        where = f"person {self.person_key}"
        if self.version is not None:
            where += f" version {self.version}"
        if self.unit is not None:
            where += f" record {self.unit}/{self.record_id}"
        return f"{where}: {self.what}"


@dataclass
class Report:
    persons: int = 0
    updates: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        found = "no problems" if self.ok else f"{len(self.problems)} problem(s)"
        return (f"verify: {self.persons} persons, {self.updates} updates, {self.records} "
                f"records checked: {found}")


Rows = list[dict[str, Any]]


def _grouped(rows: Iterator[dict[str, Any]]) -> Iterator[tuple[str, Rows]]:
    for key, group in groupby(rows, key=lambda r: r["person_key"]):
        yield key, list(group)


def _merged(db: PlatformDB) -> Iterator[tuple[str, Rows, dict[str, Any] | None, Rows]]:
    """(person key, log rows, person row, record rows) for every key in any of the tables."""
    streams = [_grouped(db.iter_rows("cb_update_log")), _grouped(db.iter_rows("cb_person")),
               _grouped(db.iter_rows("cb_record"))]
    heads: list[tuple[str, Rows] | None] = [next(s, None) for s in streams]
    while any(h is not None for h in heads):
        key = min(h[0] for h in heads if h is not None)
        parts: list[Rows] = []
        for i, head in enumerate(heads):
            if head is not None and head[0] == key:
                parts.append(head[1])
                heads[i] = next(streams[i], None)
            else:
                parts.append([])
        person = parts[1][0] if parts[1] else None
        yield key, parts[0], person, parts[2]


def verify(db: PlatformDB) -> Report:
    report = Report()
    with db.snapshot():
        for key, logs, person, records in _merged(db):
            report.updates += len(logs)
            report.records += len(records)
            report.persons += 1
            report.problems += check_person(key, logs, person, records)
    return report


def check_person(key: str, logs: Rows, person: dict[str, Any] | None,
                 records: Rows) -> list[Problem]:
    """Every problem of one person, given its rows of the three tables."""
    problems: list[Problem] = []
    if not logs:
        if person is not None:
            problems.append(Problem(key, person["archive_version"],
                                    f"cb_person row without any update in the log {OUTSIDE}"))
        for rec in records:
            problems.append(Problem(key, rec["person_version"],
                                    f"cb_record row without any update in the log {OUTSIDE}",
                                    rec["unit"], rec["record_id"]))
        return problems

    links = [(int(r["version"]), str(r["previous_hash"]), str(r["hash"]),
              str(r["body"]).encode("utf-8")) for r in logs]
    head = person["chain_head"] if person is not None else None
    for version, text in chain_problems(links, head=head):
        problems.append(Problem(key, version, f"update log: {text} {OUTSIDE}"))

    expected_records: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    last: tuple[Any, ...] | None = None
    for row in logs:
        doc = _body(row)
        if doc is None:
            problems.append(Problem(key, row["version"],
                                    f"update log body is unreadable {OUTSIDE}"))
            continue
        columns = {"person_key": doc.get("person_key"), "version": doc.get("version"),
                   "kind": doc.get("change", {}).get("kind"), "event_id": doc.get("event_id")}
        differing = sorted(c for c, v in columns.items() if row[c] != v)
        if differing:
            problems.append(Problem(key, row["version"],
                                    f"update log columns differ from the body: "
                                    f"{', '.join(differing)} {OUTSIDE}"))
            continue
        try:
            rkey, rrow, prow = record_key(doc), record_row(doc), person_row(doc, row["hash"])
        except (KeyError, TypeError, AttributeError):
            problems.append(Problem(key, row["version"],
                                    f"update log body lacks fields {OUTSIDE}"))
            continue
        expected_records[rkey] = rrow
        last = prow

    if last is not None:
        expected = as_dict(PERSON_COLUMNS, last)
        if person is None:
            problems.append(Problem(key, expected["archive_version"],
                                    f"cb_person row missing {OUTSIDE}"))
        else:
            differing = [c for c in PERSON_COLUMNS if person.get(c) != expected[c]]
            if differing:
                problems.append(Problem(key, person["archive_version"],
                                        f"cb_person differs from the log in "
                                        f"{', '.join(differing)} {OUTSIDE}"))

    actual = {(r["person_key"], r["unit"], r["record_id"]): r for r in records}
    for rkey, row in expected_records.items():
        want = as_dict(RECORD_COLUMNS, row)
        have = actual.pop(rkey, None)
        if have is None:
            problems.append(Problem(key, want["person_version"],
                                    f"cb_record row missing {OUTSIDE}", rkey[1], rkey[2]))
            continue
        differing = [c for c in RECORD_COLUMNS if have.get(c) != want[c]]
        if differing:
            problems.append(Problem(key, have["person_version"],
                                    f"cb_record differs from the log in "
                                    f"{', '.join(differing)} {OUTSIDE}", rkey[1], rkey[2]))
    for rkey, have in actual.items():
        problems.append(Problem(key, have["person_version"],
                                f"cb_record row not backed by the log {OUTSIDE}",
                                rkey[1], rkey[2]))
    return problems


def _body(row: dict[str, Any]) -> dict[str, Any] | None:
    try:
        doc = json.loads(row["body"])
    except (TypeError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("change"), dict) else None


def run(database_url: str, *, max_problems: int = 1000, out: TextIO | None = None) -> int:
    """The `creditbus verify` command: 0 clean, 1 problems found; ConfigError for an unusable
    URL, DatabaseError when the database cannot be checked."""
    out = out or sys.stdout
    try:
        db = open_db(database_url, application_name="creditbus-verify")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        if db.schema_version() is None:
            raise DatabaseError(f"{redact_url(database_url)} holds no platform schema (run the "
                                "sink first)")
        report = verify(db)
    except DatabaseError:
        raise
    except Exception as exc:  # noqa: BLE001 - any database failure means "cannot check"
        raise DatabaseError(f"cannot read {redact_url(database_url)}: {exc}") from None
    finally:
        db.close()
    for problem in report.problems[:max_problems]:
        print(problem, file=out)
    if len(report.problems) > max_problems:
        print(f"... and {len(report.problems) - max_problems} more", file=out)
    print(report.summary(), file=out)
    return 0 if report.ok else 1
