"""librdkafka's own log lines through Python logging, for every confluent-kafka client.

Without a `logger` in its config, a confluent-kafka client lets librdkafka write its lines raw
to stderr (`%3|1733...|FAIL|rdkafka#producer-1| ... Connection refused`). With one, confluent-kafka
calls ``logger.log(level, "%s [%s] %s", facility, client name, text)`` with librdkafka's syslog
level mapped to Python's (0-2 CRITICAL, 3 ERROR, 4 WARNING, 5-6 INFO, 7 DEBUG).

`kafka_logger()` is that logger for every client of the project (`clientconf.confluent_config`
puts it in): it logs to `creditbus.kafka.client`, so the lines go to the process's handlers,
which mask identity numbers (`creditbus.logsetup`). Conditions librdkafka retries and recovers
from by itself (a coordinator still loading, a broker not reachable yet or restarting, a
request timing out) are logged at DEBUG: they are not on the terminal at the default INFO level,
and a lasting problem reaches the caller anyway, as a failed delivery, an error callback or a
KafkaException.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

LOGGER_NAME: Final = "creditbus.kafka.client"

TRANSIENT: Final = re.compile(
    "|".join((
        r"coordinator load in progress",
        r"coordinator not available",
        r"not coordinator",
        r"connection refused",
        r"connect to \S+ failed",
        r"disconnected",
        r"connection reset",
        r"broker transport failure",
        r"brokers? (?:are|is) down",
        r"broker connections are down",
        r"timed out",
        r"leader not available",
        r"not leader",
    )),
    re.IGNORECASE,
)
"""librdkafka texts of conditions it recovers from by itself: logged at DEBUG."""


def is_transient(text: str) -> bool:
    """Whether a librdkafka log text reports a condition librdkafka recovers from itself."""
    return TRANSIENT.search(text) is not None


class LibrdkafkaLogger(logging.LoggerAdapter[logging.Logger]):
    """What confluent-kafka's `logger` config key gets: demotes transient lines to DEBUG,
    then logs to `creditbus.kafka.client` with the level librdkafka gave."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level > logging.DEBUG and is_transient(" ".join(str(a) for a in args) or str(msg)):
            level = logging.DEBUG
        self.logger.log(level, msg, *args, **kwargs)


_LOGGER = LibrdkafkaLogger(logging.getLogger(LOGGER_NAME), {})


def kafka_logger() -> LibrdkafkaLogger:
    """The `logger` of every confluent-kafka client config of the project."""
    return _LOGGER
