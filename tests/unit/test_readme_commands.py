"""The README's command table lists every sub-command of `creditbus` (as the parser registers
them) with each of its actions, and nothing else."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from creditbus.cli.main import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_rows() -> dict[str, tuple[str, str]]:
    """First word of each command cell of the "## Commands" table -> (the cell, the
    description)."""
    section = README.read_text("utf-8").split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, tuple[str, str]] = {}
    for row in rows:
        match = re.match(r"\| `(([a-z-]+)[^`]*)` \| (.*) \|$", row)
        assert match, f"not a command row: {row}"
        assert match[2] not in table, f"{match[2]} is listed twice"
        table[match[2]] = (match[1], match[3].strip())
    return table


def readme_commands() -> dict[str, str]:
    """First word of each command cell of the "## Commands" table -> its description."""
    return {name: doc for name, (_cell, doc) in readme_rows().items()}


def registered_commands() -> set[str]:
    return set(_command_parsers())


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()  # every module of creditbus.cli.main.COMMANDS
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _actions(parser: argparse.ArgumentParser) -> list[str]:
    """The sub-commands or the positional choices of a command (`up`, `status`, ...)."""
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices)
        elif action.choices and not action.option_strings:
            found += [str(choice) for choice in action.choices]
    return found


def test_readme_table_lists_every_registered_command() -> None:
    table = readme_commands()
    registered = registered_commands()
    assert len(registered) >= 14
    assert set(table) - registered == set(), "the README lists commands that do not exist"
    assert registered - set(table) == set(), "commands missing from the README's table"
    assert all(table.values()), "every command has a one-line description"


def test_readme_rows_name_every_action_of_their_command() -> None:
    rows = readme_rows()
    for name, parser in _command_parsers().items():
        cell = rows[name][0]
        missing = [a for a in _actions(parser) if not re.search(rf"\b{re.escape(a)}\b", cell)]
        assert missing == [], f"the README's row of `{name}` does not name {missing}"
