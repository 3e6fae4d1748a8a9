"""Reading a topic once, up to where it ended when the read began (the operators' consoles:
the audit trail, the dead letters).

The consumer assigns partitions and never commits: no consumer group is joined, so the reader
needs no group ACL. Its group id is random only because librdkafka requires one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition


def one_off_consumer(client_config: dict[str, Any], client: str) -> Consumer:
    """A consumer that reads from assigned positions and commits nothing."""
    return Consumer({**client_config, "group.id": f"{client}-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "enable.partition.eof": False})


def read_to_end(client_config: dict[str, Any], topic: str, *, since_ms: int | None = None,
                timeout: float = 30.0, client: str = "creditbus-reader") -> Iterator[Message]:
    """Every message of `topic` from its low watermark (or from the first message stamped at
    or after `since_ms`) to its end at the start of the call, partition by partition in offset
    order; nothing when the topic does not exist. TimeoutError when a partition stops
    answering, KafkaException on a consumer error."""
    consumer = one_off_consumer(client_config, client)
    try:
        info = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if info is None or info.error is not None:
            return
        ends: dict[int, int] = {}
        starts: list[TopicPartition] = []
        for partition in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                       timeout=timeout)
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(topic, partition, low))
        if since_ms is not None and starts:
            wanted = [TopicPartition(topic, tp.partition, since_ms) for tp in starts]
            found = consumer.offsets_for_times(wanted, timeout=timeout)
            starts = [tp for tp in found if 0 <= tp.offset < ends[tp.partition]]  # -1: none
        if not starts:
            return
        consumer.assign(starts)
        pending = {tp.partition for tp in starts}
        while pending:
            msg = consumer.poll(timeout)
            if msg is None:
                raise TimeoutError(f"no message from {topic} within {timeout:.0f} s")
            if msg.error():
                raise KafkaException(msg.error())
            partition, offset = msg.partition(), msg.offset()
            if offset + 1 >= ends[partition]:
                pending.discard(partition)
            if offset < ends[partition]:
                yield msg
    finally:
        consumer.close()
