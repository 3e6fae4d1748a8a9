"""Without Java, `creditbus kafka up` says what to install and exits non-zero."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from creditbus.devtools.kafka.jars import broker_artifacts
from creditbus.devtools.kafka.local import new_cluster_id
from creditbus.devtools.kafka.toolchain import _java_major


def test_up_without_java_prints_a_clear_message(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = dict(os.environ, PATH=str(empty_bin), CREDITBUS_HOME=str(tmp_path / "home"))
    env.pop("JAVA_HOME", None)
    result = subprocess.run(
        [sys.executable, "-m", "creditbus.cli.main", "kafka", "up"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "Java was not found" in result.stderr
    assert "JAVA_HOME" in result.stderr
    assert "Traceback" not in result.stderr


def test_java_version_parsing() -> None:
    assert _java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert _java_major('java version "1.8.0_392"') == 8
    assert _java_major('openjdk version "21" 2023-09-19') == 21


def test_logging_binding_follows_the_kafka_line() -> None:
    three = {a for _, a, _ in broker_artifacts("3.9.1")}
    four = {a for _, a, _ in broker_artifacts("4.1.0")}
    assert {"kafka_2.13", "slf4j-reload4j"} <= three
    assert {"kafka_2.13", "log4j-slf4j-impl", "log4j-core"} <= four


def test_cluster_ids_are_kafkas_shape_and_never_read_as_an_option(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: an id starting with "-" made `kafka-storage format -t <id>` fail (one
    broker format in 64). The first random UUID here encodes to "-" + ...; the second does not."""
    first = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    values = iter([first, uuid.UUID(int=7)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(values))
    made = new_cluster_id()
    assert not made.startswith("-") and len(made) == 22
    assert base64.urlsafe_b64decode(made + "==") == uuid.UUID(int=7).bytes
    monkeypatch.undo()
    assert all(len(new_cluster_id()) == 22 for _ in range(100))
