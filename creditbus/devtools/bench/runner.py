"""The benchmark run: a broker of its own, a pre-produced workload, the raw limit, the bus end
to end (backfill), and latency at steady publish rates.

The worker and the sink run as the real `creditbus worker` / `creditbus sink` processes; their
progress is read from their Prometheus endpoints, as an operator would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from confluent_kafka import Consumer, Producer, TopicPartition

from creditbus.catalog import default_catalog
from creditbus.contract.wire import Wire
from creditbus.devtools.bench.floors import consumer_floor, faust_floor, records_written
from creditbus.devtools.bench.steps import measure_steps
from creditbus.devtools.bench.workload import Workload
from creditbus.devtools.kafka.local import ADMIN_USER, BrokerState, LocalBroker, admin_secret_file
from creditbus.devtools.kafka.ports import free_port
from creditbus.kafka.admin import ensure_bus_topics
from creditbus.kafka.clientconf import confluent_config
from creditbus.security.acl import CredentialStore, apply_plan, plan_principals
from creditbus.settings import Settings
from creditbus.topics import (
    archive_changelog_topic,
    by_person_topic,
    deadletter_topic,
    raw_topic,
    updates_topic,
)


@dataclass
class BenchResult:
    date: str
    cores: int
    kafka_version: str
    partitions: int
    workers: int
    events: int
    valid: int
    duplicates: int
    bad: int
    persons: int
    raw_limit_eps: float = 0.0
    end_to_end_eps: float = 0.0
    ratio: float = 0.0
    backfill_seconds: float = 0.0
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    topic_mib: dict[str, float] = field(default_factory=dict)
    state_mib: dict[str, float] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    steps_us: dict[str, float] = field(default_factory=dict)
    """Domain CPU µs per inbound message, step by step, without Kafka (bench/steps.py)."""
    records_written: dict[str, int] = field(default_factory=dict)
    """Kafka records written during the backfill, by kind of topic."""
    floors: dict[str, dict[str, float]] = field(default_factory=dict)
    """Do-nothing consumers on the hot path's topics: records/s, CPU µs per record."""
    notes: list[str] = field(default_factory=list)


STEP_EVENTS = 50_000
"""Inbound messages of the domain-step measurement (enough for stable per-event figures)."""


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def produce_workload(client: dict[str, Any], workload: Workload, events: int) -> float:
    """`client`: the bench's own client settings (`clientconf.confluent_config`)."""
    producer = Producer({**client, "linger.ms": 20,
                         "batch.num.messages": 10000, "queue.buffering.max.messages": 500000,
                         "compression.type": "lz4", "enable.idempotence": True})
    start = time.perf_counter()
    for i, (topic, key, value) in enumerate(workload.messages(events)):
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 100_000 == 0 and i:
            _progress(f"  produced {i:,} / {events:,}")
    producer.flush(300)
    return time.perf_counter() - start


def measure_raw_limit(client: dict[str, Any], topics: list[str], total: int) -> float:
    """A plain consumer that only reads and Avro-decodes the same events."""
    wire = Wire()
    consumer = Consumer({**client, "group.id": f"raw-{time.time_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "fetch.max.bytes": 52428800})
    metadata = consumer.list_topics(timeout=30)
    consumer.assign([TopicPartition(t, p, 0) for t in topics
                     for p in metadata.topics[t].partitions])
    seen = 0
    start = time.perf_counter()
    deadline = start + 600
    while seen < total and time.perf_counter() < deadline:
        for msg in consumer.consume(10000, 1.0):
            if msg.error():
                continue
            seen += 1
            try:
                wire.decode(msg.value() or b"")
            except Exception:  # noqa: BLE001 - bad events are part of the workload
                continue
    elapsed = time.perf_counter() - start
    consumer.close()
    return seen / elapsed


def scrape(port: int) -> dict[str, float]:
    try:
        text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set size."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The live child processes of `pid` (a worker's edge stage; not multiprocessing's
    resource tracker, which only waits)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            if ppid == pid and b"resource_tracker" not in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def dir_mib(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:  # blocks, not the apparent size: Kafka's index files are sparse
                total += (Path(root) / name).stat().st_blocks * 512
            except OSError:
                continue
    return total / 1024 / 1024


def topic_mib(data_dir: Path, prefix: str) -> dict[str, float]:
    """Kafka log size per kind of topic (the raw topics summed, the unit codes dropped)."""
    sizes: dict[str, float] = {}
    for path in sorted(data_dir.iterdir()) if data_dir.is_dir() else []:
        topic = path.name.rpartition("-")[0]
        if not path.is_dir() or not topic:
            continue
        kind = topic.removeprefix(f"{prefix}.")
        if kind.startswith("raw."):
            kind = "raw.*"
        sizes[kind] = sizes.get(kind, 0.0) + dir_mib(path)
    return {kind: round(mib, 1) for kind, mib in sizes.items()}


def histogram_quantiles(before: dict[str, float], after: dict[str, float], name: str,
                        qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> dict[str, float]:
    """Quantiles of the observations made between two scrapes (linear within a bucket)."""
    buckets: list[tuple[float, float]] = []
    for key, value in after.items():
        if key.startswith(f"{name}_bucket{{") and 'le="' in key:
            le = key.split('le="')[1].split('"')[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets.append((bound, value - before.get(key, 0.0)))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    out: dict[str, float] = {"count": total}
    for q in qs:
        rank = q * total
        previous_bound, previous_count = 0.0, 0.0
        for bound, count in buckets:
            if count >= rank and total:
                if bound == float("inf"):
                    out[f"p{int(q * 100)}"] = previous_bound
                else:
                    width = count - previous_count
                    frac = (rank - previous_count) / width if width else 1.0
                    out[f"p{int(q * 100)}"] = previous_bound + (bound - previous_bound) * frac
                break
            previous_bound, previous_count = bound, count
    return out


class BusUnderTest:
    """The worker(s) and the sink as subprocesses, with metrics ports of their own."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int,
                 broker_pid: int | None = None,
                 principals: dict[str, dict[str, str]] | None = None) -> None:
        self.env = env
        self.principals = principals or {}
        """Secure mode: "worker" / "sink" -> the variables of that process's Kafka user."""
        self.broker_pid = broker_pid
        self.workdir = workdir
        self.worker_ports = [free_port() for _ in range(workers)]
        self.sink_port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for i, port in enumerate(self.worker_ports):
            env = dict(self.env, **self.principals.get("worker", {}),
                       CREDITBUS_WORKER_METRICS_PORT=str(port),
                       CREDITBUS_WORKER_WEB_PORT=str(free_port()),
                       CREDITBUS_STATE_DIR=str(self.workdir / f"worker{i}"))
            self.procs[f"worker{i}"] = self._spawn(["worker"], env, f"worker{i}.log")
        env = dict(self.env, **self.principals.get("sink", {}),
                   CREDITBUS_SINK_METRICS_PORT=str(self.sink_port))
        self.procs["sink"] = self._spawn(["sink"], env, "sink.log")

    def _spawn(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        with open(self.workdir / log, "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "creditbus.cli.main", *args], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)

    def applied(self) -> float:
        return scrape(self.sink_port).get("creditbus_sink_updates_applied_total", 0.0)

    def worker_metrics(self) -> dict[str, float]:
        """All workers' samples added up (histogram buckets of one name add across workers)."""
        total: dict[str, float] = {}
        for port in self.worker_ports:
            for name, value in scrape(port).items():
                total[name] = total.get(name, 0.0) + value
        return total

    def pids(self) -> dict[str, int]:
        """Every process of the bus by name: a worker's edge stage is `<worker>-edge`."""
        pids = {}
        for name, proc in self.procs.items():
            pids[name] = proc.pid
            for i, child in enumerate(child_pids(proc.pid)):
                pids[f"{name}-edge" + (f"{i}" if i else "")] = child
        return pids

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each process of the bus, the broker included."""
        used = {name: cpu_seconds(pid) for name, pid in self.pids().items()}
        if self.broker_pid is not None:
            used["broker"] = cpu_seconds(self.broker_pid)
        return used

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.workdir}")

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _client_env(env: dict[str, str], own: Settings) -> dict[str, str]:
    """`env` with the bench's own client settings (its super user on a secure broker)."""
    if not own.kafka_username:
        return env
    return dict(env, CREDITBUS_KAFKA_USERNAME=own.kafka_username,
                CREDITBUS_KAFKA_PASSWORD=own.kafka_password,
                CREDITBUS_KAFKA_CA_FILE=str(own.kafka_ca_file))


def secure_bench_settings(settings: Settings, state: BrokerState, home: Path) -> Settings:
    """The bench's own clients on a secure broker: its super user, its CA."""
    password = admin_secret_file(home).read_text().strip()
    return settings.model_copy(update={
        "bootstrap": state.bootstrap, "kafka_username": ADMIN_USER, "kafka_password": password,
        "kafka_ca_file": Path(state.ca_file)})


def bus_principals(admin_settings: Settings, prefix: str, units: list[str],
                   home: Path) -> dict[str, dict[str, str]]:
    """`creditbus acl apply` for the bench's prefix; the worker's and the sink's variables."""
    from confluent_kafka.admin import AdminClient

    store = CredentialStore.load(home / "kafka" / "credentials.json")
    apply_plan(AdminClient(confluent_config(admin_settings)), plan_principals(prefix, units),
               store, prefix=prefix)
    return {role: {"CREDITBUS_KAFKA_USERNAME": role,
                   "CREDITBUS_KAFKA_PASSWORD": store.users[role],
                   "CREDITBUS_KAFKA_CA_FILE": str(admin_settings.kafka_ca_file)}
            for role in ("worker", "sink")}


def run(settings: Settings, *, events: int, rates: tuple[int, ...], rate_seconds: int,
        workers: int, keep: bool = False, warmup_seconds: int = 10,
        secure: bool = False) -> BenchResult:
    """`secure`: the broker in secure mode (SASL_SSL, ACLs); every client over TLS with a user
    of its own, as in production."""
    workdir = Path(tempfile.mkdtemp(prefix="creditbus-bench-"))
    broker = LocalBroker(workdir / "home", settings.cache, settings.kafka_version, heap="1g",
                         secure=secure)
    _progress(f"Starting a broker of its own in {workdir} ...")
    state = broker.up(quiet=True)
    catalog = default_catalog(settings.catalog_dir)
    prefix = "bench"
    result: BenchResult | None = None
    bus: BusUnderTest | None = None
    own = (secure_bench_settings(settings, state, workdir / "home") if secure else
           settings.model_copy(update={"bootstrap": state.bootstrap, "kafka_username": "",
                                       "kafka_password": "", "kafka_ca_file": None}))
    client = confluent_config(own)
    try:
        units = [u.code for u in catalog.units]
        ensure_bus_topics(own.model_copy(update={"topic_prefix": prefix, "replication": 1}),
                          units=units)
        principals = bus_principals(own, prefix, units, workdir / "home") if secure else {}
        workload = Workload(catalog, prefix, seed=8)
        _progress(f"Pre-producing {events:,} events ...")
        produce_workload(client, workload, events)
        c = workload.counts
        result = BenchResult(
            date=time.strftime("%Y-%m-%d %H:%M"), cores=os.cpu_count() or 0,
            kafka_version=settings.kafka_version, partitions=settings.partitions,
            workers=workers, events=c.messages, valid=c.valid, duplicates=c.duplicates,
            bad=c.bad, persons=c.persons)
        if secure:
            result.notes.append("secure mode: SASL_SSL (SCRAM-SHA-512 over TLS), ACLs; "
                                "the worker and the sink each with a user of its own")

        _progress(f"Domain steps without Kafka ({min(events, STEP_EVENTS):,} events) ...")
        result.steps_us = measure_steps(catalog, min(events, STEP_EVENTS), settings.partitions)

        _progress("Raw limit: a plain consumer reading and decoding the same events ...")
        inbound = [raw_topic(prefix, u) for u in workload.units()]
        result.raw_limit_eps = measure_raw_limit(client, inbound, c.messages)

        _progress("Bus end to end (backfill): inbound topics -> rows committed ...")
        env = dict(os.environ, CREDITBUS_BOOTSTRAP=state.bootstrap,
                   CREDITBUS_TOPIC_PREFIX=prefix, CREDITBUS_HOME=str(workdir / "home"),
                   CREDITBUS_DATABASE_URL=f"sqlite:///{workdir / 'platform.db'}",
                   CREDITBUS_LOG_LEVEL="WARNING")
        bus = BusUnderTest(env, workdir, workers, broker_pid=state.pid, principals=principals)
        cpu_before = bus.cpu_seconds()
        start = time.perf_counter()
        bus.start()
        last_report = start
        while bus.applied() < c.valid:
            bus.check_alive()
            time.sleep(0.5)
            if time.perf_counter() - last_report > 10:
                last_report = time.perf_counter()
                _progress(f"  {bus.applied():,.0f} / {c.valid:,} updates committed "
                          f"({time.perf_counter() - start:.0f} s)")
        elapsed = time.perf_counter() - start
        result.backfill_seconds = elapsed
        result.end_to_end_eps = c.messages / elapsed
        result.ratio = result.end_to_end_eps / result.raw_limit_eps
        result.peak_rss_mib = {name: round(peak_rss_mib(pid), 1)
                               for name, pid in bus.pids().items()}
        result.cpu_seconds = {name: round(used - cpu_before.get(name, 0.0), 1)
                              for name, used in bus.cpu_seconds().items()}
        worker_state = sum(dir_mib(workdir / f"worker{i}") for i in range(workers))
        result.state_mib = {
            "worker_state": round(worker_state, 1),
            "platform_db": round(dir_mib(workdir) - dir_mib(workdir / "home") - worker_state, 1),
            "kafka_logs": round(dir_mib(workdir / "home" / "kafka"), 1),
        }
        result.topic_mib = topic_mib(workdir / "home" / "kafka" / "data", prefix)
        kinds = {"inbound": inbound, "by-person": [by_person_topic(prefix)],
                 "changelog": [archive_changelog_topic(prefix)],
                 "updates": [updates_topic(prefix)], "dead letters": [deadletter_topic(prefix)]}
        written = result.records_written = records_written(client, kinds)

        _progress("Floors: do-nothing consumers on the same topics ...")
        result.floors = {
            "confluent-kafka, inbound": consumer_floor(client, inbound, written["inbound"]),
            "confluent-kafka, by-person": consumer_floor(client, kinds["by-person"],
                                                         written["by-person"]),
            "confluent-kafka, updates": consumer_floor(client, kinds["updates"],
                                                       written["updates"]),
            "Faust agent, by-person": faust_floor(_client_env(env, own),
                                                  by_person_topic(prefix),
                                                  written["by-person"]),
        }

        for rate in rates:
            _progress(f"Latency at {rate:,} events/s for {rate_seconds} s ...")
            result.latency[str(rate)] = measure_latency(client, workload, bus, rate,
                                                        rate_seconds, warmup_seconds)
        return result
    finally:
        if bus is not None:
            bus.stop()
        broker.down(purge=True)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def measure_latency(client: dict[str, Any], workload: Workload, bus: BusUnderTest, rate: int,
                    seconds: int, warmup_seconds: int = 10) -> dict[str, float]:
    """Publish fresh events at a steady rate; quantiles of publication -> platform commit.

    Publishing starts `warmup_seconds` before the measured window (the steady state, not the
    ramp from idle or the tail of a backfill); the window's quantiles are those of every
    commit observed from its start until all its events are committed.
    """
    target = bus.applied()
    producer = Producer({**client, "linger.ms": 1, "enable.idempotence": True})
    stream = workload.fresh_messages()
    warmup_sent = publish_at(producer, stream, rate, warmup_seconds)
    before = scrape(bus.sink_port)
    workers_before = bus.worker_metrics()
    cpu_before = bus.cpu_seconds()
    sent = publish_at(producer, stream, rate, seconds)
    producer.flush(60)
    deadline = time.perf_counter() + 120
    while bus.applied() < target + warmup_sent + sent and time.perf_counter() < deadline:
        time.sleep(0.2)
    after = scrape(bus.sink_port)
    quantiles = histogram_quantiles(before, after, "creditbus_publish_to_commit_seconds")
    to_update = histogram_quantiles(workers_before, bus.worker_metrics(),
                                    "creditbus_publish_to_update_seconds")
    quantiles.update({f"{k}_update": v for k, v in to_update.items() if k != "count"})
    for name, used in bus.cpu_seconds().items():
        quantiles[f"cpu_{name}"] = round(used - cpu_before.get(name, 0.0), 1)
    quantiles["sent"] = sent
    quantiles["achieved_rate"] = round(sent / seconds, 1)
    quantiles["committed"] = bus.applied() - target - warmup_sent
    return quantiles


def publish_at(producer: Producer, stream: Iterator[tuple[str, bytes, bytes]], rate: int,
               seconds: float) -> int:
    """Produce from `stream` at `rate` events/s for `seconds`; returns how many were sent."""
    start = time.perf_counter()
    sent = 0
    while time.perf_counter() - start < seconds:
        due = int((time.perf_counter() - start) * rate)
        while sent < due:
            topic, key, value = next(stream)
            producer.produce(topic, key=key, value=value)
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    return sent


def as_dict(result: BenchResult) -> dict[str, Any]:
    return asdict(result)
