"""All settings of the bus: one typed model, read from `CREDITBUS_*` environment variables.

Every process (publisher, stream worker, sink, services) reads the same variables, so one `.env`
or one docker-compose `environment:` block configures a whole deployment. Each field of
`Settings` declares its variable (`CREDITBUS_` + the field name in capitals), its default and its
meaning once; `docs/settings.md` is generated from the model (`creditbus settings --markdown`)
and `tests/unit/test_settings.py` checks the committed page against it.

To add a setting: one field with `Field(default, description=...)`; a default computed from
other settings is a `default_factory` taking the already-read values, with `_shown(...)` saying
how the documentation prints it. Regenerate the page.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as _SourceError

from creditbus.errors import ConfigError
from creditbus.security.secretfile import SecretFileError, read_secret_file

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_VERSION = "3.9.1"
"""The Apache Kafka version the whole suite passes on (see README, 'Kafka version')."""

ENV_PREFIX = "CREDITBUS_"
INSECURE_DEV_SECRET = "creditbus-dev-only-secret-change-me"
ENVIRONMENTS = ("development", "production")
LOOPBACK = "127.0.0.1"


class SettingsError(ConfigError, ValueError):
    """A setting cannot be used (bad value, secret file readable by others, both a secret and
    its file given); the message names the variable and what to do."""


class Secret:
    """Field marker: never shown (repr, `describe`), and may be read from the owner-only file
    named by `<VARIABLE>_FILE` instead of the variable itself."""


class CommaList:
    """Field marker: the variable holds a comma-separated list (not JSON)."""


def _expand(path: Path | None) -> Path | None:
    return path.expanduser() if path is not None else None


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


UserPath = Annotated[Path, AfterValidator(_expand)]
OptionalPath = Annotated[Path | None, AfterValidator(_expand)]
Stripped = Annotated[str, AfterValidator(str.strip)]


def _shown(text: str) -> dict[str, Any]:
    """How docs/settings.md prints a default that is computed or machine-specific."""
    return {"shown": text}


def _home(values: dict[str, Any]) -> Path:
    return values.get("home") or _home_default()


def _home_default() -> Path:
    return Path(os.path.expanduser("~")) / ".local" / "state" / "creditbus"


def _cache_default() -> Path:
    return Path(os.path.expanduser("~")) / ".cache" / "creditbus"


class _Environment(EnvSettingsSource):
    """The process environment, read as the bus always has: a blank variable means the default,
    a `Secret` field may come from `<VARIABLE>_FILE`, a `CommaList` field is not JSON."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value, key, complex_ = super().get_field_value(field, field_name)
        if isinstance(value, str) and not value.strip():
            value = None
        if _marked(field, Secret):
            env = env_name(field_name)
            path = os.environ.get(f"{env}_FILE", "").strip()
            if path:
                if value is not None:
                    raise SettingsError(f"both {env} and {env}_FILE are set: keep only the file")
                try:
                    value = read_secret_file(Path(path).expanduser())
                except SecretFileError as exc:
                    raise SettingsError(f"{env}_FILE: {exc}") from None
        return value, key, complex_

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any,
                            value_is_complex: bool) -> Any:
        if _marked(field, CommaList):
            return value
        return super().prepare_field_value(field_name, field, value, value_is_complex)


def _marked(field: FieldInfo, marker: type) -> bool:
    return any(isinstance(m, marker) or m is marker for m in field.metadata)


class Settings(BaseSettings):
    """A snapshot of the environment; build one with `Settings.from_env()`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    home: UserPath = Field(default_factory=_home_default,
                           description="Local state: broker data, demo DB.",
                           json_schema_extra=_shown("~/.local/state/creditbus"))
    cache: UserPath = Field(default_factory=_cache_default,
                            description="Cache of the Kafka jars from Maven.",
                            json_schema_extra=_shown("~/.cache/creditbus"))
    bootstrap: str = Field(default_factory=lambda v: local_bootstrap(_home(v)),
                           description="Kafka bootstrap servers.",
                           json_schema_extra=_shown("(the local broker)"))
    kafka_version: str = Field(KAFKA_VERSION, description="Kafka version of the local broker.")
    kafka_heap: str = Field("512m", description="JVM heap of the local broker.")
    kafka_jvm_options: Stripped = Field(
        "", description="Extra JVM options of the local broker, space-separated (the tests use "
                        "-XX:TieredStopAtLevel=1: a short-lived broker starts on 40 % less CPU).")
    topic_prefix: Stripped = Field("credit", description="Prefix of every topic name.")
    partitions: int = Field(4, ge=1, description="Partitions of the topics the bus creates.")
    replication: int = Field(1, ge=1,
                             description="Replication factor of the topics the bus creates.")
    schema_dir: UserPath = Field(REPO_ROOT / "schemas" / "avro",
                                 description="Directory of the .avsc contracts.",
                                 json_schema_extra=_shown("<repo>/schemas/avro"))
    schema_registry_url: str = Field("",
                                     description="Confluent Schema Registry URL (optional).")
    catalog_dir: OptionalPath = Field(None,
                                      description="Extra catalog TOML files (units, groups, ...).")
    person_key_secret: Annotated[bytes, Secret] = Field(
        INSECURE_DEV_SECRET.encode(), repr=False, description="HMAC key of the person key.",
        json_schema_extra=_shown("(dev secret)"))
    database_url: str = Field(default_factory=lambda v: f"sqlite:///{_home(v) / 'platform.db'}",
                              description="Platform DB.",
                              json_schema_extra=_shown("sqlite:///$CREDITBUS_HOME/platform.db"))
    state_dir: UserPath = Field(default_factory=lambda v: _home(v) / "worker",
                                description="Faust table state (RocksDB).",
                                json_schema_extra=_shown("$CREDITBUS_HOME/worker"))
    store: str = Field("rocksdb://", description="Faust table store URL.")
    dedup_horizon_days: int = Field(30, ge=1, description="How long event ids are remembered.")
    maintenance_interval_s: float = Field(3600, gt=0,
                                          description="How often workers look for expiries.")
    worker_metrics_port: int = Field(9101, ge=0, le=65535,
                                     description="Prometheus port of a stream worker.")
    sink_metrics_port: int = Field(9102, ge=0, le=65535,
                                   description="Prometheus port of the sink.")
    query_port: int = Field(8080, ge=0, le=65535, description="HTTP port of the query service.")
    query_tokens: UserPath = Field(default_factory=lambda v: _home(v) / "query-tokens.toml",
                                   description="Query service tokens (SHA-256 hashes).",
                                   json_schema_extra=_shown("$CREDITBUS_HOME/query-tokens.toml"))
    worker_web_port: int = Field(0, ge=0, le=65535,
                                 description="Faust web port of a worker (0: no web server).")
    sink_batch_size: int = Field(500, ge=1, description="Most updates per sink transaction.")
    sink_batch_ms: int = Field(50, ge=0, description="Longest wait before a sink batch is written.")
    log_level: Annotated[str, AfterValidator(lambda v: v.strip().upper())] = Field(
        "INFO", description="Log level of every process.")
    kafka_username: Stripped = Field("",
                                     description="SASL/SCRAM-SHA-512 user (empty: no SASL).")
    kafka_password: Annotated[str, Secret] = Field(
        "", repr=False, description="Its password (made by `creditbus acl apply`).")
    kafka_secure: bool = Field(False,
                               description="`creditbus kafka up` with SASL/SCRAM and ACLs.")
    field_public_key: OptionalPath = Field(
        None, description="Publishers: bus public key (PEM), seals ID + name.")
    field_private_keys: Annotated[tuple[UserPath, ...], CommaList,
                                  BeforeValidator(_comma_list)] = Field(
        (), description="Workers: private keys (PEM), comma-separated.")
    env: Annotated[Literal["development", "production"], BeforeValidator(_lower)] = \
        Field("development",
              description="`production`: processes refuse development defaults "
                          "(docs/security.md).")
    query_host: Stripped = Field(LOOPBACK, description="Address the query service listens on.")
    metrics_host: Stripped = Field(LOOPBACK,
                                   description="Address the worker and sink metrics listen on.")
    query_tls_cert: OptionalPath = Field(
        None, description="Query service: certificate chain (PEM) for HTTPS.")
    query_tls_key: OptionalPath = Field(
        None, description="Query service: its private key (PEM, mode 0600).")
    metrics_tls_cert: OptionalPath = Field(
        None, description="Metrics: certificate chain (PEM) for HTTPS.")
    metrics_tls_key: OptionalPath = Field(
        None, description="Metrics: its private key (PEM, mode 0600).")
    db_sink_role: Stripped = Field("creditbus_sink",
                                   description="PostgreSQL role of the sink (`creditbus db "
                                               "migrate`).")
    db_reader_role: Stripped = Field("creditbus_reader",
                                     description="PostgreSQL role of query, report, verify.")
    db_sink_password: Annotated[str, Secret] = Field(
        "", repr=False, description="Password `db migrate` gives the sink role.")
    db_reader_password: Annotated[str, Secret] = Field(
        "", repr=False, description="Password `db migrate` gives the reader role.")
    db_portal_role: Stripped = Field("creditbus_portal",
                                     description="PostgreSQL role of the portal (reads the "
                                                 "archives, writes cb_portal_*).")
    db_portal_password: Annotated[str, Secret] = Field(
        "", repr=False, description="Password `db migrate` gives the portal role.")
    kafka_ca_file: OptionalPath = Field(
        default_factory=lambda v: local_ca_file(_home(v), v.get("bootstrap", "")),
        description="CA certificate (PEM) clients verify the brokers with; TLS when set.",
        json_schema_extra=_shown("(the local secure broker's CA)"))
    portal_host: Stripped = Field(LOOPBACK, description="Address the portal listens on.")
    portal_port: int = Field(8090, ge=0, le=65535, description="HTTP port of the portal.")
    portal_trust_proxy: bool = Field(
        False, description="Portal behind a reverse proxy: client address and scheme from "
                           "X-Forwarded-For and X-Forwarded-Proto.")
    portal_secure_cookies: Annotated[Literal["auto", "always", "never"],
                                     BeforeValidator(_lower)] = Field(
        "auto", description="Portal session cookies `Secure`: `auto` (over HTTPS), `always`, "
                            "`never` (plain-HTTP development only).")
    portal_max_upload_mb: float = Field(20, gt=0, description="Largest portal upload (MB).")
    portal_session_hours: float = Field(8, gt=0,
                                        description="How long a portal session lasts (hours).")
    portal_kafka_credentials: OptionalPath = Field(
        None, description="Credentials file of `creditbus acl apply`: portal uploads publish "
                          "as the unit's own principal (unset: the configured Kafka login).")
    portal_receipt_timeout_s: float = Field(
        60, gt=0, description="How long a portal upload waits for its receipts (seconds).")

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls)

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process's environment; SettingsError naming the variable when
        a value cannot be used."""
        try:
            return cls()
        except _SourceError as exc:
            if isinstance(exc.__cause__, SettingsError):
                raise exc.__cause__ from None
            raise SettingsError(str(exc)) from None
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    @property
    def uses_dev_secret(self) -> bool:
        return self.person_key_secret == INSECURE_DEV_SECRET.encode()

    @property
    def production(self) -> bool:
        return self.env == "production"

    def describe(self) -> dict[str, str]:
        """Settings as printable strings, secrets hidden."""
        return {name: "***" if name in SECRET_FIELDS else str(getattr(self, name))
                for name in type(self).model_fields}


SECRET_FIELDS = frozenset(name for name, f in Settings.model_fields.items() if _marked(f, Secret))
"""Fields `Settings.describe` never shows."""


def env_name(field_name: str) -> str:
    """The environment variable of a `Settings` field."""
    return ENV_PREFIX + field_name.upper()


def _explain(exc: ValidationError) -> str:
    """One line per unusable variable: its name, what is wrong, the value (never a secret's)."""
    problems = []
    for error in exc.errors(include_url=False):
        if error["type"] == "default_factory_not_called":
            continue  # a computed default skipped because another variable is unusable
        field = str(error["loc"][0]) if error["loc"] else ""
        shown = "" if field in SECRET_FIELDS else f" (got {error.get('input')!r})"
        problems.append(f"{env_name(field)}: {error['msg']}{shown}")
    return "; ".join(problems)


@dataclass(frozen=True)
class EnvVariable:
    """One documented environment variable."""

    env: str
    default: str
    doc: str


def environment_variables() -> tuple[EnvVariable, ...]:
    """Every variable the settings read, in the model's order (a secret's `_FILE` follows it)."""
    rows: list[EnvVariable] = []
    for name, field in Settings.model_fields.items():
        rows.append(EnvVariable(env_name(name), _shown_default(field), field.description or ""))
        if _marked(field, Secret):
            rows.append(EnvVariable(f"{env_name(name)}_FILE", "",
                                    "The same, from a file (mode 0600/0400)."))
    return tuple(rows)


def _shown_default(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "shown" in extra:
        return str(extra["shown"])
    default = field.get_default(call_default_factory=False)
    if default is None or default == ():
        return ""
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def settings_markdown() -> str:
    """The text of docs/settings.md (`creditbus settings --markdown`; a test keeps the two
    equal)."""
    lines = [
        "# Settings", "",
        "Every process reads these environment variables. Generated from the model in "
        "`creditbus/settings.py` by `creditbus settings --markdown`; do not edit by hand.",
        "A blank variable means its default; an unusable value stops the command with one line "
        "naming the variable.", "",
        "| variable | default | meaning |", "| --- | --- | --- |",
    ]
    lines += [f"| `{v.env}` | `{v.default}` | {v.doc} |" for v in environment_variables()]
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
