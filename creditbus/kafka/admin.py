"""Topic administration with confluent-kafka's AdminClient, and the one way a command reaches
the broker: `require_broker` (is one configured?) and `ensure_bus_topics` (the one place the bus
creates its topics)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from creditbus.errors import BrokerUnavailable
from creditbus.kafka.clientlog import kafka_logger
from creditbus.settings import Settings


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
    _wait_until_known(admin, [m.topic for m in missing], timeout)
    return created


def _wait_until_known(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Until the broker's metadata lists every partition of `names` with a leader.

    A created topic is in the controller's log before the brokers' metadata caches have it;
    a client that asks in between sees no topic, and aiokafka (Faust) keeps such a topic at
    0 partitions for minutes: the worker's first table write then fails Faust's partition
    check (PartitionsMismatch). Seen on a loaded machine within a second of the creation.
    """
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        pending = [n for n in names if n not in topics or topics[n].error is not None
                   or not topics[n].partitions
                   or any(p.leader < 0 for p in topics[n].partitions.values())]
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(0.1)


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


NO_BROKER = "no Kafka broker: set CREDITBUS_BOOTSTRAP or run `creditbus kafka up`"


def require_broker(settings: Settings) -> str:
    """The bootstrap servers of `settings`; BrokerUnavailable when none is configured (the one
    wording of every command that needs Kafka)."""
    if not settings.bootstrap:
        raise BrokerUnavailable(NO_BROKER)
    return settings.bootstrap


def unreachable(settings: Settings, exc: KafkaException) -> BrokerUnavailable:
    """The error for a broker that did not answer or refused (one line, no traceback)."""
    reason = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
    return BrokerUnavailable(f"cannot reach Kafka at {settings.bootstrap}: {reason}")


def bus_admin(settings: Settings) -> AdminClient:
    """An AdminClient of the configured cluster, authenticated as `settings` say."""
    from creditbus.kafka.clientconf import confluent_auth

    return admin_client(require_broker(settings), confluent_auth(settings))


def ensure_bus_topics(settings: Settings, which: str = "bus", *,
                      units: Iterable[str] | None = None, admin: AdminClient | None = None,
                      timeout: float = 30.0) -> list[str]:
    """Create the missing topics of one set of `creditbus.topics.TOPIC_SETS` (`bus`, `worker`,
    `sink`, `audit`, `replays`, `raw`) with the prefix, partitions and replication of
    `settings`; the names created. `units` defaults to the catalog's (the `raw` set needs
    them). The one place the bus creates topics; BrokerUnavailable when Kafka does not
    answer."""
    from creditbus.topics import TOPIC_SETS

    if units is None:
        from creditbus.catalog import default_catalog

        units = [] if which in ("sink", "audit", "replays") else [
            u.code for u in default_catalog(settings.catalog_dir).units]
    specs = TOPIC_SETS[which](settings.topic_prefix, units, settings.partitions,
                              settings.replication)
    try:
        # not `admin or ...`: a client handle's truth is its queue length, 0 when idle
        return ensure_topics(admin if admin is not None else bus_admin(settings), specs,
                             timeout)
    except KafkaException as exc:
        raise unreachable(settings, exc) from None
