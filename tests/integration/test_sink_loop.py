"""The sink's batch loop (connectors/consuming.py with the platform writer) in-process against
the real broker and a real SQLite file: rebalances between two sinks of one group, a stop in
the middle of a stream, a bounded number of batches. Seconds per case; the sink as a process,
SIGKILLed and SIGTERMed, is tests/integration/test_sink.py and tests/faults/.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from tests.bus import group_assignment, produce, wait_for
from tests.conftest import Topics
from tests.inprocess import SinkThread
from tests.integration.test_sink import (
    PARTITIONS,
    assert_lands_exactly,
    make_topics,
    verify_quietly,
)
from tests.platform_data import generate


def log_rows(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM cb_update_log").fetchone()[0])
    except sqlite3.Error:
        return 0


def stored_offsets(path: Path, group: str) -> dict[int, int]:
    with sqlite3.connect(path, timeout=5) as conn:
        return dict(conn.execute("SELECT partition, next_offset FROM cb_sink_offset "
                                 "WHERE consumer_group = ?", (group,)).fetchall())


def test_a_second_sink_joining_and_the_first_leaving_move_partitions_and_lose_nothing(
    kafka_broker: Any, topics: Topics, topic_prefix: str, tmp_path: Path,
) -> None:
    """Sink A alone, then sink B joins its group (every partition revoked and re-assigned,
    each positioned at the database's offsets), then A leaves (B takes all); both write one
    SQLite file meanwhile (its lock makes them retry). Every update lands exactly once."""
    stream = generate(300, 4000, seed=41)
    topic = make_topics(topics, topic_prefix)
    path = tmp_path / "platform.db"
    url = f"sqlite:///{path}"
    group = f"{topic_prefix}-platform-sink"
    total = len(stream.updates)
    third = len(stream.messages) // 3
    messages = stream.topic_messages(topic)
    first = SinkThread(kafka_broker.bootstrap, topic_prefix, url, group=group, batch_size=100)
    first.start()
    produce(kafka_broker.bootstrap, messages[:third])
    wait_for(lambda: log_rows(path) > 0, 60, "sink A's first batch")
    second = SinkThread(kafka_broker.bootstrap, topic_prefix, url, group=group, batch_size=100)
    second.start()
    produce(kafka_broker.bootstrap, messages[third:2 * third])
    wait_for(lambda: group_assignment(kafka_broker.bootstrap, group) == [2, 2], 60,
             "the group's two members with two partitions each")
    assert first.finish() == 0  # leaves the group: B gets every partition
    rows_when_a_left = log_rows(path)
    produce(kafka_broker.bootstrap, messages[2 * third:])
    wait_for(lambda: log_rows(path) >= total, 60, "every update on the platform")
    wait_for(lambda: sum(stored_offsets(path, group).values()) == len(messages), 30,
             "the stored offsets at the end of every partition")
    assert second.finish() == 0
    assert 0 < rows_when_a_left < total
    assert len(stored_offsets(path, group)) == PARTITIONS
    assert_lands_exactly(url, stream)
    assert verify_quietly(url)[0] == 0


def test_stop_finishes_the_batch_in_hand_and_a_restart_completes_exactly(
    kafka_broker: Any, topics: Topics, topic_prefix: str, tmp_path: Path,
) -> None:
    """A stop in the middle of the stream writes the batch in hand with its offsets and
    leaves the loop with 0; a sink started again in the same group reads on from the
    database's offsets, so the platform ends exactly as the stream says."""
    stream = generate(200, 3000, seed=43)
    topic = make_topics(topics, topic_prefix)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    path = tmp_path / "platform.db"
    url = f"sqlite:///{path}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    sink = SinkThread(kafka_broker.bootstrap, topic_prefix, url, group=group, batch_size=50,
                      batch_ms=20)
    sink.start()
    wait_for(lambda: log_rows(path) > 0, 60, "the first batch", interval=0.01)
    assert sink.finish() == 0
    partial = log_rows(path)
    assert 0 < partial < len(stream.updates)
    assert verify_quietly(url)[0] == 0  # a consistent prefix of every chain
    again = SinkThread(kafka_broker.bootstrap, topic_prefix, url, group=group, until_idle=1.0)
    again.start()
    again.join(120)
    assert again.finish() == 0
    assert_lands_exactly(url, stream)
    assert verify_quietly(url)[0] == 0


def test_max_batches_writes_that_many_batches_and_their_offsets(
    kafka_broker: Any, topics: Topics, topic_prefix: str, tmp_path: Path,
) -> None:
    """`max_batches` (`creditbus sink --max-batches`) stops after exactly that many written
    batches, each a full `batch_size` here, and the database holds their offsets."""
    stream = generate(100, 2000, seed=47)
    topic = make_topics(topics, topic_prefix)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    path = tmp_path / "platform.db"
    group = f"g-{uuid.uuid4().hex[:8]}"
    sink = SinkThread(kafka_broker.bootstrap, topic_prefix, f"sqlite:///{path}", group=group,
                      batch_size=100, batch_ms=5000, max_batches=3)
    started = time.monotonic()
    sink.start()
    sink.join(60)
    assert sink.finish() == 0
    assert time.monotonic() - started < 30
    assert sum(stored_offsets(path, group).values()) == 300


def test_until_idle_does_not_count_the_time_a_batch_spent_retrying(
    kafka_broker: Any, topics: Topics, topic_prefix: str, tmp_path: Path,
) -> None:
    """The database is locked for longer than `until_idle` while a batch waits to be written:
    once it is written, the loop reads on instead of stopping as idle (it stopped with most
    of the stream unwritten, seen in a full run with a PostgreSQL outage)."""
    stream = generate(200, 3000, seed=49)
    topic = make_topics(topics, topic_prefix)
    produce(kafka_broker.bootstrap, stream.topic_messages(topic))
    path = tmp_path / "platform.db"
    url = f"sqlite:///{path}"
    sink = SinkThread(kafka_broker.bootstrap, topic_prefix, url, batch_size=100,
                      until_idle=1.0)
    sink.start()
    wait_for(lambda: log_rows(path) > 0, 60, "the first batch", interval=0.01)
    with sqlite3.connect(path, isolation_level=None, timeout=30) as lock:
        lock.execute("BEGIN EXCLUSIVE")
        time.sleep(3.0)  # the fault: longer than until_idle
        lock.execute("COMMIT")
    sink.join(120)
    assert sink.finish() == 0
    assert_lands_exactly(url, stream)
