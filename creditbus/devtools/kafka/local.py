"""A single-node Apache Kafka broker in KRaft mode on 127.0.0.1, run from Maven Central jars.

Layout under `<home>/kafka/`: `server.properties`, `data/` (the log dirs), `broker.log`, and
`broker.json` (pid, ports, bootstrap, mode) which the other commands read to find the broker.

Two modes: plaintext (the default, for development and tests) and secure (`secure=True`):
SASL/SCRAM-SHA-512 over TLS (`SASL_SSL`) on the client listener, with a certificate from a local
CA under `<home>/kafka/tls/` (`creditbus.kafka.tls`); the controller listener over TLS with
client certificates; the StandardAuthorizer with deny-by-default; and a super user `admin`
whose generated password is kept in `<home>/kafka/admin.secret` (0600).
The mode is fixed when the storage is formatted: a secure broker's data is never started
in plaintext mode (that would switch its ACLs off silently).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from creditbus.devtools.kafka.jars import ensure_broker_jars
from creditbus.devtools.kafka.ports import free_port, port_is_free
from creditbus.devtools.kafka.toolchain import PrerequisiteError, find_java, java_major
from creditbus.errors import ConfigError
from creditbus.kafka.tls import CA_CERT, LOCAL_NAMES, BrokerTls, ensure_broker_certificate
from creditbus.settings import broker_state_file

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
ADMIN_USER = "admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SECURE_PROTOCOL = "SASL_SSL"
BROKER_CERT_NAME = "broker"
"""The common name of the local broker's certificate: `User:CN=broker` on the controller
listener, where the broker authenticates with that certificate."""


CLASS_ARCHIVE_MIN_JAVA = 13
"""From Java 13 a JVM can dump the classes it loaded when it exits (`-XX:ArchiveClassesAtExit`)
and the next one maps them instead of loading them again (`-XX:SharedArchiveFile`): a broker
then starts on about half the CPU (4.8 s against 2.6 s measured here, Java 17)."""


class BrokerError(ConfigError, RuntimeError):
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
    secure: bool = False
    listener: str = ""
    """The client listener, e.g. `SASL_SSL://127.0.0.1:9092`."""
    ca_file: str = ""
    """Secure mode: the CA certificate clients verify the broker with."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    answering: bool
    state: BrokerState | None
    note: str


class LocalBroker:
    """Manage one local broker whose files live under `home/kafka`."""

    def __init__(
        self, home: Path, cache: Path, version: str, heap: str = "512m", *, secure: bool = False,
        jvm_options: str = "",
    ) -> None:
        self.dir = home / "kafka"
        self.jvm_options = jvm_options.split()
        self.cache = cache
        self.version = version
        self.heap = heap
        self.secure = secure
        self.state_file = broker_state_file(home)
        self.config = self.dir / "server.properties"
        self.data = self.dir / "data"
        self.log = self.dir / "broker.log"
        self.admin_secret = admin_secret_file(home)
        self.tls_dir = tls_dir(home)

    # -- public commands -------------------------------------------------------------------

    def up(self, *, quiet: bool = False) -> BrokerState:
        """Start the broker (or return the running one) and wait until it answers."""
        java = find_java()
        status = self.status()
        if status.running and status.answering and status.state:
            if self.secure and not status.state.secure:
                raise BrokerError(
                    "a plaintext local broker is running; stop it and delete its data "
                    "(`creditbus kafka down --purge`) before starting it in secure mode"
                )
            return status.state
        if status.state is not None:
            self._clean_stale(status)
        secure = self._secure_mode()
        libs = ensure_broker_jars(self.cache, self.version, quiet=quiet)
        last_error: Exception | None = None
        for _attempt in range(3):  # a port taken between choosing and binding: choose again
            state = self._start(java, libs, secure)
            try:
                wait_until_answering(state.bootstrap, START_TIMEOUT_S, pid=state.pid,
                                     config=self._client_auth(secure))
            except BrokerError as exc:
                last_error = exc
                self._kill(state.pid)
                if not self._port_race(exc):
                    break
                continue
            self._write_state(state)
            return state
        shared = self.class_archive(java)
        if shared is not None:  # should it be the cause, the next clean stop makes a new one
            shared.unlink(missing_ok=True)
        raise BrokerError(f"{last_error}\n{self._log_tail()}")

    def down(self, *, purge: bool = False) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after a timeout); True if one ran."""
        state = self._read_state()
        stopped = False
        if state and _is_our_broker(state.pid, state.config):
            os.kill(state.pid, signal.SIGTERM)
            if _wait_exit(state.pid, STOP_TIMEOUT_S):
                self._keep_class_archive()
            else:
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
        answering = answers(state.bootstrap, timeout=5.0, config=self._client_auth(state.secure))
        note = "running" if answering else "process alive but not answering"
        return BrokerStatus(True, answering, state, note)

    def admin_config(self) -> dict[str, str]:
        """Client settings (without bootstrap) of the secure broker's super user; {} in
        plaintext mode."""
        state = self._read_state()
        return self._client_auth(bool(state and state.secure))

    # -- internals ---------------------------------------------------------------------------

    def _formatted(self) -> bool:
        return (self.data / "meta.properties").exists()

    def _secure_mode(self) -> bool:
        """The mode to start in: the requested one, unless the storage says otherwise."""
        if not self._formatted():
            return self.secure
        formatted_secure = self.admin_secret.is_file()
        if self.secure and not formatted_secure:
            raise BrokerError(
                f"the broker data in {self.data} was formatted in plaintext mode; delete it "
                "(`creditbus kafka down --purge`) to start the broker in secure mode"
            )
        return formatted_secure  # never start a secure broker's data without its authorizer

    def _admin_password(self, *, create: bool) -> str:
        if self.admin_secret.is_file():
            return self.admin_secret.read_text().strip()
        if not create:
            raise BrokerError(f"{self.admin_secret} is missing: the admin password is lost")
        # Hex only: the password goes into --add-scram's [name=...,password=...] syntax and
        # into a JAAS line, where ',', ']', '=' and quotes would need escaping.
        password = secrets.token_hex(24)
        _write_private(self.admin_secret, password + "\n")
        return password

    def _client_auth(self, secure: bool) -> dict[str, str]:
        if not secure:
            return {}
        return _admin_client_config(self.tls_dir / CA_CERT, self._admin_password(create=False))

    def _start(self, java: Path, libs: Path, secure: bool = False) -> BrokerState:
        previous = self._read_state()
        port, cport = self._choose_ports(previous)
        self.dir.mkdir(parents=True, exist_ok=True)
        password = self._admin_password(create=not self._formatted()) if secure else None
        tls = ensure_broker_certificate(self.tls_dir, BROKER_CERT_NAME, LOCAL_NAMES) \
            if secure else None
        # The secure config holds the admin password (the JAAS line): owner-only.
        _write_private(self.config, _server_properties(port, cport, self.data, password, tls))
        classpath = f"{libs}/*"
        logging_opt = self._logging_option()
        if not self._formatted():
            self._format(java, classpath, logging_opt, password)
        cmd = [
            str(java), f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
            *self._class_archive_options(java), *self.jvm_options,
            f"-Dkafka.logs.dir={self.dir}", logging_opt, "-cp", classpath,
            "kafka.Kafka", str(self.config),
        ]
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        listener = SECURE_PROTOCOL if secure else "PLAINTEXT"
        return BrokerState(
            pid=proc.pid, port=port, controller_port=cport, bootstrap=f"127.0.0.1:{port}",
            version=self.version, config=str(self.config), started_at=time.time(),
            secure=secure, listener=f"{listener}://127.0.0.1:{port}",
            ca_file=str(tls.ca_file) if tls else "",
        )

    def class_archive(self, java: Path) -> Path | None:
        """The shared class archive of this Kafka and Java, in the cache (None before
        `CLASS_ARCHIVE_MIN_JAVA`); it may not exist yet."""
        major = java_major(java)
        if major is None or major < CLASS_ARCHIVE_MIN_JAVA:
            return None
        return self.cache / f"kafka-{self.version}-java{major}.jsa"

    def _class_archive_options(self, java: Path) -> list[str]:
        """Map the shared class archive when there is one, else dump one when this broker
        stops (into its own folder: `_keep_class_archive` shares it after a clean exit)."""
        shared = self.class_archive(java)
        if shared is None:
            return []
        if shared.exists():
            return [f"-XX:SharedArchiveFile={shared}"]
        return [f"-XX:ArchiveClassesAtExit={self.dir / shared.name}"]

    def _keep_class_archive(self) -> None:
        """After a clean stop, the archive the broker dumped becomes the shared one: copied
        aside and renamed, so a broker starting meanwhile never maps half a file. (A killed
        broker's half-written dump is never kept: this runs only after a clean exit.)"""
        for dumped in self.dir.glob("*.jsa"):
            shared = self.cache / dumped.name
            if not shared.exists():
                partial = shared.with_name(f"{shared.name}.{os.getpid()}.partial")
                shutil.copyfile(dumped, partial)
                os.replace(partial, shared)
            dumped.unlink()

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
        """The ports of the last run when free (so clients survive a restart), else new ones."""
        last = self._last_ports() or (
            (previous.port, previous.controller_port) if previous else None)
        if last and port_is_free(last[0]) and port_is_free(last[1]):
            return last
        port = free_port()
        cport = free_port()
        while cport == port:
            cport = free_port()
        return port, cport

    def _format(
        self, java: Path, classpath: str, logging_opt: str, admin_password: str | None = None
    ) -> None:
        # a tool that runs for a second: the C1 compiler alone starts it on far less CPU
        base = [str(java), "-XX:TieredStopAtLevel=1", logging_opt, "-cp", classpath,
                "kafka.tools.StorageTool"]
        command = [*base, "format", "-t", new_cluster_id(), "-c", str(self.config)]
        if admin_password is not None:
            # The inter-broker SCRAM user must exist before the broker starts (KRaft keeps SCRAM
            # credentials in the metadata log). StorageTool takes it only on its command line;
            # it runs for a second or two, on a loopback-only development machine.
            command += ["--add-scram",
                        f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={admin_password}]"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
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

    def _last_ports(self) -> tuple[int, int] | None:
        try:
            data = json.loads((self.dir / "last-ports.json").read_text())
            return int(data["port"]), int(data["controller_port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_state(self, state: BrokerState) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        (self.dir / "last-ports.json").write_text(json.dumps(
            {"port": state.port, "controller_port": state.controller_port}))
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


def admin_secret_file(home: Path) -> Path:
    """The local secure broker's admin password (0600)."""
    return home / "kafka" / "admin.secret"


def tls_dir(home: Path) -> Path:
    """The local secure broker's CA, certificate and key (0700)."""
    return home / "kafka" / "tls"


def local_admin_config(home: Path, bootstrap: str) -> dict[str, str]:
    """Super-user client settings (TLS and SASL) of the local secure broker if it serves
    `bootstrap`, else {}."""
    try:
        state = BrokerState(**json.loads(broker_state_file(home).read_text()))
        password = admin_secret_file(home).read_text().strip()
    except (OSError, ValueError, TypeError):
        return {}
    if not state.secure or state.bootstrap != bootstrap or not password:
        return {}
    return _admin_client_config(Path(state.ca_file) if state.ca_file else
                                tls_dir(home) / CA_CERT, password)


def _admin_client_config(ca_file: Path, password: str) -> dict[str, str]:
    return {"security.protocol": SECURE_PROTOCOL, "ssl.ca.location": str(ca_file),
            "ssl.endpoint.identification.algorithm": "https",
            "sasl.mechanism": SCRAM_MECHANISM, "sasl.username": ADMIN_USER,
            "sasl.password": password}


def answers(bootstrap: str, timeout: float = 5.0, config: dict[str, str] | None = None) -> bool:
    """True when a broker at `bootstrap` returns cluster metadata (`config`: client auth)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                         "logger": _SilentLogger(), **(config or {})})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not answering yet"
        return False
    return bool(metadata.brokers)


def wait_until_answering(
    bootstrap: str, timeout: float, pid: int | None = None,
    config: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise BrokerError("the broker process exited during start-up")
        if answers(bootstrap, timeout=2.0, config=config):
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


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (created 0600, then renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def new_cluster_id() -> str:
    """A KRaft cluster id as `kafka-storage.sh random-uuid` makes it (a random UUID, URL-safe
    base64 without padding), without starting a JVM for it. Like Kafka's `Uuid.randomUuid`, never
    one that starts with "-": the storage tool would read it as an option (one id in 64 did)."""
    while True:
        made = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not made.startswith("-"):
            return made


def _server_properties(
    port: int, cport: int, data: Path, admin_password: str | None = None,
    tls: BrokerTls | None = None,
) -> str:
    if admin_password is None:
        return _PLAINTEXT_LISTENERS.format(port=port, cport=cport) + _common_properties(data)
    if tls is None:
        raise BrokerError("secure mode needs the broker's TLS keystore")
    return (_SECURE_LISTENERS.format(port=port, cport=cport, user=ADMIN_USER,
                                     password=admin_password, mechanism=SCRAM_MECHANISM,
                                     keystore=tls.keystore, truststore=tls.ca_file,
                                     broker=BROKER_CERT_NAME)
            + _common_properties(data))


_PLAINTEXT_LISTENERS = """# written by creditbus: single-node KRaft broker on loopback
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
"""

# Secure mode. Clients (and the broker itself, inter-broker) authenticate with SCRAM-SHA-512
# over TLS on the SASL_SSL listener; without an ACL nothing is allowed. KRaft controllers cannot
# use SCRAM (its credentials live in the metadata log the controller serves), so the controller
# listener is TLS with a required client certificate: the broker presents its own certificate
# (extended key usage clientAuth) and is User:CN=broker there, a super user (registration and
# heartbeats need CLUSTER_ACTION). No anonymous principal exists. Every TLS peer is verified
# against the local CA, with hostname verification (the certificate names 127.0.0.1).
_SECURE_LISTENERS = """# written by creditbus: single-node KRaft broker on loopback, secure mode
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=SASL_SSL://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={truststore}
ssl.endpoint.identification.algorithm=https
ssl.enabled.protocols=TLSv1.3,TLSv1.2
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=DEFAULT
sasl.enabled.mechanisms={mechanism}
sasl.mechanism.inter.broker.protocol={mechanism}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\\
  org.apache.kafka.common.security.scram.ScramLoginModule required \\
  username="{user}" password="{password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:{user};User:CN={broker}
"""


def _common_properties(data: Path) -> str:
    return f"""log.dirs={data}
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


__all__ = ["ADMIN_USER", "SCRAM_MECHANISM", "SECURE_PROTOCOL", "BrokerError", "BrokerState",
           "BrokerStatus", "LocalBroker", "PrerequisiteError", "admin_secret_file", "answers",
           "local_admin_config", "tls_dir", "wait_until_answering"]
