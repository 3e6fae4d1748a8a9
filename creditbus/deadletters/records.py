"""A dead letter as read back from its topic, its id, and the filters of the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from creditbus.deadletter import header_dict
from creditbus.errors import ConfigError
from creditbus.topics import deadletter_topic, sink_deadletter_topic

STAGES = ("ingest", "archive", "sink")
"""Who wrote it: the worker's edge stage, its archive agent, or a sink."""


class DeadLetterIdError(ConfigError, ValueError):
    """A dead-letter id that cannot be parsed or names no dead-letter topic of the bus."""


def topic_short_name(prefix: str, topic: str) -> str:
    return topic[len(prefix) + 1:] if topic.startswith(prefix + ".") else topic


def parse_dead_letter_id(prefix: str, text: str) -> tuple[str, int, int]:
    """`deadletter:0:17` or `sink.deadletter:0:17` (or the full topic name) -> (topic,
    partition, offset) on one of the bus's two dead-letter topics."""
    parts = text.strip().rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise DeadLetterIdError(f"{text!r} is not a dead-letter id (TOPIC:PARTITION:OFFSET, "
                                "e.g. deadletter:0:17)")
    topic = parts[0] if parts[0].startswith(prefix + ".") else f"{prefix}.{parts[0]}"
    if topic not in (deadletter_topic(prefix), sink_deadletter_topic(prefix)):
        raise DeadLetterIdError(f"{text!r}: {topic} is not a dead-letter topic of this bus "
                                f"(deadletter or sink.deadletter)")
    return topic, int(parts[1]), int(parts[2])


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter topic: the bytes kept and the headers saying why."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @classmethod
    def from_message(cls, topic: str, partition: int, offset: int, timestamp_ms: int,
                     key: bytes | None, value: bytes | None,
                     headers: list[tuple[str, bytes]] | None) -> DeadLetter:
        return cls(topic, partition, offset, timestamp_ms, key, value or b"",
                   header_dict(headers))

    def id(self, prefix: str) -> str:
        """The short id the console shows and takes: `<topic without prefix>:<p>:<offset>`."""
        return f"{topic_short_name(prefix, self.topic)}:{self.partition}:{self.offset}"

    @property
    def full_id(self) -> str:
        """The id with the full topic name: the key of its replay record."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def stage(self) -> str:
        return self.headers.get("stage", "")

    @property
    def reason(self) -> str:
        return self.headers.get("reason", "")

    @property
    def message(self) -> str:
        return self.headers.get("message", "")

    @property
    def unit(self) -> str | None:
        return self.headers.get("source.unit") or None

    @property
    def source(self) -> tuple[str, int, int] | None:
        """(topic, partition, offset) of the message that failed, when the headers say."""
        try:
            return (self.headers["source.topic"], int(self.headers["source.partition"]),
                    int(self.headers["source.offset"]))
        except (KeyError, ValueError):
            return None

    @property
    def failed_at_ms(self) -> int:
        try:
            return int(self.headers["failed.at.ms"])
        except (KeyError, ValueError):
            return self.timestamp_ms

    def failed_at(self) -> datetime:
        return datetime.fromtimestamp(self.failed_at_ms / 1000, UTC)


@dataclass(frozen=True)
class DeadLetterFilter:
    """What `list`, `export` and `replay` select; an unset field selects everything."""

    unit: str | None = None
    reason: str | None = None
    stage: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.unit is not None and letter.unit != self.unit:
            return False
        if self.reason is not None and letter.reason.upper() != self.reason.upper():
            return False
        if self.stage is not None and letter.stage != self.stage:
            return False
        at = letter.failed_at()
        if self.since is not None and at < self.since:
            return False
        return self.until is None or at < self.until

    def topics(self, prefix: str) -> list[str]:
        """The dead-letter topics that can hold matches: the sink's only for stage sink."""
        if self.stage == "sink":
            return [sink_deadletter_topic(prefix)]
        if self.stage in ("ingest", "archive"):
            return [deadletter_topic(prefix)]
        return [deadletter_topic(prefix), sink_deadletter_topic(prefix)]
