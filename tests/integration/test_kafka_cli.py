"""`creditbus kafka up | status | down` on brokers of their own, leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from creditbus.devtools.kafka.local import LocalBroker, answers
from creditbus.devtools.kafka.toolchain import find_java
from creditbus.settings import Settings
from tests.bus import wait_for


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CREDITBUS_HOME=str(home))
    env.pop("CREDITBUS_BOOTSTRAP", None)
    return subprocess.run(
        [sys.executable, "-m", "creditbus.cli.main", "kafka", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def kafka_pids_of(home: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"kafka.Kafka" in cmd and str(home).encode() in cmd:
                pids.append(int(proc.name))
    return pids


def state_of(home: Path) -> dict[str, object]:
    return json.loads((home / "kafka" / "broker.json").read_text())


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_up_down_restart_then_a_stale_and_a_hung_broker_are_replaced(tmp_path: Path) -> None:
    """One broker home through its life: up, status, down; up again (mapping the class
    archive the clean stop left); SIGKILLed (stale) and SIGSTOPped (hung), each replaced by
    `up`; its plaintext data refused as secure; down --purge leaves no process."""
    home = tmp_path / "home"
    up = cli(home, "up")
    assert up.returncode == 0, up.stderr
    first = state_of(home)
    assert str(first["bootstrap"]).startswith("127.0.0.1:")
    assert answers(str(first["bootstrap"]))
    status = cli(home, "status")
    assert status.returncode == 0 and "running" in status.stdout
    down = cli(home, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not alive(int(first["pid"]))
    assert cli(home, "status").returncode == 3

    # restarted: after a clean stop the next start maps the classes the broker loaded
    assert cli(home, "up").returncode == 0
    second = state_of(home)
    assert second["bootstrap"] == first["bootstrap"] and answers(str(second["bootstrap"]))
    settings = Settings.from_env()
    archive = LocalBroker(home, settings.cache, settings.kafka_version).class_archive(find_java())
    if archive is not None:  # Java 13 or newer
        assert archive.is_file()
        assert f"-XX:SharedArchiveFile={archive}" in cmdline(int(second["pid"]))

    # stale: the process of the recorded broker is gone
    os.kill(int(second["pid"]), signal.SIGKILL)
    wait_for(lambda: not alive(int(second["pid"])), 30, "the killed broker to be gone",
             interval=0.05)
    status = cli(home, "status")
    assert status.returncode == 3 and "stale" in status.stdout
    up = cli(home, "up")
    assert up.returncode == 0, up.stderr
    third = state_of(home)
    assert third["pid"] != second["pid"] and answers(str(third["bootstrap"]))

    # hung: alive, but answers nothing
    os.kill(int(third["pid"]), signal.SIGSTOP)
    try:
        assert cli(home, "status").returncode == 1
        up = cli(home, "up")
        assert up.returncode == 0, up.stderr
        assert not alive(int(third["pid"]))
    finally:
        try:
            os.kill(int(third["pid"]), signal.SIGKILL)
        except ProcessLookupError:
            pass

    # plaintext data is not turned secure behind the operator's back
    assert cli(home, "down").returncode == 0
    refused = cli(home, "up", "--secure")
    assert refused.returncode == 2 and "plaintext" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert cli(home, "down", "--purge").returncode == 0
    assert kafka_pids_of(home) == []


def test_secure_up_and_restart_keep_the_ca(tmp_path: Path) -> None:
    """`up --secure` makes the CA once and names it; a restart reuses the certificate."""
    home = tmp_path / "home"
    try:
        up = cli(home, "up", "--secure")
        assert up.returncode == 0, up.stderr
        ca = home / "kafka" / "tls" / "ca.pem"
        assert str(ca) in up.stdout and "TLS" in up.stdout
        state = json.loads((home / "kafka" / "broker.json").read_text())
        assert state["listener"].startswith("SASL_SSL://") and state["ca_file"] == str(ca)
        keystore = (home / "kafka" / "tls" / "broker.keystore.pem").read_bytes()
        assert cli(home, "down").returncode == 0
        again = cli(home, "up")  # secure data starts secure, with the same certificate
        assert again.returncode == 0, again.stderr
        assert (home / "kafka" / "tls" / "broker.keystore.pem").read_bytes() == keystore
        status = cli(home, "status")
        assert status.returncode == 0 and "secure" in status.stdout
    finally:
        cli(home, "down", "--purge")
    assert kafka_pids_of(home) == []
