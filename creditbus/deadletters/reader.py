"""Reading the dead-letter topics (up to their end as it was when the read began), one message
at a position (a dead letter, or the inbound message it came from), and the replay records.

Consumers here assign partitions and never commit, so no consumer group is used and the
console needs no group ACL (docs/deadletters.md says which principal runs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from creditbus.deadletters.records import DeadLetter, DeadLetterFilter
from creditbus.errors import CreditbusError
from creditbus.kafka.reading import one_off_consumer, read_to_end

TIMEOUT_S = 30.0


class SourceGone(CreditbusError, LookupError):
    """The message at a position is no longer on its topic (retention, or the topic is gone)."""


def _consumer(client_config: dict[str, Any]) -> Consumer:
    return one_off_consumer(client_config, "creditbus-deadletters")


def read_topic(client_config: dict[str, Any], topic: str, *,
               timeout: float = TIMEOUT_S) -> Iterator[Message]:
    """Every message of `topic` from its low watermark to its end at the start of the call;
    nothing when the topic does not exist."""
    return read_to_end(client_config, topic, timeout=timeout, client="creditbus-deadletters")


def read_dead_letters(client_config: dict[str, Any], prefix: str,
                      selection: DeadLetterFilter) -> Iterator[DeadLetter]:
    """The dead letters that match, topic by topic, in offset order per partition."""
    for topic in selection.topics(prefix):
        for msg in read_topic(client_config, topic):
            letter = dead_letter_of(msg)
            if selection.matches(letter):
                yield letter


def dead_letter_of(msg: Message) -> DeadLetter:
    _kind, timestamp = msg.timestamp()
    return DeadLetter.from_message(msg.topic(), msg.partition(), msg.offset(), timestamp,
                                   msg.key(), msg.value(), msg.headers())


def read_at(client_config: dict[str, Any], topic: str, partition: int, offset: int, *,
            timeout: float = TIMEOUT_S) -> Message:
    """The message at (topic, partition, offset); `SourceGone` when it is not there (any more)."""
    consumer = _consumer(client_config)
    try:
        info = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if info is None or info.error is not None or partition not in info.partitions:
            raise SourceGone(f"{topic}[{partition}] does not exist")
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                   timeout=timeout)
        if not low <= offset < high:
            raise SourceGone(f"{topic}[{partition}]@{offset} is not on the topic (it holds "
                             f"offsets {low}..{high - 1}; retention may have removed it)")
        consumer.assign([TopicPartition(topic, partition, offset)])
        while True:
            msg = consumer.poll(timeout)
            if msg is None:
                raise TimeoutError(f"no message from {topic}[{partition}] within {timeout:.0f} s")
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            if msg.offset() != offset:  # compacted or transactional gap: not there
                raise SourceGone(f"{topic}[{partition}]@{offset} is not on the topic")
            return msg
    finally:
        consumer.close()
