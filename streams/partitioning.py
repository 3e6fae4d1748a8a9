"""Which by-person partition a person's messages go to."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def person_partition(person_key: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key), as the worker's producer applies it to
    keyed messages: packs and keyed sends of the same person land on the same partition."""
    return (murmur2(person_key.encode()) & 0x7FFFFFFF) % partitions
