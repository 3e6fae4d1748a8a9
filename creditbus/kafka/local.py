"""A single-node Apache Kafka broker in KRaft mode on 127.0.0.1, run from Maven Central jars.

Layout under `<home>/kafka/`: `server.properties`, `data/` (the log dirs), `broker.log`, and
`broker.json` (pid, ports, bootstrap) which the other commands read to find the broker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from creditbus.kafka.jars import ensure_broker_jars
from creditbus.kafka.ports import free_port, port_is_free
from creditbus.kafka.toolchain import PrerequisiteError, find_java
from creditbus.settings import broker_state_file

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class BrokerError(RuntimeError):
    """The local broker could not be started or stopped."""


@dataclass(frozen=True)
class BrokerState:
    pid: int
    port: int
    controller_port: int
    bootstrap: str
    version: str
    config: str
    started_at: float


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    answering: bool
    state: BrokerState | None
    note: str


class LocalBroker:
    """Manage one local broker whose files live under `home/kafka`."""

    def __init__(self, home: Path, cache: Path, version: str, heap: str = "512m") -> None:
        self.dir = home / "kafka"
        self.cache = cache
        self.version = version
        self.heap = heap
        self.state_file = broker_state_file(home)
        self.config = self.dir / "server.properties"
        self.data = self.dir / "data"
        self.log = self.dir / "broker.log"

    # -- public commands -------------------------------------------------------------------

    def up(self, *, quiet: bool = False) -> BrokerState:
        """Start the broker (or return the running one) and wait until it answers."""
        java = find_java()
        status = self.status()
        if status.running and status.answering and status.state:
            return status.state
        if status.state is not None:
            self._clean_stale(status)
        libs = ensure_broker_jars(self.cache, self.version, quiet=quiet)
        last_error: Exception | None = None
        for _attempt in range(3):  # a port taken between choosing and binding: choose again
            state = self._start(java, libs)
            try:
                wait_until_answering(state.bootstrap, START_TIMEOUT_S, pid=state.pid)
            except BrokerError as exc:
                last_error = exc
                self._kill(state.pid)
                if not self._port_race(exc):
                    break
                continue
            self._write_state(state)
            return state
        raise BrokerError(f"{last_error}\n{self._log_tail()}")

    def down(self, *, purge: bool = False) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after a timeout); True if one ran."""
        state = self._read_state()
        stopped = False
        if state and _is_our_broker(state.pid, state.config):
            os.kill(state.pid, signal.SIGTERM)
            if not _wait_exit(state.pid, STOP_TIMEOUT_S):
                self._kill(state.pid)
            stopped = True
        self.state_file.unlink(missing_ok=True)
        if purge and self.dir.exists():
            shutil.rmtree(self.dir)
        return stopped

    def status(self) -> BrokerStatus:
        state = self._read_state()
        if state is None:
            return BrokerStatus(False, False, None, "no local broker recorded")
        if not _is_our_broker(state.pid, state.config):
            return BrokerStatus(False, False, state, f"stale: process {state.pid} is gone")
        answering = answers(state.bootstrap, timeout=5.0)
        note = "running" if answering else "process alive but not answering"
        return BrokerStatus(True, answering, state, note)

    # -- internals ---------------------------------------------------------------------------

    def _start(self, java: Path, libs: Path) -> BrokerState:
        previous = self._read_state()
        port, cport = self._choose_ports(previous)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(_server_properties(port, cport, self.data))
        classpath = f"{libs}/*"
        logging_opt = self._logging_option()
        if not (self.data / "meta.properties").exists():
            self._format(java, classpath, logging_opt)
        cmd = [
            str(java), f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.dir}", logging_opt, "-cp", classpath,
            "kafka.Kafka", str(self.config),
        ]
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return BrokerState(
            pid=proc.pid, port=port, controller_port=cport, bootstrap=f"127.0.0.1:{port}",
            version=self.version, config=str(self.config), started_at=time.time(),
        )

    def _logging_option(self) -> str:
        """Kafka 3.x logs through reload4j (log4j 1 syntax), 4.x through log4j2."""
        if int(self.version.split(".")[0]) >= 4:
            path = self.dir / "log4j2.properties"
            path.write_text(_LOG4J2)
            return f"-Dlog4j2.configurationFile={path}"
        path = self.dir / "log4j.properties"
        path.write_text(_LOG4J)
        return f"-Dlog4j.configuration=file:{path}"

    def _choose_ports(self, previous: BrokerState | None) -> tuple[int, int]:
        if previous and port_is_free(previous.port) and port_is_free(previous.controller_port):
            return previous.port, previous.controller_port
        port = free_port()
        cport = free_port()
        while cport == port:
            cport = free_port()
        return port, cport

    def _format(self, java: Path, classpath: str, logging_opt: str) -> None:
        base = [str(java), logging_opt, "-cp", classpath, "kafka.tools.StorageTool"]
        cluster_id = subprocess.run(
            [*base, "random-uuid"], capture_output=True, text=True, check=True, timeout=120
        ).stdout.strip().splitlines()[-1]
        result = subprocess.run(
            [*base, "format", "-t", cluster_id, "-c", str(self.config)],
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise BrokerError(f"formatting the broker storage failed:\n{result.stderr[-2000:]}")

    def _clean_stale(self, status: BrokerStatus) -> None:
        """A broker left by a crashed run: kill it if it hangs, then forget it."""
        state = status.state
        assert state is not None
        if status.running:
            self._kill(state.pid)
        self.state_file.unlink(missing_ok=True)

    def _kill(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        _wait_exit(pid, 10.0)

    def _port_race(self, exc: Exception) -> bool:
        return "Address already in use" in self._log_tail() or "bind" in str(exc).lower()

    def _write_state(self, state: BrokerState) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_file)

    def _read_state(self) -> BrokerState | None:
        try:
            return BrokerState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "broker log (last lines):\n" + "\n".join(text)


def answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when a broker at `bootstrap` returns cluster metadata."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                         "logger": _SilentLogger()})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not answering yet"
        return False
    return bool(metadata.brokers)


def wait_until_answering(bootstrap: str, timeout: float, pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise BrokerError("the broker process exited during start-up")
        if answers(bootstrap, timeout=2.0):
            return
        time.sleep(0.5)
    raise BrokerError(f"the broker did not answer at {bootstrap} within {timeout:.0f} s")


class _SilentLogger:
    """librdkafka logs connection refusals loudly while the broker starts; keep them quiet."""

    def log(self, *args: object, **kwargs: object) -> None:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _is_our_broker(pid: int, config: str) -> bool:
    """The pid is alive and is a Kafka JVM started with our config (pids get reused)."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and config.encode() in cmdline


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return True
        except ChildProcessError:
            pass
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


def _server_properties(port: int, cport: int, data: Path) -> str:
    return f"""# written by creditbus: single-node KRaft broker on loopback
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
log.segment.bytes=104857600
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
"""


_LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""

_LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
"""


__all__ = ["BrokerError", "BrokerState", "BrokerStatus", "LocalBroker", "PrerequisiteError",
           "answers", "wait_until_answering"]
