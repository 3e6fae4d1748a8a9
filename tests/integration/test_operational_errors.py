"""Issue #15.7: a process whose broker does not answer says so in one line and exits 3; no
traceback, no raw librdkafka line. No broker at all here: a free port nobody listens on. The
commands run side by side, so the case costs one client timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from creditbus.devtools.kafka.ports import free_port

COMMANDS = (["worker"], ["sink"], ["topics", "ensure"], ["deadletters", "list"])


def test_an_unreachable_broker_is_one_line_and_exit_3(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    env = {"PATH": "/usr/bin:/bin", "CREDITBUS_HOME": str(tmp_path),
           "CREDITBUS_BOOTSTRAP": bootstrap, "CREDITBUS_WORKER_METRICS_PORT": str(free_port()),
           "CREDITBUS_SINK_METRICS_PORT": str(free_port())}
    running = [subprocess.Popen([sys.executable, "-m", "creditbus.cli.main", *argv], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for argv in COMMANDS]
    for argv, proc in zip(COMMANDS, running, strict=True):
        out, _ = proc.communicate(timeout=180)
        lines = out.strip().splitlines()
        assert proc.returncode == 3, (argv, out[-2000:])
        assert len(lines) == 1, (argv, lines[:5])
        assert lines[0].startswith(f"error: cannot reach Kafka at {bootstrap}: "), (argv, lines)
