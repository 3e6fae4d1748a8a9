"""Assemble the Kafka broker's class path from Maven Central, once, into a cache."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path

from creditbus.devtools.kafka.toolchain import PrerequisiteError, find_maven

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>creditbus.local</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""

_DEP = (
    "    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
    "<version>{v}</version></dependency>"
)


def broker_artifacts(version: str) -> list[tuple[str, str, str]]:
    """The Maven coordinates of a broker: kafka_2.13 plus the logging binding of its line."""
    artifacts = [("org.apache.kafka", "kafka_2.13", version)]
    if int(version.split(".")[0]) >= 4:
        log4j = "2.24.3"
        for name in ("log4j-api", "log4j-core", "log4j-slf4j-impl"):
            artifacts.append(("org.apache.logging.log4j", name, log4j))
    else:
        artifacts.append(("org.slf4j", "slf4j-reload4j", "1.7.36"))
    return artifacts


def ensure_broker_jars(cache: Path, version: str, *, quiet: bool = False) -> Path:
    """Return the directory of the broker's jars, fetching them with Maven on first use.

    A file lock makes concurrent first runs fetch once; the directory is filled in a temporary
    place and renamed, so a crashed fetch never leaves a half-filled class path behind.
    """
    target = cache / "kafka" / version / "libs"
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(target):
            return target
        mvn = find_maven()
        if not quiet:
            print(f"Fetching Apache Kafka {version} from Maven Central (once) ...", flush=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            work = Path(tmp)
            deps = "\n".join(_DEP.format(g=g, a=a, v=v) for g, a, v in broker_artifacts(version))
            (work / "pom.xml").write_text(_POM.format(dependencies=deps))
            out = work / "libs"
            result = subprocess.run(
                [str(mvn), "-B", "-q", "-f", str(work / "pom.xml"),
                 "dependency:copy-dependencies", "-DincludeScope=runtime",
                 f"-DoutputDirectory={out}"],
                capture_output=True, text=True, timeout=1800,
            )
            if result.returncode != 0 or not any(out.glob("kafka_2.13-*.jar")):
                tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
                raise PrerequisiteError(
                    f"Maven could not fetch Kafka {version}:\n" + "\n".join(tail)
                )
            (out / ".complete").write_text(version)
            if target.exists():
                shutil.rmtree(target)
            out.rename(target)
    return target


def _complete(libs: Path) -> bool:
    return (libs / ".complete").is_file()
