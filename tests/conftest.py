"""Test harness: one real Kafka broker per run, fresh topics for every test.

The broker is the project's own local broker (`creditbus.devtools.kafka.local`), started in a
temporary home with free ports, so a test run never touches a developer's broker and two runs never
collide. Tests under `tests/integration/` and `tests/faults/` are marked automatically.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditbus.devtools.kafka.local import BrokerState, LocalBroker
from creditbus.kafka.admin import TopicSpec, admin_client, delete_topics, ensure_topics
from creditbus.settings import Settings

TESTS_DIR = Path(__file__).parent

pytest_plugins = ["tests.pg_fixture"]

# The short-lived brokers the tests start (kafka up/down, restarts, a secure broker) run on the
# C1 compiler alone: they start on about 40 % less CPU. The session broker, which carries the
# whole suite's traffic, keeps the JVM's defaults (it is built with no extra options).
os.environ.setdefault("CREDITBUS_KAFKA_JVM_OPTIONS", "-XX:TieredStopAtLevel=1")
# Faust apps that tests build without a datadir keep it under the temporary directory, not in
# the directory the tests run from (read by faust when it is first imported, after this).
FAUST_DATA = Path(tempfile.gettempdir()) / "creditbus-tests-faust"
FAUST_DATA.mkdir(exist_ok=True)
os.environ.setdefault("F_DATADIR", str(FAUST_DATA / "{conf.name}-data"))


LONGEST_FIRST = (
    "faults/test_crashes.py", "integration/test_kafka_cli.py", "integration/test_sink.py",
    "integration/test_security.py", "faults/test_broker_restart.py",
    "integration/test_streams.py", "integration/test_privacy.py",
    "integration/test_publish_import.py", "integration/test_bench.py",
    "faults/test_hostile_input.py", "faults/test_rebalance.py",
)
"""The longest files (half a minute to two minutes each, measured), longest first: `make test`
hands whole files to its processes in collection order (`--no-loadscope-reorder`), so these
overlap with each other and with the short ones instead of ending the run alone."""


def _run_order(item: pytest.Item) -> tuple[int, int]:
    path = Path(str(item.fspath)).relative_to(TESTS_DIR).as_posix()
    if path in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(path))
    folder = path.split("/", 1)[0]
    return ({"faults": 1, "integration": 2}.get(folder, 3), 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if TESTS_DIR / "integration" in path.parents:
            item.add_marker(pytest.mark.integration)
        if TESTS_DIR / "faults" in path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.faults)
    items.sort(key=_run_order)  # stable: the order within each rank stays as collected


_FAULT_LINES: list[str] = []
"""The `faults:` lines of the fault cases (tests/faults/conftest.py), taken from the reports:
with pytest-xdist the cases run in worker processes and only their reports reach this one."""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _FAULT_LINES.extend(str(v) for k, v in report.user_properties if k == "faults")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FAULT_LINES:
        terminalreporter.section("faults")
        for line in sorted(_FAULT_LINES):
            terminalreporter.write_line(line)


def _xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _session_broker(home: Path, heap: str) -> LocalBroker:
    """The session broker in `home`, on the JVM's defaults (not CREDITBUS_KAFKA_JVM_OPTIONS)."""
    settings = Settings.from_env()
    return LocalBroker(home, settings.cache, settings.kafka_version, heap=heap)


def _shared_broker(root: Path) -> LocalBroker:
    """The broker all processes of one `pytest -n` run share, in the run's common temporary
    folder (the workers' own folders are inside it)."""
    return _session_broker(root / "kafka-home", heap="1g")


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerState]:
    """The real broker of the session: started once and stopped (with its data) at the end.

    Under pytest-xdist the worker processes share one broker, started by the first that needs
    it (under a file lock; `LocalBroker.up` returns a running broker) and stopped by the
    controller when the whole run ends: one JVM starts and warms up instead of one per process,
    and every test's topics have a prefix of their own anyway."""
    if _xdist_worker(request.config):
        root = tmp_path_factory.getbasetemp().parent
        with (root / "kafka-home.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = _shared_broker(root).up(quiet=True)
        yield state
        return
    broker = _session_broker(tmp_path_factory.mktemp("kafka-home"), heap="512m")
    state = broker.up(quiet=False)
    try:
        yield state
    finally:
        broker.down(purge=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The xdist controller, once every worker is done: stop the shared broker, if one ran."""
    config = session.config
    if _xdist_worker(config) or not getattr(config.option, "numprocesses", None):
        return
    root = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    if (root / "kafka-home").exists():
        _shared_broker(root).down(purge=True)


@pytest.fixture()
def topic_prefix() -> str:
    """A topic prefix of this test alone: every topic it makes is fresh."""
    return f"t{uuid.uuid4().hex[:10]}"


class Topics:
    """Create topics for one test and delete them afterwards."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.admin = admin_client(bootstrap)
        self.created: list[str] = []

    def create(self, suffix: str, partitions: int = 1) -> str:
        name = f"{self.prefix}.{suffix}"
        ensure_topics(self.admin, [TopicSpec(name, partitions)])
        self.created.append(name)
        return name

    def cleanup(self) -> None:
        delete_topics(self.admin, self.created)


@pytest.fixture()
def topics(kafka_broker: BrokerState, topic_prefix: str) -> Iterator[Topics]:
    made = Topics(kafka_broker.bootstrap, topic_prefix)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture()
def bus_env(kafka_broker: BrokerState, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running the bus's processes against the session broker."""
    env = dict(os.environ)
    env.update(
        CREDITBUS_BOOTSTRAP=kafka_broker.bootstrap,
        CREDITBUS_TOPIC_PREFIX=topic_prefix,
        CREDITBUS_HOME=str(tmp_path / "home"),
        CREDITBUS_PERSON_KEY_SECRET="test-secret",
        CREDITBUS_LOG_LEVEL="INFO",
        # no fixed metrics ports (9101, 9102): tests run side by side (pytest-xdist); a test
        # that scrapes a process gives it a free port of its own
        CREDITBUS_SINK_METRICS_PORT="0",
        CREDITBUS_WORKER_METRICS_PORT="0",
    )
    return env
