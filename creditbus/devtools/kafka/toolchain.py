"""Find the Java and Maven the local broker needs, with errors a newcomer can act on."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from creditbus.errors import ConfigError


class PrerequisiteError(ConfigError, RuntimeError):
    """A program the local broker needs is missing or unusable."""


def find_java() -> Path:
    """The `java` to run the broker with: $JAVA_HOME/bin/java, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME", "")
    candidates = [Path(java_home) / "bin" / "java"] if java_home else []
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            _check_java_version(candidate)
            return candidate
    raise PrerequisiteError(
        "Java was not found: the local Kafka broker needs Java 17 or newer. "
        "Install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) "
        "or set JAVA_HOME, then run the command again."
    )


def _check_java_version(java: Path) -> None:
    major = java_major(java)
    if major is not None and major < 11:
        raise PrerequisiteError(f"{java} is Java {major}; Kafka needs Java 11 or newer (17 best).")


@functools.cache
def java_major(java: Path) -> int | None:
    """The major version of `java` (None when its output does not say)."""
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrerequisiteError(f"{java} does not run: {exc}") from exc
    return _java_major(out)


def _java_major(version_output: str) -> int | None:
    for token in version_output.replace('"', " ").split():
        head = token.split(".")[0].split("-")[0]
        if head.isdigit():
            major = int(head)
            if major == 1 and token.startswith("1."):
                return int(token.split(".")[1])
            return major
    return None


def find_maven() -> Path:
    on_path = shutil.which("mvn")
    if on_path:
        return Path(on_path)
    raise PrerequisiteError(
        "Maven (mvn) was not found: it is needed once to fetch the Kafka broker's jars from "
        "Maven Central. Install it (Debian/Ubuntu: apt-get install maven) and run again."
    )
