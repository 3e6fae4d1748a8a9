"""Consumer-group lag, read the way lag tools read it: committed offsets vs. log ends."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, TopicPartition

from creditbus.topics import worker_groups


def group_lag(bootstrap: str, group: str, topics: list[str], timeout: float = 10.0,
              auth: dict[str, str] | None = None) -> int:
    """Messages the group has not committed past, summed over every partition of `topics`.

    A partition the group never committed counts in full (from the log start).
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, **(auth or {})})
    try:
        metadata = consumer.list_topics(timeout=timeout)
        partitions = [TopicPartition(t, p) for t in topics if t in metadata.topics
                      for p in metadata.topics[t].partitions]
        try:
            committed = consumer.committed(partitions, timeout=timeout)
        except KafkaException:  # the group coordinator is moving or loading: not caught up
            return max(1, len(partitions))
        lag = 0
        for tp in committed:
            try:
                low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            except KafkaException:  # leadership moving (a new topic): not known to be caught up
                lag += 1
                continue
            position = tp.offset if tp.offset >= 0 else low
            lag += max(0, high - position)
        return lag
    finally:
        consumer.close()


def workers_lag(bootstrap: str, prefix: str, units: list[str], timeout: float = 10.0,
                auth: dict[str, str] | None = None) -> int:
    """What the stream workers have not committed past: inbound and by-person messages."""
    return sum(group_lag(bootstrap, group, topics, timeout, auth)
               for group, topics in worker_groups(prefix, units))
