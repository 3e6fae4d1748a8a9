"""Client settings for every Kafka client of the bus: bootstrap, TLS and authentication.

The security protocol follows from the settings (docs/security.md):

| `CREDITBUS_KAFKA_USERNAME`/`_PASSWORD` | `CREDITBUS_KAFKA_CA_FILE` | protocol |
| --- | --- | --- |
| set | set | `SASL_SSL`: SCRAM-SHA-512 over TLS, the brokers verified against the CA file |
| set | empty | refused: credentials never travel without TLS |
| empty | set | `SSL` (encrypted, verified, anonymous) |
| empty | empty | `PLAINTEXT`, only when every bootstrap server is a loopback address |

TLS clients verify the broker's certificate chain against the CA file and its name against
the host they connect to (hostname verification). Before the first TLS config is handed out,
the bootstrap servers' certificates are checked once with the same CA (`_check_brokers_trusted`),
so that a client without the right CA fails at once. Every refusal is a `ClientConfigError`
whose message is one line naming the setting to fix. The settings are read with
`getattr(..., default)`, so this module also works with a `Settings` that predates a field.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
from pathlib import Path
from typing import Any

from creditbus.kafka.clientlog import kafka_logger
from creditbus.kafka.tls import TlsError, check_ca_file, verification_failure
from creditbus.settings import SettingsError

SCRAM_MECHANISM = "SCRAM-SHA-512"
SASL_PROTOCOL = "SASL_SSL"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


ClientConfigError = SettingsError
"""Kafka client settings that are incomplete or unsafe are settings errors like any other
(the name stays for the modules that import it)."""


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


def kafka_ca_file(settings: Any) -> Path | None:
    """The CA certificate file the clients verify the brokers against, checked; None if unset."""
    value = getattr(settings, "kafka_ca_file", None)
    if value is None or not str(value).strip():
        return None
    path = Path(str(value)).expanduser()
    try:
        check_ca_file(path)
    except TlsError as exc:
        raise ClientConfigError(f"CREDITBUS_KAFKA_CA_FILE: {exc}") from None
    return path


def security_protocol(settings: Any) -> str:
    """PLAINTEXT, SSL or SASL_SSL, by the table in this module's docstring."""
    credentials = kafka_credentials(settings)
    ca_file = kafka_ca_file(settings)
    if credentials is not None and ca_file is None:
        raise ClientConfigError(
            "CREDITBUS_KAFKA_CA_FILE is empty: Kafka credentials are only sent over TLS; "
            "name the CA certificate that signed the brokers' certificates")
    if ca_file is not None:
        _check_brokers_trusted(str(getattr(settings, "bootstrap", "") or ""), ca_file)
        return SASL_PROTOCOL if credentials is not None else "SSL"
    remote = [host for host in bootstrap_hosts(str(getattr(settings, "bootstrap", "") or ""))
              if not is_loopback(host)]
    if remote:
        raise ClientConfigError(
            f"plaintext Kafka is for loopback development only, and {remote[0]} is not "
            "loopback: set CREDITBUS_KAFKA_USERNAME, CREDITBUS_KAFKA_PASSWORD and "
            "CREDITBUS_KAFKA_CA_FILE")
    return "PLAINTEXT"


def confluent_auth(settings: Any) -> dict[str, str]:
    """The security part of a confluent-kafka config ({} in loopback plaintext)."""
    protocol = security_protocol(settings)
    if protocol == "PLAINTEXT":
        return {}
    conf = {
        "security.protocol": protocol,
        "ssl.ca.location": str(kafka_ca_file(settings)),
        "ssl.endpoint.identification.algorithm": "https",
    }
    credentials = kafka_credentials(settings)
    if credentials is not None:
        conf.update({"sasl.mechanism": SCRAM_MECHANISM, "sasl.username": credentials[0],
                     "sasl.password": credentials[1]})
    return conf


def confluent_config(settings: Any, **extra: Any) -> dict[str, Any]:
    """A confluent-kafka Producer / Consumer / AdminClient config.

    Dotted keys go in as a mapping: `confluent_config(s, **{"group.id": "g"})`; `extra` wins over
    the defaults, so a caller may still override anything. `logger` routes librdkafka's own
    log lines through Python logging (`creditbus.kafka.clientlog`).
    """
    return {"bootstrap.servers": settings.bootstrap, **confluent_auth(settings),
            "logger": kafka_logger(), **extra}


def ssl_context(settings: Any) -> ssl.SSLContext | None:
    """A client TLS context trusting only the CA file, hostname verification on; None without
    a CA file."""
    ca_file = kafka_ca_file(settings)
    if ca_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def faust_broker_kwargs(settings: Any) -> dict[str, Any]:
    """Keyword arguments for `faust.App(...)`: the broker credentials ({} in plaintext).

    faust-streaming turns `SASLCredentials` with an SSL context into aiokafka's
    `security_protocol=SASL_SSL`, `sasl_mechanism=SCRAM-SHA-512`, `sasl_plain_username/password`
    and `ssl_context` for its consumer, producers and the client that creates changelog topics.
    """
    protocol = security_protocol(settings)
    if protocol == "PLAINTEXT":
        return {}
    import faust  # only the stream workers need Faust

    context = ssl_context(settings)
    credentials = kafka_credentials(settings)
    if credentials is None:
        return {"broker_credentials": faust.SSLCredentials(context)}
    username, password = credentials
    return {
        "broker_credentials": faust.SASLCredentials(
            username=username, password=password, mechanism=SCRAM_MECHANISM,
            ssl_context=context,
        )
    }


def aiokafka_kwargs(settings: Any) -> dict[str, Any]:
    """The same for plain aiokafka clients (`AIOKafkaProducer(**aiokafka_kwargs(s))`)."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.bootstrap}
    protocol = security_protocol(settings)
    if protocol == "PLAINTEXT":
        return kwargs
    kwargs.update(security_protocol=protocol, ssl_context=ssl_context(settings))
    credentials = kafka_credentials(settings)
    if credentials is not None:
        kwargs.update(sasl_mechanism=SCRAM_MECHANISM, sasl_plain_username=credentials[0],
                      sasl_plain_password=credentials[1])
    return kwargs


def _check_brokers_trusted(bootstrap: str, ca_file: Path) -> None:
    """Fail fast, in one line, when a bootstrap server presents a certificate the CA file
    does not vouch for (librdkafka and aiokafka would retry the handshake until they time
    out). Checked once per process for each bootstrap list and CA file; servers that do not
    answer are left to the client's own retries."""
    stat = ca_file.stat()
    problem = _tls_problem(bootstrap, str(ca_file), stat.st_mtime_ns, stat.st_size)
    if problem:
        raise ClientConfigError(problem)


@functools.lru_cache(maxsize=16)
def _tls_problem(bootstrap: str, ca_file: str, _mtime: int, _size: int) -> str | None:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    for item in bootstrap.split(","):
        hosts = bootstrap_hosts(item)
        if not hosts or ":" not in item:
            continue
        host, port = hosts[0], int(item.strip().rsplit(":", 1)[1])
        failure = verification_failure(host, port, context)
        if failure:
            return (f"the Kafka broker {host}:{port} is not trusted: {failure} (its TLS "
                    f"certificate must be issued for {host} by the CA in "
                    f"CREDITBUS_KAFKA_CA_FILE={ca_file})")
    return None


def bootstrap_hosts(bootstrap: str) -> list[str]:
    """The host part of each `host:port` (IPv6 in brackets) of a bootstrap list."""
    hosts = []
    for item in bootstrap.split(","):
        item = item.strip()
        if "://" in item:
            item = item.split("://", 1)[1]
        if not item:
            continue
        if item.startswith("["):
            hosts.append(item[1:item.find("]")])
        else:
            hosts.append(item.rsplit(":", 1)[0] if item.count(":") == 1 else item)
    return hosts


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
