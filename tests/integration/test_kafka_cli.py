"""`creditbus kafka up | status | down` on a broker of its own, twice, leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from creditbus.devtools.kafka.local import answers
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


def test_up_status_down_twice_leaves_no_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for _round in range(2):
        up = cli(home, "up")
        assert up.returncode == 0, up.stderr
        state = json.loads((home / "kafka" / "broker.json").read_text())
        assert state["bootstrap"].startswith("127.0.0.1:")
        assert answers(state["bootstrap"])

        status = cli(home, "status")
        assert status.returncode == 0
        assert "running" in status.stdout

        down = cli(home, "down")
        assert down.returncode == 0
        assert "stopped" in down.stdout
        assert not alive(state["pid"])
        assert cli(home, "status").returncode == 3
    assert kafka_pids_of(home) == []
    cli(home, "down", "--purge")


def test_stale_broker_from_a_crashed_run_is_detected_and_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli(home, "up").returncode == 0
    first = json.loads((home / "kafka" / "broker.json").read_text())
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(lambda: not alive(first["pid"]), 30, "the killed broker to be gone", interval=0.05)

    status = cli(home, "status")
    assert status.returncode == 3
    assert "stale" in status.stdout

    up = cli(home, "up")
    assert up.returncode == 0, up.stderr
    second = json.loads((home / "kafka" / "broker.json").read_text())
    assert second["pid"] != first["pid"]
    assert answers(second["bootstrap"])
    assert cli(home, "down", "--purge").returncode == 0
    assert kafka_pids_of(home) == []


def test_hung_broker_is_killed_and_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli(home, "up").returncode == 0
    first = json.loads((home / "kafka" / "broker.json").read_text())
    os.kill(first["pid"], signal.SIGSTOP)  # alive, but answers nothing
    try:
        assert cli(home, "status").returncode == 1
        up = cli(home, "up")
        assert up.returncode == 0, up.stderr
        assert not alive(first["pid"])
    finally:
        try:
            os.kill(first["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert cli(home, "down", "--purge").returncode == 0
    assert kafka_pids_of(home) == []


def test_secure_up_restart_keeps_the_ca_and_refuses_plaintext_data(tmp_path: Path) -> None:
    """`up --secure` makes the CA once and names it; a restart reuses the certificate; a
    plaintext broker's data is not turned secure behind the operator's back."""
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
    plain = tmp_path / "plain"
    try:
        assert cli(plain, "up").returncode == 0
        assert cli(plain, "down").returncode == 0
        refused = cli(plain, "up", "--secure")
        assert refused.returncode == 2 and "plaintext" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        cli(plain, "down", "--purge")
