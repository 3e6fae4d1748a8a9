"""HTTP mode of the sink against a local platform API (http.server in a thread) that can be told
to answer 503, to time out and to reject a batch with 422."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from creditbus.connectors.backoff import Backoff
from creditbus.connectors.consuming import LoopOptions
from creditbus.connectors.http.sink import run_http_sink
from prometheus_client import REGISTRY

from creditbus.contract.wire import Wire
from creditbus.deadletter import header_dict
from creditbus.topics import sink_deadletter_topic, updates_topic
from tests.bus import consume_all, produce
from tests.conftest import Topics
from tests.platform_data import generate

CLIENT_TIMEOUT_S = 1.0
UPDATE_FIELDS = {"person_key", "masked_id", "name", "birth_date", "sex", "division_code",
                 "groups", "version", "previous_hash", "hash", "event_id", "unit", "updated_at",
                 "change", "hashed_body"}


@dataclass
class Seen:
    key: str
    pairs: list[tuple[str, int]]
    outcome: str  # ok | 503 | timeout | 422


@dataclass
class FakePlatform:
    """What the platform API does next, and what it saw."""

    fail_503: int = 0
    timeouts: int = 0
    reject: tuple[str, int] | None = None  # a (person key, version) it refuses with 422
    seen: list[Seen] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, pairs: list[tuple[str, int]]) -> str:
        with self.lock:
            if self.timeouts:
                self.timeouts -= 1
                return "timeout"
            if self.fail_503:
                self.fail_503 -= 1
                return "503"
        return "422" if self.reject in pairs else "ok"

    def accepted(self) -> set[tuple[str, int]]:
        return {p for s in self.seen if s.outcome == "ok" for p in s.pairs}


def serve(platform: FakePlatform) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            doc = json.loads(body)
            pairs = [(u["person_key"], u["version"]) for u in doc["updates"]]
            outcome = platform.decide(pairs)
            with platform.lock:
                platform.seen.append(Seen(self.headers.get("Idempotency-Key", ""), pairs,
                                          outcome))
                platform.bodies.append(doc)
            if outcome == "timeout":
                time.sleep(CLIENT_TIMEOUT_S * 2.5)
                return
            status, text = {"ok": (200, '{"accepted":true}'),
                            "503": (503, '{"error":"maintenance"}'),
                            "422": (422, '{"error":"unprocessable: person rejected"}')}[outcome]
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, *args: Any) -> None:  # a client that timed out hung up
            pass

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api/credit-archive/batches"


@pytest.fixture()
def platform_api() -> Iterator[tuple[FakePlatform, str]]:
    platform = FakePlatform()
    server, url = serve(platform)
    try:
        yield platform, url
    finally:
        server.shutdown()
        server.server_close()


def expected_key(pairs: list[tuple[str, int]]) -> str:
    text = json.dumps([[k, v] for k, v in pairs], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def committed_equals_end(bootstrap: str, topic: str, group: str) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in parts}
        return all(tp.offset == ends[tp.partition] for tp in committed)
    finally:
        consumer.close()


def test_http_mode_retries_503_and_timeouts_dead_letters_422_and_loses_nothing(
    kafka_broker: Any, topics: Topics, topic_prefix: str,
    platform_api: tuple[FakePlatform, str],
) -> None:
    platform, url = platform_api
    stream = generate(150, 3000, seed=41)
    topic = topics.create("archive.updates", 4)
    topics.create("sink.deadletter", 1)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    victim = stream.updates[1700]
    platform.reject = (victim["person_key"], victim["version"])
    platform.timeouts, platform.fail_503 = 1, 3
    retries = REGISTRY.get_sample_value("creditbus_sink_retries_total") or 0.0
    group = f"http-{uuid.uuid4().hex[:8]}"

    options = LoopOptions(bootstrap=kafka_broker.bootstrap, topic=updates_topic(topic_prefix),
                          group=group, batch_size=200, batch_ms=100, until_idle=3.0,
                          backoff=Backoff(initial=0.05, factor=2.0, cap=0.5))
    code = run_http_sink(options, url, CLIENT_TIMEOUT_S, sink_deadletter_topic(topic_prefix),
                         Wire())
    assert code == 0

    outcomes = [s.outcome for s in platform.seen]
    assert outcomes[:4] == ["timeout", "503", "503", "503"]
    assert outcomes.count("422") >= 1
    for s in platform.seen:  # every batch carries its key; retries re-send the same batch
        assert s.key == expected_key(s.pairs)
        if s.outcome in ("timeout", "503"):
            assert any(o.key == s.key and o.pairs == s.pairs and o.outcome == "ok"
                       for o in platform.seen)
    assert (REGISTRY.get_sample_value("creditbus_sink_retries_total") or 0.0) - retries >= 4
    first = platform.bodies[0]
    assert first["count"] == len(first["updates"])
    assert set(first["updates"][0]) == UPDATE_FIELDS
    assert first["updates"][0]["updated_at"].endswith("+08:00")

    rejected = {p for s in platform.seen if s.outcome == "422" for p in s.pairs}
    letters = consume_all(kafka_broker.bootstrap, sink_deadletter_topic(topic_prefix),
                          expect=sum(len(s.pairs) for s in platform.seen
                                     if s.outcome == "422"), timeout=30)
    dead: set[tuple[str, int]] = set()
    for letter in letters:
        headers = header_dict(letter.headers())
        assert headers["stage"] == "sink"
        assert headers["reason"] == "SINK_HTTP_REJECTED"
        assert headers["http.status"] == "422"
        assert "person rejected" in headers["http.response"]
        assert headers["source.topic"] == topic
        dead.add((headers["person.key"], int(headers["person.version"])))
    assert dead == rejected
    assert platform.reject in dead

    every = {(u["person_key"], u["version"]) for u in stream.updates}
    assert every <= platform.accepted() | dead, "updates lost"
    assert committed_equals_end(kafka_broker.bootstrap, topic, group)


def test_sink_command_posts_to_the_url(
    kafka_broker: Any, topics: Topics, topic_prefix: str, bus_env: dict[str, str],
    platform_api: tuple[FakePlatform, str],
) -> None:
    platform, url = platform_api
    stream = generate(20, 200, seed=43)
    topic = topics.create("archive.updates", 4)
    topics.create("sink.deadletter", 1)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    env = dict(bus_env, CREDITBUS_SINK_METRICS_PORT="0")
    done = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "sink", "--http", url,
                           "--until-idle", "2"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {(u["person_key"], u["version"]) for u in stream.updates} <= platform.accepted()
    assert committed_equals_end(kafka_broker.bootstrap, topic, f"{topic_prefix}-http-sink")
