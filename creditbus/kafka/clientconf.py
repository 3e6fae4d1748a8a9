"""Client settings for every Kafka client of the bus: bootstrap plus authentication.

With `CREDITBUS_KAFKA_USERNAME` and `CREDITBUS_KAFKA_PASSWORD` set, clients authenticate with
SASL/SCRAM-SHA-512 (`SASL_PLAINTEXT`: SCRAM never sends the password, but the traffic itself is
not encrypted; see docs/security.md). With both empty they connect in plaintext, as before.

The settings are read with `getattr(..., default)`, so this module also works with a `Settings`
that predates those fields.
"""

from __future__ import annotations

from typing import Any

from creditbus.kafka.clientlog import kafka_logger

SCRAM_MECHANISM = "SCRAM-SHA-512"
SASL_PROTOCOL = "SASL_PLAINTEXT"


class ClientConfigError(ValueError):
    """The Kafka client settings are incomplete (e.g. a username without a password)."""


def kafka_credentials(settings: Any) -> tuple[str, str] | None:
    """(username, password) of the configured principal, or None when SASL is off."""
    username = str(getattr(settings, "kafka_username", "") or "").strip()
    password = str(getattr(settings, "kafka_password", "") or "")
    if not username and not password:
        return None
    if not username or not password:
        missing = "CREDITBUS_KAFKA_PASSWORD" if username else "CREDITBUS_KAFKA_USERNAME"
        raise ClientConfigError(f"{missing} is empty: set both or neither")
    return username, password


def confluent_auth(settings: Any) -> dict[str, str]:
    """The security part of a confluent-kafka config ({} without credentials)."""
    credentials = kafka_credentials(settings)
    if credentials is None:
        return {}
    username, password = credentials
    return {
        "security.protocol": SASL_PROTOCOL,
        "sasl.mechanism": SCRAM_MECHANISM,
        "sasl.username": username,
        "sasl.password": password,
    }


def confluent_config(settings: Any, **extra: Any) -> dict[str, Any]:
    """A confluent-kafka Producer / Consumer / AdminClient config.

    Dotted keys go in as a mapping: `confluent_config(s, **{"group.id": "g"})`; `extra` wins over
    the defaults, so a caller may still override anything. `logger` routes librdkafka's own
    log lines through Python logging (`creditbus.kafka.clientlog`).
    """
    return {"bootstrap.servers": settings.bootstrap, **confluent_auth(settings),
            "logger": kafka_logger(), **extra}


def faust_broker_kwargs(settings: Any) -> dict[str, Any]:
    """Keyword arguments for `faust.App(...)`: the broker credentials ({} without SASL).

    faust-streaming turns `SASLCredentials` into aiokafka's `security_protocol=SASL_PLAINTEXT`,
    `sasl_mechanism=SCRAM-SHA-512`, `sasl_plain_username/password` for its consumer, producers
    and the client that creates changelog topics.
    """
    credentials = kafka_credentials(settings)
    if credentials is None:
        return {}
    import faust  # only the stream workers need Faust

    username, password = credentials
    return {
        "broker_credentials": faust.SASLCredentials(
            username=username, password=password, mechanism=SCRAM_MECHANISM
        )
    }


def aiokafka_kwargs(settings: Any) -> dict[str, Any]:
    """The same for plain aiokafka clients (`AIOKafkaProducer(**aiokafka_kwargs(s))`)."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.bootstrap}
    credentials = kafka_credentials(settings)
    if credentials is not None:
        kwargs.update(
            security_protocol=SASL_PROTOCOL, sasl_mechanism=SCRAM_MECHANISM,
            sasl_plain_username=credentials[0], sasl_plain_password=credentials[1],
        )
    return kwargs
