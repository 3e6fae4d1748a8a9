"""All settings of the bus, read from environment variables with documented defaults.

Every process (publisher, stream worker, sink, query service) reads the same variables, so one
`.env` or one docker-compose `environment:` block configures a whole deployment. The table in
`docs/settings.md` lists them; `tests/unit/test_settings.py` keeps that table and this module in
step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from creditbus.security.secretfile import SecretFileError, read_secret_file

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_VERSION = "3.9.1"
"""The Apache Kafka version the whole suite passes on (see README, 'Kafka version')."""

INSECURE_DEV_SECRET = "creditbus-dev-only-secret-change-me"
ENVIRONMENTS = ("development", "production")
LOOPBACK = "127.0.0.1"


class SettingsError(ValueError):
    """A setting cannot be used (bad value, secret file readable by others, both a secret and
    its file given); the message names the variable and what to do."""


def _home_default() -> Path:
    return Path(os.path.expanduser("~")) / ".local" / "state" / "creditbus"


def _cache_default() -> Path:
    return Path(os.path.expanduser("~")) / ".cache" / "creditbus"


@dataclass(frozen=True)
class Setting:
    """Documentation of one environment variable."""

    env: str
    default: str
    doc: str


SETTINGS_DOC: tuple[Setting, ...] = (
    Setting("CREDITBUS_HOME", "~/.local/state/creditbus", "Local state: broker data, demo DB."),
    Setting("CREDITBUS_CACHE", "~/.cache/creditbus", "Cache of the Kafka jars from Maven."),
    Setting("CREDITBUS_BOOTSTRAP", "(the local broker)", "Kafka bootstrap servers."),
    Setting("CREDITBUS_KAFKA_VERSION", KAFKA_VERSION, "Kafka version of the local broker."),
    Setting("CREDITBUS_KAFKA_HEAP", "512m", "JVM heap of the local broker."),
    Setting("CREDITBUS_TOPIC_PREFIX", "credit", "Prefix of every topic name."),
    Setting("CREDITBUS_PARTITIONS", "4", "Partitions of the topics the bus creates."),
    Setting("CREDITBUS_REPLICATION", "1", "Replication factor of the topics the bus creates."),
    Setting("CREDITBUS_SCHEMA_DIR", "<repo>/schemas/avro", "Directory of the .avsc contracts."),
    Setting("CREDITBUS_SCHEMA_REGISTRY_URL", "", "Confluent Schema Registry URL (optional)."),
    Setting("CREDITBUS_CATALOG_DIR", "", "Extra catalog TOML files (units, groups, ...)."),
    Setting("CREDITBUS_PERSON_KEY_SECRET", "(dev secret)", "HMAC key of the person key."),
    Setting("CREDITBUS_DATABASE_URL", "sqlite:///$CREDITBUS_HOME/platform.db", "Platform DB."),
    Setting("CREDITBUS_STATE_DIR", "$CREDITBUS_HOME/worker", "Faust table state (RocksDB)."),
    Setting("CREDITBUS_STORE", "rocksdb://", "Faust table store URL."),
    Setting("CREDITBUS_DEDUP_HORIZON_DAYS", "30", "How long event ids are remembered."),
    Setting("CREDITBUS_MAINTENANCE_INTERVAL_S", "3600", "How often workers look for expiries."),
    Setting("CREDITBUS_WORKER_METRICS_PORT", "9101", "Prometheus port of a stream worker."),
    Setting("CREDITBUS_SINK_METRICS_PORT", "9102", "Prometheus port of the sink."),
    Setting("CREDITBUS_QUERY_PORT", "8080", "HTTP port of the query service."),
    Setting("CREDITBUS_QUERY_TOKENS", "$CREDITBUS_HOME/query-tokens.toml",
            "Query service tokens (SHA-256 hashes)."),
    Setting("CREDITBUS_WORKER_WEB_PORT", "0", "Faust web port of a worker (0: no web server)."),
    Setting("CREDITBUS_SINK_BATCH_SIZE", "500", "Most updates per sink transaction."),
    Setting("CREDITBUS_SINK_BATCH_MS", "50", "Longest wait before a sink batch is written."),
    Setting("CREDITBUS_LOG_LEVEL", "INFO", "Log level of every process."),
    Setting("CREDITBUS_KAFKA_USERNAME", "", "SASL/SCRAM-SHA-512 user (empty: no SASL)."),
    Setting("CREDITBUS_KAFKA_PASSWORD", "", "Its password (made by `creditbus acl apply`)."),
    Setting("CREDITBUS_KAFKA_SECURE", "false", "`creditbus kafka up` with SASL/SCRAM and ACLs."),
    Setting("CREDITBUS_FIELD_PUBLIC_KEY", "", "Publishers: bus public key (PEM), seals ID + name."),
    Setting("CREDITBUS_FIELD_PRIVATE_KEYS", "", "Workers: private keys (PEM), comma-separated."),
    Setting("CREDITBUS_ENV", "development",
            "`production`: processes refuse development defaults (docs/security.md)."),
    Setting("CREDITBUS_PERSON_KEY_SECRET_FILE", "",
            "File (mode 0600/0400) holding the person-key secret, instead of the variable."),
    Setting("CREDITBUS_KAFKA_PASSWORD_FILE", "",
            "File (mode 0600/0400) holding the Kafka password, instead of the variable."),
    Setting("CREDITBUS_QUERY_HOST", LOOPBACK, "Address the query service listens on."),
    Setting("CREDITBUS_METRICS_HOST", LOOPBACK, "Address the worker and sink metrics listen on."),
    Setting("CREDITBUS_QUERY_TLS_CERT", "", "Query service: certificate chain (PEM) for HTTPS."),
    Setting("CREDITBUS_QUERY_TLS_KEY", "", "Query service: its private key (PEM, mode 0600)."),
    Setting("CREDITBUS_METRICS_TLS_CERT", "", "Metrics: certificate chain (PEM) for HTTPS."),
    Setting("CREDITBUS_METRICS_TLS_KEY", "", "Metrics: its private key (PEM, mode 0600)."),
    Setting("CREDITBUS_DB_SINK_ROLE", "creditbus_sink",
            "PostgreSQL role of the sink (`creditbus db migrate`)."),
    Setting("CREDITBUS_DB_READER_ROLE", "creditbus_reader",
            "PostgreSQL role of query, report, verify."),
    Setting("CREDITBUS_DB_SINK_PASSWORD", "", "Password `db migrate` gives the sink role."),
    Setting("CREDITBUS_DB_SINK_PASSWORD_FILE", "", "The same, from a file (mode 0600/0400)."),
    Setting("CREDITBUS_DB_READER_PASSWORD", "", "Password `db migrate` gives the reader role."),
    Setting("CREDITBUS_DB_READER_PASSWORD_FILE", "", "The same, from a file (mode 0600/0400)."),
    Setting("CREDITBUS_KAFKA_CA_FILE", "(the local secure broker's CA)",
            "CA certificate (PEM) clients verify the brokers with; TLS when set."),
)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value.strip() else default


def _secret(name: str, default: str) -> str:
    """`name`, or the content of the file named by `name`_FILE (owner-only permissions)."""
    path = os.environ.get(f"{name}_FILE", "").strip()
    if not path:
        return _env(name, default)
    if os.environ.get(name, "").strip():
        raise SettingsError(f"both {name} and {name}_FILE are set: keep only the file")
    try:
        return read_secret_file(Path(path).expanduser())
    except SecretFileError as exc:
        raise SettingsError(f"{name}_FILE: {exc}") from None


def _optional_path(name: str) -> Path | None:
    value = _env(name, "").strip()
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment; build one with `Settings.from_env()`."""

    home: Path
    cache: Path
    bootstrap: str
    kafka_version: str
    kafka_heap: str
    topic_prefix: str
    partitions: int
    replication: int
    schema_dir: Path
    schema_registry_url: str
    catalog_dir: Path | None
    person_key_secret: bytes
    database_url: str
    state_dir: Path
    store: str
    dedup_horizon_days: int
    maintenance_interval_s: float
    worker_metrics_port: int
    sink_metrics_port: int
    query_port: int
    query_tokens: Path
    worker_web_port: int
    sink_batch_size: int
    sink_batch_ms: int
    log_level: str
    kafka_username: str = ""
    kafka_password: str = field(default="", repr=False)
    kafka_secure: bool = False
    field_public_key: Path | None = None
    field_private_keys: tuple[Path, ...] = ()
    env: str = "development"
    query_host: str = LOOPBACK
    metrics_host: str = LOOPBACK
    query_tls_cert: Path | None = None
    query_tls_key: Path | None = None
    metrics_tls_cert: Path | None = None
    metrics_tls_key: Path | None = None
    db_sink_role: str = "creditbus_sink"
    db_reader_role: str = "creditbus_reader"
    db_sink_password: str = field(default="", repr=False)
    db_reader_password: str = field(default="", repr=False)
    kafka_ca_file: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("CREDITBUS_HOME", str(_home_default()))).expanduser()
        catalog_dir = _env("CREDITBUS_CATALOG_DIR", "")
        public_key = _env("CREDITBUS_FIELD_PUBLIC_KEY", "").strip()
        bootstrap = _env("CREDITBUS_BOOTSTRAP", "") or local_bootstrap(home)
        env = _env("CREDITBUS_ENV", "development").strip().lower()
        if env not in ENVIRONMENTS:
            raise SettingsError(f"CREDITBUS_ENV is {env!r}: use one of {', '.join(ENVIRONMENTS)}")
        return cls(
            home=home,
            cache=Path(_env("CREDITBUS_CACHE", str(_cache_default()))).expanduser(),
            bootstrap=bootstrap,
            kafka_version=_env("CREDITBUS_KAFKA_VERSION", KAFKA_VERSION),
            kafka_heap=_env("CREDITBUS_KAFKA_HEAP", "512m"),
            topic_prefix=_env("CREDITBUS_TOPIC_PREFIX", "credit"),
            partitions=int(_env("CREDITBUS_PARTITIONS", "4")),
            replication=int(_env("CREDITBUS_REPLICATION", "1")),
            schema_dir=Path(_env("CREDITBUS_SCHEMA_DIR", str(REPO_ROOT / "schemas" / "avro"))),
            schema_registry_url=_env("CREDITBUS_SCHEMA_REGISTRY_URL", ""),
            catalog_dir=Path(catalog_dir) if catalog_dir else None,
            person_key_secret=_secret("CREDITBUS_PERSON_KEY_SECRET",
                                      INSECURE_DEV_SECRET).encode(),
            database_url=_env("CREDITBUS_DATABASE_URL", f"sqlite:///{home / 'platform.db'}"),
            state_dir=Path(_env("CREDITBUS_STATE_DIR", str(home / "worker"))),
            store=_env("CREDITBUS_STORE", "rocksdb://"),
            dedup_horizon_days=int(_env("CREDITBUS_DEDUP_HORIZON_DAYS", "30")),
            maintenance_interval_s=float(_env("CREDITBUS_MAINTENANCE_INTERVAL_S", "3600")),
            worker_metrics_port=int(_env("CREDITBUS_WORKER_METRICS_PORT", "9101")),
            sink_metrics_port=int(_env("CREDITBUS_SINK_METRICS_PORT", "9102")),
            query_port=int(_env("CREDITBUS_QUERY_PORT", "8080")),
            query_tokens=Path(_env("CREDITBUS_QUERY_TOKENS",
                                   str(home / "query-tokens.toml"))).expanduser(),
            worker_web_port=int(_env("CREDITBUS_WORKER_WEB_PORT", "0")),
            sink_batch_size=int(_env("CREDITBUS_SINK_BATCH_SIZE", "500")),
            sink_batch_ms=int(_env("CREDITBUS_SINK_BATCH_MS", "50")),
            log_level=_env("CREDITBUS_LOG_LEVEL", "INFO").upper(),
            kafka_username=_env("CREDITBUS_KAFKA_USERNAME", "").strip(),
            kafka_password=_secret("CREDITBUS_KAFKA_PASSWORD", ""),
            kafka_secure=_env("CREDITBUS_KAFKA_SECURE", "false").strip().lower()
            in {"1", "true", "yes", "on"},
            field_public_key=Path(public_key).expanduser() if public_key else None,
            field_private_keys=tuple(
                Path(p.strip()).expanduser()
                for p in _env("CREDITBUS_FIELD_PRIVATE_KEYS", "").split(",") if p.strip()
            ),
            env=env,
            query_host=_env("CREDITBUS_QUERY_HOST", LOOPBACK).strip(),
            metrics_host=_env("CREDITBUS_METRICS_HOST", LOOPBACK).strip(),
            query_tls_cert=_optional_path("CREDITBUS_QUERY_TLS_CERT"),
            query_tls_key=_optional_path("CREDITBUS_QUERY_TLS_KEY"),
            metrics_tls_cert=_optional_path("CREDITBUS_METRICS_TLS_CERT"),
            metrics_tls_key=_optional_path("CREDITBUS_METRICS_TLS_KEY"),
            db_sink_role=_env("CREDITBUS_DB_SINK_ROLE", "creditbus_sink").strip(),
            db_reader_role=_env("CREDITBUS_DB_READER_ROLE", "creditbus_reader").strip(),
            db_sink_password=_secret("CREDITBUS_DB_SINK_PASSWORD", ""),
            db_reader_password=_secret("CREDITBUS_DB_READER_PASSWORD", ""),
            kafka_ca_file=(_optional_path("CREDITBUS_KAFKA_CA_FILE")
                           or local_ca_file(home, bootstrap)),
        )

    @property
    def uses_dev_secret(self) -> bool:
        return self.person_key_secret == INSECURE_DEV_SECRET.encode()

    @property
    def production(self) -> bool:
        return self.env == "production"

    def describe(self) -> dict[str, str]:
        """Settings as printable strings, secrets hidden."""
        shown: dict[str, str] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            secret = f.name in SECRET_FIELDS
            shown[f.name] = "***" if secret else str(value)
        return shown


SECRET_FIELDS = frozenset({"person_key_secret", "kafka_password", "db_sink_password",
                           "db_reader_password"})
"""Fields `Settings.describe` never shows."""


def settings_markdown() -> str:
    """The table of docs/settings.md (a test keeps the two equal)."""
    lines = [
        "# Settings", "",
        "Every process reads these environment variables (module `creditbus/settings.py`).", "",
        "| variable | default | meaning |", "| --- | --- | --- |",
    ]
    lines += [f"| `{s.env}` | `{s.default}` | {s.doc} |" for s in SETTINGS_DOC]
    return "\n".join(lines) + "\n"


def broker_state_file(home: Path) -> Path:
    """Where `creditbus kafka up` writes the local broker's address for the other commands."""
    return home / "kafka" / "broker.json"


def local_ca_file(home: Path, bootstrap: str) -> Path | None:
    """The CA certificate of the local broker when it runs in secure mode (TLS) and serves
    `bootstrap`, else None."""
    try:
        state = json.loads(broker_state_file(home).read_text())
        path, served = str(state.get("ca_file") or ""), str(state["bootstrap"])
    except (OSError, ValueError, AttributeError, KeyError):
        return None
    return Path(path) if path and served == bootstrap else None


def local_bootstrap(home: Path) -> str:
    """The bootstrap address of the local broker, or '' when none was started."""
    path = broker_state_file(home)
    try:
        return str(json.loads(path.read_text())["bootstrap"])
    except (OSError, ValueError, KeyError):
        return ""
