"""Replay: re-publish a dead letter's original message to the topic it failed on, once.

The worker's dead letters (stages ingest and archive) keep identity numbers masked, so their
bytes cannot be published again; the original is read back from the inbound topic at the
source position the headers give (and, for the edge stage, checked to be the same message:
masking it must give the dead letter's bytes). A sink's dead letter keeps the original update
itself and goes back to the updates topic.

At most once per dead letter: a compacted record keyed by the dead letter's position on
`<prefix>.deadletter.replays` is written after the replay is acknowledged, and checked before
re-publishing. A crash between the two can publish a message twice; the archive drops the
second as an exact duplicate (same event id) and the sink applies a version once, so the effect
stays once. The replayed message carries a header naming the dead letter it came from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer

from creditbus.deadletter import mask_ids_in_bytes
from creditbus.deadletters.reader import SourceGone, read_at, read_topic
from creditbus.deadletters.records import DeadLetter
from creditbus.errors import DeliveryError
from creditbus.kafka.admin import ensure_bus_topics
from creditbus.kafka.clientconf import confluent_config
from creditbus.settings import Settings
from creditbus.topics import deadletter_replays_topic, unit_of_raw_topic, updates_topic

REPLAY_OF_HEADER = "creditbus.replay.of"
"""Header of a replayed message: the full id (`<topic>:<partition>:<offset>`) of its dead
letter."""
REPLAY_REASON_HEADER = "creditbus.replay.reason"
FLUSH_TIMEOUT_S = 30.0

REPLAYED = "replayed"
ALREADY = "already-replayed"
WOULD = "would-replay"
REFUSED = "refused"


@dataclass(frozen=True)
class ReplayOutcome:
    dead_letter: str
    """The full id of the dead letter."""
    outcome: str
    """replayed | already-replayed | would-replay (dry run) | refused."""
    target: str | None = None
    """Where the message went (`topic:partition:offset`), or the planned topic."""
    detail: str = ""


@dataclass(frozen=True)
class _Original:
    topic: str
    key: bytes | None
    value: bytes


class ReplayError(DeliveryError):
    """The broker did not acknowledge a replay or its record (nothing is marked replayed)."""


def replayed(client_config: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """The replay records by dead-letter full id (the latest record of each key)."""
    done: dict[str, dict[str, Any]] = {}
    for msg in read_topic(client_config, deadletter_replays_topic(prefix)):
        key = (msg.key() or b"").decode(errors="replace")
        try:
            done[key] = json.loads(msg.value() or b"{}")
        except ValueError:
            done[key] = {}
    return done


class Replayer:
    """Replays dead letters of one bus (topic prefix) with one idempotent producer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client_config = confluent_config(settings)
        self.prefix = settings.topic_prefix

    def replay(self, letters: Iterable[DeadLetter], *, dry_run: bool = False
               ) -> list[ReplayOutcome]:
        done = replayed(self.client_config, self.prefix)
        outcomes: list[ReplayOutcome] = []
        planned: list[tuple[DeadLetter, _Original]] = []
        for letter in letters:
            if letter.full_id in done:
                outcomes.append(ReplayOutcome(letter.full_id, ALREADY,
                                              done[letter.full_id].get("replayed_to")))
                continue
            try:
                original = self._original(letter)
            except (SourceGone, ValueError) as exc:
                outcomes.append(ReplayOutcome(letter.full_id, REFUSED, detail=str(exc)))
                continue
            if dry_run:
                outcomes.append(ReplayOutcome(letter.full_id, WOULD, original.topic))
            else:
                planned.append((letter, original))
        if planned:
            outcomes += self._publish(planned)
        return outcomes

    def _original(self, letter: DeadLetter) -> _Original:
        source = letter.source
        if source is None:
            raise ValueError("the dead letter names no source position")
        topic, partition, offset = source
        if letter.stage == "sink":
            if topic != updates_topic(self.prefix):
                raise ValueError(f"a sink dead letter from {topic}, not the updates topic")
            return _Original(topic, letter.key, letter.value)
        if unit_of_raw_topic(self.prefix, topic) is None:
            raise ValueError(f"source {topic} is not an inbound topic of this bus")
        msg = read_at(self.client_config, topic, partition, offset)
        value = msg.value() or b""
        if letter.stage == "ingest" and mask_ids_in_bytes(value) != letter.value:
            raise ValueError(f"the message at {topic}:{partition}:{offset} is not the one "
                             "that was dead-lettered (the topic was recreated?)")
        return _Original(topic, msg.key(), value)

    def _publish(self, planned: list[tuple[DeadLetter, _Original]]) -> list[ReplayOutcome]:
        ensure_bus_topics(self.settings, "replays")  # buses set up before the console lack it
        producer = Producer({**self.client_config, "enable.idempotence": True, "acks": "all",
                             "linger.ms": 5, "client.id": "creditbus-deadletters-replay"})
        targets: dict[str, str] = {}
        errors: dict[str, str] = {}

        def delivered(full_id: str) -> Any:
            def report(err: Any, msg: Any) -> None:
                if err is not None:
                    errors[full_id] = str(err)
                else:
                    targets[full_id] = f"{msg.topic()}:{msg.partition()}:{msg.offset()}"
            return report

        for letter, original in planned:
            headers = [(REPLAY_OF_HEADER, letter.full_id.encode()),
                       (REPLAY_REASON_HEADER, letter.reason.encode())]
            self._produce(producer, original.topic, original.key, original.value, headers,
                          delivered(letter.full_id))
        self._flush(producer)
        now_ms = int(time.time() * 1000)
        for letter, _original in planned:
            target = targets.get(letter.full_id)
            if target is None:
                continue
            record = {"dead_letter": letter.full_id, "replayed_to": target, "at_ms": now_ms,
                      "stage": letter.stage, "reason": letter.reason}
            self._produce(producer, deadletter_replays_topic(self.prefix),
                          letter.full_id.encode(), json.dumps(record).encode(), [], None)
        self._flush(producer)
        return [ReplayOutcome(letter.full_id, REPLAYED, targets[letter.full_id])
                if letter.full_id in targets
                else ReplayOutcome(letter.full_id, REFUSED,
                                   detail=f"not acknowledged: {errors.get(letter.full_id)}")
                for letter, _original in planned]

    @staticmethod
    def _produce(producer: Producer, topic: str, key: bytes | None, value: bytes,
                 headers: list[tuple[str, bytes]], on_delivery: Any) -> None:
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers,
                                 on_delivery=on_delivery)
                return
            except BufferError:
                producer.poll(0.1)

    @staticmethod
    def _flush(producer: Producer) -> None:
        try:
            remaining = producer.flush(FLUSH_TIMEOUT_S)
        except KafkaException as exc:
            raise ReplayError(f"replay not acknowledged: {exc}") from exc
        if remaining:
            raise ReplayError(f"{remaining} message(s) not acknowledged within "
                              f"{FLUSH_TIMEOUT_S:.0f} s; nothing of them is marked replayed")
