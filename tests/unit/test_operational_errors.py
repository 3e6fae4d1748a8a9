"""Issue #15.7 for the commands: a wrong setting or a busy port is one line and a non-zero exit,
never a traceback (the unreachable broker: tests/integration/test_operational_errors.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from creditbus.cli.main import main
from creditbus.settings import environment_variables

COMMANDS = (["worker"], ["sink"], ["query"], ["deadletters", "list"],
            ["template", "--unit", "justice"], ["publish", "--unit", "justice", "x.xlsx"])


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for s in environment_variables():
        monkeypatch.delenv(s.env, raising=False)
    monkeypatch.setenv("CREDITBUS_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize(("variable", "value"), [("CREDITBUS_PARTITIONS", "four"),
                                                 ("CREDITBUS_QUERY_PORT", "80000")])
def test_a_wrong_setting_is_one_line_naming_it_and_exit_2(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
    variable: str, value: str,
) -> None:
    clean_env.setenv("CREDITBUS_BOOTSTRAP", "127.0.0.1:9")
    clean_env.setenv(variable, value)
    assert main(argv) == 2
    out = capsys.readouterr()
    lines = (out.out + out.err).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and variable in lines[0], lines


def test_query_service_on_a_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PATH": "/usr/bin:/bin", "CREDITBUS_HOME": str(tmp_path),
               "CREDITBUS_BOOTSTRAP": "127.0.0.1:9", "CREDITBUS_QUERY_PORT": str(port)}
        done = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "query"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert (done.stdout + done.stderr).strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: address already in use"]


def test_every_listener_binds_to_loopback_unless_a_setting_says_otherwise(
    clean_env: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """The query service, the portal, the metrics endpoints and a worker's Faust web server."""
    from creditbus.streams.app import create_app

    from creditbus.settings import Settings

    settings = Settings.from_env()
    hosts = {name: getattr(settings, name) for name in Settings.model_fields
             if name.endswith("_host")}
    assert set(hosts) >= {"query_host", "metrics_host", "portal_host"}
    assert set(hosts.values()) == {"127.0.0.1"}
    clean_env.setenv("CREDITBUS_WORKER_WEB_PORT", "6066")
    clean_env.setenv("CREDITBUS_BOOTSTRAP", "127.0.0.1:9")  # the app needs one; never contacted
    assert create_app(Settings.from_env()).conf.web_bind == "127.0.0.1"
    clean_env.setenv("CREDITBUS_METRICS_HOST", "0.0.0.0")
    assert create_app(Settings.from_env()).conf.web_bind == "0.0.0.0"
