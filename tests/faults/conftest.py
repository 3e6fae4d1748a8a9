"""The faults suite's report: one line per case,

    faults: <case>: in=<events in> archived=<n> dead_lettered=<n> lost=<n>

printed as the case ends (visible with `-s`), attached to the test as the user property
`faults` (JUnit XML), appended to the file named by `CREDITBUS_FAULTS_SUMMARY` when set, and
repeated in a "faults" section of pytest's terminal summary (tests/conftest.py collects it from
the test reports, so it works with pytest-xdist too). `lost` is asserted to be 0 after the line
is recorded, so a failing case still reports its figures.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

Report = Callable[..., str]


def format_line(case: str, *, events_in: int, archived: int, dead_lettered: int,
                lost: int) -> str:
    return (f"faults: {case}: in={events_in} archived={archived} "
            f"dead_lettered={dead_lettered} lost={lost}")


@pytest.fixture()
def faults_report(record_property: Callable[[str, object], None]) -> Report:
    """`faults_report(case, events_in=, archived=, dead_lettered=, lost=, detail="")`: record
    the case's line, then assert that nothing was lost (`detail` explains a failure)."""

    def report(case: str, *, events_in: int, archived: int, dead_lettered: int,
               lost: int, detail: str = "") -> str:
        line = format_line(case, events_in=events_in, archived=archived,
                           dead_lettered=dead_lettered, lost=lost)
        print(line, flush=True)
        record_property("faults", line)
        summary = os.environ.get("CREDITBUS_FAULTS_SUMMARY", "").strip()
        if summary:
            with Path(summary).open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        assert lost == 0, f"{line}\n{detail}".rstrip()
        return line

    return report
