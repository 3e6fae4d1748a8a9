"""Without Java, `creditbus kafka up` says what to install and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from creditbus.devtools.kafka.jars import broker_artifacts
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
