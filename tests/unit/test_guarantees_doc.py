"""docs/guarantees.md names a test for every promise: each name must be a test that exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r"(?:tests/[\w/]+/)?(test_\w+\.py)::(test_\w+)")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_guarantees_name_exists() -> None:
    files = {path.name: path for path in (ROOT / "tests").rglob("test_*.py")}
    named = NAMED.findall((ROOT / "docs" / "guarantees.md").read_text())
    assert len(named) > 20
    missing = [f"{file}::{test}" for file, test in named
               if file not in files or test not in _tests_in(files[file])]
    assert not missing, missing
