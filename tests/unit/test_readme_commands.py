"""The README's command table lists every sub-command of `creditbus`, and nothing else."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from creditbus.cli.main import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> dict[str, str]:
    """First word of each command cell of the "## Commands" table -> its description."""
    section = README.read_text("utf-8").split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, str] = {}
    for row in rows:
        match = re.match(r"\| `([a-z-]+)[^`]*` \| (.*) \|$", row)
        assert match, f"not a command row: {row}"
        assert match[1] not in table, f"{match[1]} is listed twice"
        table[match[1]] = match[2].strip()
    return table


def registered_commands() -> set[str]:
    parser = build_parser()  # the core commands and those of the entry points
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def test_readme_table_lists_every_registered_command() -> None:
    table = readme_commands()
    registered = registered_commands()
    assert len(registered) >= 14
    assert set(table) - registered == set(), "the README lists commands that do not exist"
    assert registered - set(table) == set(), "commands missing from the README's table"
    assert all(table.values()), "every command has a one-line description"
