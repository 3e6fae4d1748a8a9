"""One exception root, exit codes documented once, one error path in the command line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import creditbus
from creditbus.errors import (
    EXIT_CODES,
    BrokerUnavailable,
    ConfigError,
    CreditbusError,
    DatabaseError,
    errors_markdown,
)

ROOT = Path(__file__).resolve().parents[2]


def test_docs_errors_page_is_generated_from_the_module() -> None:
    assert (ROOT / "docs" / "errors.md").read_text() == errors_markdown(), (
        "docs/errors.md is stale: regenerate it with .venv/bin/python -c 'from creditbus.errors "
        "import errors_markdown as m; print(m(), end=\"\")' > docs/errors.md")
    codes = [code for code, _ in EXIT_CODES]
    assert len(codes) == len(set(codes))
    assert {ConfigError.exit_code, BrokerUnavailable.exit_code, DatabaseError.exit_code} <= set(
        codes)


def test_every_exception_class_of_the_bus_has_the_one_root() -> None:
    """Every module of creditbus (core, processes, commands): its own exception classes
    derive from CreditbusError, so the command line's one `except` covers them."""
    strays = []
    for info in pkgutil.walk_packages(creditbus.__path__, "creditbus."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                    and not issubclass(obj, CreditbusError)):
                strays.append(f"{module.__name__}.{name}")
    assert strays == [], "exception classes outside creditbus.errors' root"


def test_help_lists_the_exit_codes() -> None:
    done = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "--help"],
                          capture_output=True, text=True, check=True)
    for code, meaning in EXIT_CODES:
        assert f"{code:>3}  {meaning}" in done.stdout


@pytest.mark.parametrize(("env", "argv", "code", "start"), [
    ({"CREDITBUS_PARTITIONS": "0"}, ["settings"], 2, "error: CREDITBUS_PARTITIONS: "),
    ({"CREDITBUS_BOOTSTRAP": ""}, ["topics", "list"], 3, "error: no Kafka broker"),
    ({"CREDITBUS_BOOTSTRAP": ""}, ["worker"], 3, "error: no Kafka broker"),
])
def test_an_error_is_one_line_and_the_exit_code_of_its_kind(
        env: dict[str, str], argv: list[str], code: int, start: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from creditbus.cli import main as cli_main

    monkeypatch.setenv("CREDITBUS_HOME", str(tmp_path))  # no local broker recorded here
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli_main.main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(start), err
