"""`CREDITBUS_ENV=production`: refuse to start with a setting left at its development default.

Each command names what it uses (`COMMAND_USES`); `production_problems` lists, for those uses,
every setting that is still a development default, and `refuse_development_defaults` raises one
error naming them all, so an operator fixes them in one pass. Outside production nothing is
checked: `make demo` and the tests run on the defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from creditbus.settings import LOOPBACK, Settings, SettingsError

PERSON_KEY = "person_key"
KAFKA = "kafka"
DATABASE = "database"
DEVELOPMENT_ONLY = "development_only"

COMMAND_USES: dict[str, tuple[str, ...]] = {
    "worker": (PERSON_KEY, KAFKA),
    "publish": (KAFKA,),
    "sink": (KAFKA, DATABASE),
    "query": (PERSON_KEY, KAFKA, DATABASE),
    "portal": (PERSON_KEY, KAFKA, DATABASE),
    "verify": (DATABASE,),
    "report": (DATABASE,),
    "db": (DATABASE,),
    "demo": (DEVELOPMENT_ONLY,),
}
"""What each `creditbus` command relies on; commands not listed are not checked."""

MIN_SECRET_BYTES = 32
LOCAL_HOSTS = frozenset({"", "localhost", LOOPBACK, "::1"})


def production_problems(settings: Settings, uses: Iterable[str]) -> list[str]:
    """One sentence per development default still in force among `uses` (none outside
    production)."""
    if not settings.production:
        return []
    uses = set(uses)
    problems: list[str] = []
    if DEVELOPMENT_ONLY in uses:
        problems.append("this command is for development machines only")
    if PERSON_KEY in uses:
        if settings.uses_dev_secret:
            problems.append("the person-key secret is the development secret: set "
                            "CREDITBUS_PERSON_KEY_SECRET_FILE")
        elif len(settings.person_key_secret) < MIN_SECRET_BYTES:
            problems.append(f"the person-key secret is shorter than {MIN_SECRET_BYTES} bytes")
    if KAFKA in uses:
        problems += _kafka_problems(settings)
    if DATABASE in uses:
        problems += _database_problems(settings)
    return problems


def _kafka_problems(settings: Settings) -> list[str]:
    problems = []
    if not settings.kafka_username:
        problems.append("Kafka without authentication (CREDITBUS_KAFKA_USERNAME is empty)")
    if getattr(settings, "kafka_ca_file", None) is None:
        problems.append("Kafka without TLS (CREDITBUS_KAFKA_CA_FILE is not set)")
    return problems


def _database_problems(settings: Settings) -> list[str]:
    if "database_url" not in settings.model_fields_set:  # the computed default
        return ["CREDITBUS_DATABASE_URL is not set (the development SQLite file)"]
    url = settings.database_url
    if not url.startswith(("postgresql:", "postgres:")):
        return []
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = (parts.hostname or query.get("host", [""])[-1]).lower()
    if host in LOCAL_HOSTS or host.startswith("/"):
        return []  # a Unix socket or loopback: nothing travels over a network
    problems = []
    if query.get("sslmode", [""])[-1] != "verify-full":
        problems.append(f"the PostgreSQL connection to {host} does not verify the server: add "
                        "sslmode=verify-full&sslrootcert=<CA file> to CREDITBUS_DATABASE_URL")
    elif not query.get("sslrootcert", [""])[-1]:
        problems.append("sslmode=verify-full without sslrootcert=<CA file> in "
                        "CREDITBUS_DATABASE_URL")
    return problems


def refuse_development_defaults(settings: Settings, command: str) -> None:
    """Raise SettingsError when `command` would run on development defaults in production."""
    problems = production_problems(settings, COMMAND_USES.get(command, ()))
    if problems:
        raise SettingsError(f"CREDITBUS_ENV=production and `creditbus {command}` would run "
                            "with development defaults: " + "; ".join(problems)
                            + " (docs/security.md, 'Production settings')")
