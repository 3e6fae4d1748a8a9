"""Topic administration with confluent-kafka's AdminClient."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from creditbus.kafka.clientlog import kafka_logger


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int = 1
    config: dict[str, str] = field(default_factory=dict)


def admin_client(bootstrap: str, extra: dict[str, str] | None = None) -> AdminClient:
    """An AdminClient; `extra`: authentication (`clientconf.confluent_auth`) or other keys."""
    return AdminClient({"bootstrap.servers": bootstrap, "logger": kafka_logger(), **(extra or {})})


def ensure_topics(
    admin: AdminClient, specs: Iterable[TopicSpec], timeout: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (their partition count is the operator's business).
    """
    wanted = {spec.name: spec for spec in specs}
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication,
                 config=dict(s.config))
        for name, s in wanted.items() if name not in existing
    ]
    if not missing:
        return []
    created: list[str] = []
    for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def delete_topics(admin: AdminClient, names: Iterable[str], timeout: float = 30.0) -> None:
    names = list(names)
    if not names:
        return
    for future in admin.delete_topics(names, operation_timeout=timeout).values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
