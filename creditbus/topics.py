"""Topic names of the bus, derived from the prefix setting and the unit catalog.

Inbound topics are one per publisher (`<prefix>.raw.<unit>`), so a per-unit ACL on the prefix
`<prefix>.raw.<unit>` gives each unit its own topic and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from creditbus.kafka.admin import TopicSpec

RAW_SEGMENT = "raw"


def raw_topic(prefix: str, unit: str) -> str:
    return f"{prefix}.{RAW_SEGMENT}.{unit}"


def unit_of_raw_topic(prefix: str, topic: str) -> str | None:
    head = f"{prefix}.{RAW_SEGMENT}."
    return topic[len(head):] if topic.startswith(head) else None


def by_person_topic(prefix: str) -> str:
    return f"{prefix}.internal.by-person"


def updates_topic(prefix: str) -> str:
    return f"{prefix}.archive.updates"


def deadletter_topic(prefix: str) -> str:
    return f"{prefix}.deadletter"


def sink_deadletter_topic(prefix: str) -> str:
    return f"{prefix}.sink.deadletter"


def deadletter_replays_topic(prefix: str) -> str:
    """Compacted: one record per replayed dead letter, keyed by its position
    (`creditbus deadletters replay` re-publishes a dead letter at most once)."""
    return f"{prefix}.deadletter.replays"


def audit_topic(prefix: str) -> str:
    return f"{prefix}.audit"


RECEIPTS_SEGMENT = "receipts"
RECEIPTS_RETENTION_MS = 90 * 86_400_000
"""Receipts are kept 90 days: units query them afterwards (`creditbus receipts`)."""


def receipts_topic(prefix_or_settings: str | Any, unit: str) -> str:
    """`<prefix>.receipts.<unit>`: the outcome of every message the unit published, which only
    that unit (and the administrator) may read (docs/receipts.md)."""
    prefix = getattr(prefix_or_settings, "topic_prefix", prefix_or_settings)
    return f"{prefix}.{RECEIPTS_SEGMENT}.{unit}"


def receipts_group_id(prefix: str, unit: str | None = None) -> str:
    """The consumer group id a receipts reader names (it commits nothing and joins no group,
    but librdkafka needs one): a unit's own, or the office's for every unit."""
    return f"{prefix}-receipts-{unit or 'office'}"


def worker_app_id(prefix: str) -> str:
    """The Faust app id (consumer group; prefix of its changelog topics)."""
    return f"{prefix}-archive-worker"


def edge_group_id(prefix: str) -> str:
    """The consumer group of the workers' edge stage (the inbound topics)."""
    return f"{prefix}-archive-edge"


def worker_groups(prefix: str, units: Iterable[str]) -> list[tuple[str, list[str]]]:
    """The workers' consumer groups with the topics each reads: the edge stage the inbound
    topics, the Faust app the by-person topic. Lag tools sum the two."""
    return [(edge_group_id(prefix), [raw_topic(prefix, unit) for unit in units]),
            (worker_app_id(prefix), [by_person_topic(prefix)])]


def archive_changelog_topic(prefix: str) -> str:
    """The changelog of the workers' archive table (Faust's name for it)."""
    return f"{worker_app_id(prefix)}-archives-changelog"


def worker_topics(
    prefix: str, units: Iterable[str], partitions: int, replication: int
) -> list[TopicSpec]:
    """The topics a stream worker reads or writes (what its ACLs let it see).

    The table's changelog and Faust's leader topic are among them: created before the worker
    joins its group, so Faust's first look at the metadata already finds the changelog with the
    partitions of the by-person topic (aiokafka keeps a topic it did not find at 0 partitions
    for minutes, and the first table write then fails Faust's partition check).
    """
    theirs = {sink_deadletter_topic(prefix), audit_topic(prefix),
              deadletter_replays_topic(prefix)}
    specs = [s for s in bus_topics(prefix, units, partitions, replication)
             if s.name not in theirs]
    return [*specs,
            TopicSpec(archive_changelog_topic(prefix), partitions, replication,
                      {"cleanup.policy": "compact"}),
            TopicSpec(f"{worker_app_id(prefix)}-__assignor-__leader", 1, replication)]


def bus_topics(
    prefix: str, units: Iterable[str], partitions: int, replication: int
) -> list[TopicSpec]:
    """Every topic the bus needs, except the Faust changelogs that the worker creates itself."""
    units = list(units)
    names = [raw_topic(prefix, unit) for unit in units]
    names += [by_person_topic(prefix), updates_topic(prefix)]
    specs = [TopicSpec(name, partitions, replication) for name in names]
    specs += [TopicSpec(receipts_topic(prefix, unit), partitions, replication,
                        {"retention.ms": str(RECEIPTS_RETENTION_MS)}) for unit in units]
    specs += [
        TopicSpec(deadletter_topic(prefix), 1, replication),
        TopicSpec(sink_deadletter_topic(prefix), 1, replication),
        TopicSpec(audit_topic(prefix), 1, replication),
        TopicSpec(deadletter_replays_topic(prefix), 1, replication,
                  {"cleanup.policy": "compact"}),
    ]
    return specs


def _named(*names: Callable[[str], str]) -> Callable[..., list[TopicSpec]]:
    """A topic set of these bus topics (as `bus_topics` specifies them)."""

    def specs(prefix: str, units: Iterable[str], partitions: int,
              replication: int) -> list[TopicSpec]:
        wanted = {name(prefix) for name in names}
        return [s for s in bus_topics(prefix, [], partitions, replication) if s.name in wanted]
    return specs


TOPIC_SETS: dict[str, Callable[[str, Iterable[str], int, int], list[TopicSpec]]] = {
    "bus": bus_topics,
    "worker": worker_topics,
    "sink": _named(updates_topic, sink_deadletter_topic),
    "audit": _named(audit_topic),
    "replays": _named(deadletter_replays_topic),
    "raw": lambda prefix, units, partitions, replication: [
        TopicSpec(raw_topic(prefix, unit), partitions, replication) for unit in units],
}
"""The sets of topics a process makes sure of before it starts
(`creditbus.kafka.admin.ensure_bus_topics`): every topic of the bus, a worker's, a sink's, the
audit trail, the dead-letter replays, the inbound topics of some units."""
