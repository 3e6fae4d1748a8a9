"""The production-like topology is consistent: docker-compose.yml, the Dockerfile, the Prometheus
and Grafana files under deploy/, docs/metrics.md, the settings and the CLI agree with each other,
and it is secure by default: every Kafka listener encrypted and authenticated, every process
its own principal of the catalog's ACL plan, every client verifying the brokers' CA, every
secret from the uncommitted deploy/secrets.env.

No Docker engine is needed (nor started): the files are parsed, rendered with the example
secrets file and cross-checked.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from creditbus.settings import environment_variables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCES = (
    ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
)
GRAFANA_PROVIDERS = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "creditbus.yml"
DASHBOARD_FILE = ROOT / "deploy" / "grafana" / "dashboards" / "creditbus.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"

KAFKA_NODES = ("kafka-1", "kafka-2", "kafka-3")
APP_SERVICES = ("kafka-setup", "worker", "sink", "query", "portal")
"""The services of the creditbus image that are Kafka clients (db-migrate only migrates)."""
PROCESS_SERVICES = ("worker", "sink", "query", "portal")
"""The long-running processes: each its own Kafka principal."""
ONE_SHOT_SERVICES = ("kafka-certs", *(f"{node}-format" for node in KAFKA_NODES))
EXPECTED_SERVICES = {*KAFKA_NODES, *APP_SERVICES, *ONE_SHOT_SERVICES, "db-migrate", "postgres",
                     "prometheus", "grafana"}
SECRETS_EXAMPLE = ROOT / "deploy" / "secrets.env.example"
SECRETS_FILE = "deploy/secrets.env"
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
# service -> the setting holding the port its /metrics is served on (and the Prometheus job)
METRICS_PORT_SETTING = {
    "worker": "CREDITBUS_WORKER_METRICS_PORT",
    "sink": "CREDITBUS_SINK_METRICS_PORT",
    "query": "CREDITBUS_QUERY_PORT",
}
SETTING_DEFAULTS = {s.env: s.default for s in environment_variables()}
CREDITBUS_VAR = re.compile(r"\bCREDITBUS_[A-Z0-9_]+\b")


# --- loading and small parsers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment:` as a dict, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str | None]:
    """`depends_on:` as {service: condition or None}, from either the list or the mapping form."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps)
    return {name: (spec or {}).get("condition") for name, spec in deps.items()}


def volume_mounts(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(source, target) of each mount; source None for an anonymous volume."""
    mounts: list[tuple[str | None, str]] = []
    for item in service.get("volumes") or []:
        if isinstance(item, dict):
            mounts.append((item.get("source"), item["target"]))
            continue
        parts = str(item).split(":")
        if len(parts) == 1:
            mounts.append((None, parts[0]))
        else:
            mounts.append((parts[0], parts[1]))
    return mounts


def is_host_path(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def container_ports(service: dict[str, Any]) -> set[int]:
    """Container-side ports of `ports:` (published) and `expose:`."""
    found: set[int] = set()
    for item in service.get("ports") or []:
        if isinstance(item, dict):
            found.add(int(item["target"]))
        else:
            found.add(int(str(item).split("/")[0].split(":")[-1]))
    for item in service.get("expose") or []:
        found.add(int(str(item).split("/")[0]))
    return found


def published_ports(service: dict[str, Any]) -> dict[int, int]:
    """{container port: host port} of `ports:`."""
    found: dict[int, int] = {}
    for item in service.get("ports") or []:
        if isinstance(item, dict):
            found[int(item["target"])] = int(item.get("published", item["target"]))
            continue
        parts = str(item).split("/")[0].split(":")
        found[int(parts[-1])] = int(parts[-2]) if len(parts) > 1 else int(parts[-1])
    return found


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'PLAINTEXT://host:9092,CONTROLLER://:9093' -> {'PLAINTEXT': ('host', 9092), ...}."""
    parsed: dict[str, tuple[str, int]] = {}
    for item in value.split(","):
        name, address = item.strip().split("://", 1)
        host, port = address.rsplit(":", 1)
        parsed[name] = (host, int(port))
    return parsed


def command_argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return [str(c) for c in command] if isinstance(command, list) else str(command).split()


def scrape_targets(job: dict[str, Any]) -> set[tuple[str, int]]:
    """(host, port) of a scrape job's static targets and DNS service discovery names."""
    found: set[tuple[str, int]] = set()
    for static in job.get("static_configs") or []:
        for target in static.get("targets") or []:
            host, port = str(target).rsplit(":", 1)
            found.add((host, int(port)))
    for dns in job.get("dns_sd_configs") or []:
        for name in dns.get("names") or []:
            found.add((str(name), int(dns["port"])))
    return found


_PROMQL_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery selectors
    text = _PROMQL_LABEL_LISTS.sub("", text)  # by (...), on (...), ...
    names: set[str] = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function call
        if match.group() not in _PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def documented_metric_rows() -> dict[str, tuple[str, set[str]]]:
    """{metric name: (type, labels)} from the tables of docs/metrics.md."""
    rows = re.findall(
        r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|",
        _metrics_doc(),
        flags=re.MULTILINE,
    )
    return {name: (kind, set(re.findall(r"`([a-z_]+)`", labels))) for name, kind, labels in rows}


def documented_metrics() -> dict[str, str]:
    """{metric name: type} from the tables of docs/metrics.md (rows '| `name` | type | ...')."""
    rows = re.findall(
        r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*([a-z]+)\s*\|",
        _metrics_doc(),
        flags=re.MULTILINE,
    )
    return dict(rows)


def _metrics_doc() -> str:
    return METRICS_DOC.read_text(encoding="utf-8")


def dashboard_exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        for value in node.values():
            found += dashboard_exprs(value)
        return found
    if isinstance(node, list):
        return [e for item in node for e in dashboard_exprs(item)]
    return []


def datasource_refs(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        for value in node.values():
            found += datasource_refs(value)
        return found
    if isinstance(node, list):
        return [d for item in node for d in datasource_refs(item)]
    return []


def provisioned_datasource() -> dict[str, Any]:
    data = yaml.safe_load(GRAFANA_DATASOURCES.read_text(encoding="utf-8"))
    prom = [d for d in data["datasources"] if d["type"] == "prometheus"]
    assert len(prom) == 1, "exactly one Prometheus datasource is provisioned"
    return prom[0]


def subparsers_of(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


# --- the compose file itself ---------------------------------------------------------------------


def test_the_topology_has_every_service(services: dict[str, Any]) -> None:
    assert EXPECTED_SERVICES <= set(services), EXPECTED_SERVICES - set(services)


def test_depends_on_names_existing_services(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dep, condition in depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            assert dep != name
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health check"
            if condition == "service_completed_successfully":
                restart = str(services[dep].get("restart", "no"))
                assert restart in ("no", "on-failure"), f"{dep} is one-shot, it must not restart"


def test_app_services_wait_for_what_they_need(services: dict[str, Any]) -> None:
    for node in KAFKA_NODES:
        assert depends_on(services["kafka-setup"]).get(node) == "service_healthy"
        assert depends_on(services[node]).get("kafka-certs") == "service_completed_successfully"
        assert depends_on(services[node]).get(f"{node}-format") == \
            "service_completed_successfully"
    for name in PROCESS_SERVICES:
        assert depends_on(services[name]).get("kafka-setup") == "service_completed_successfully"
    assert depends_on(services["db-migrate"]).get("postgres") == "service_healthy"
    for name in ("sink", "query", "portal"):
        assert depends_on(services[name]).get("db-migrate") == "service_completed_successfully"
    assert services["worker"]["deploy"]["replicas"] == 2


def test_only_the_migration_uses_the_database_owner(services: dict[str, Any]) -> None:
    """Least privilege: `db migrate` runs once with the owner; the sink writes with its role,
    the query service reads with the reader role, the portal with its own
    (creditbus/platformdb/roles.py)."""
    from creditbus.settings import Settings

    defaults = Settings.from_env()
    users = {name: re.match(r"postgresql://([^:@]+)", environment(service)[
                 "CREDITBUS_DATABASE_URL"]).group(1)  # type: ignore[union-attr]
             for name, service in services.items()
             if "CREDITBUS_DATABASE_URL" in environment(service)}
    owner = environment(services["postgres"])["POSTGRES_USER"]
    assert users == {"db-migrate": owner, "sink": defaults.db_sink_role,
                     "query": defaults.db_reader_role, "portal": defaults.db_portal_role}
    assert services["db-migrate"]["command"] == ["db", "migrate"]
    assert str(services["db-migrate"]["restart"]) == "no"


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = {
        source
        for service in compose["services"].values()
        for source, _ in volume_mounts(service)
        if source is not None and not is_host_path(source)
    }
    assert used - declared == set(), f"used but not declared: {sorted(used - declared)}"
    assert declared - used == set(), f"declared but not used: {sorted(declared - used)}"
    for node in KAFKA_NODES:
        env = environment(compose["services"][node])
        targets = {t for s, t in volume_mounts(compose["services"][node]) if s in declared}
        assert env["KAFKA_LOG_DIRS"] in targets, f"{node} keeps its data in a named volume"


def test_mounted_host_paths_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for source, _ in volume_mounts(service):
            if source is not None and is_host_path(source):
                assert source.startswith("./"), f"{name}: mount {source} relative to the repo"
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = (
                "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            )
            assert (ROOT / context / dockerfile).is_file(), f"{name} builds from {context}"


def test_every_creditbus_variable_is_documented(services: dict[str, Any]) -> None:
    documented = set(SETTING_DEFAULTS)
    for name, service in services.items():
        for var in environment(service):
            if var.startswith("CREDITBUS_"):
                assert var in documented, f"{name} sets {var}, which Settings does not know"
    # also variables interpolated from .env, and those the image sets
    for path in (COMPOSE_FILE, DOCKERFILE):
        unknown = set(CREDITBUS_VAR.findall(path.read_text(encoding="utf-8"))) - documented
        assert unknown == set(), f"{path.name} names undocumented {sorted(unknown)}"


def test_app_services_get_the_settings_of_the_brief(services: dict[str, Any]) -> None:
    worker = environment(services["worker"])
    assert worker["CREDITBUS_REPLICATION"] == "3"
    assert worker["CREDITBUS_PARTITIONS"] == "12"
    assert worker["CREDITBUS_STATE_DIR"] == "/var/lib/creditbus/worker"
    assert worker["CREDITBUS_PERSON_KEY_SECRET"].startswith("${CREDITBUS_PERSON_KEY_SECRET:?")
    assert any(t == worker["CREDITBUS_STATE_DIR"] for _, t in volume_mounts(services["worker"]))
    sink = environment(services["sink"])
    assert sink["CREDITBUS_DATABASE_URL"].startswith("postgresql://creditbus_sink:${DB_SINK_PASSWORD")
    assert sink["CREDITBUS_DATABASE_URL"].endswith("@postgres:5432/platform")
    postgres = environment(services["postgres"])
    assert (postgres["POSTGRES_DB"], postgres["POSTGRES_USER"]) == ("platform", "creditbus")
    # the topic settings are the same for every process of the bus
    for key in ("CREDITBUS_TOPIC_PREFIX", "CREDITBUS_PARTITIONS", "CREDITBUS_REPLICATION"):
        values = {environment(services[name]).get(key) for name in APP_SERVICES}
        assert len(values) == 1, f"{key} differs between the app services: {values}"


# --- ports: settings, compose, Prometheus --------------------------------------------------------


def test_metric_ports_are_the_settings_defaults(services: dict[str, Any]) -> None:
    for name, setting in METRICS_PORT_SETTING.items():
        default = int(SETTING_DEFAULTS[setting])
        env = environment(services[name])
        assert int(env.get(setting, default)) == default, f"{name}: {setting} is not {default}"
        assert default in container_ports(services[name]), f"{name} does not expose {default}"
        health = json.dumps(services[name].get("healthcheck", {}).get("test", ""))
        assert not health or f":{default}/" in health, f"{name}'s health check uses another port"
    assert published_ports(services["query"]).get(8080) == 8080, "the query port is published"


def test_prometheus_scrapes_the_compose_services(
    prometheus: dict[str, Any], services: dict[str, Any]
) -> None:
    assert prometheus["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    for name, setting in METRICS_PORT_SETTING.items():
        assert name in jobs, f"no scrape job for {name}"
        targets = scrape_targets(jobs[name])
        assert targets == {(name, int(SETTING_DEFAULTS[setting]))}, f"job {name}: {targets}"
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
    # the replicated workers are found by DNS, so that every replica is scraped
    assert jobs["worker"].get("dns_sd_configs"), "scrape every worker replica (dns_sd_configs)"
    for job in jobs.values():
        for host, _ in scrape_targets(job):
            assert host == "localhost" or host in services, f"{job['job_name']} scrapes {host}"


def test_prometheus_config_is_mounted(services: dict[str, Any]) -> None:
    mounts = dict(volume_mounts(services["prometheus"]))
    assert mounts.get("./deploy/prometheus/prometheus.yml") == "/etc/prometheus/prometheus.yml"
    assert published_ports(services["prometheus"]).get(9090) == 9090


# --- Kafka ---------------------------------------------------------------------------------------


def test_kafka_quorum_voters_are_the_three_nodes(services: dict[str, Any]) -> None:
    envs = {node: environment(services[node]) for node in KAFKA_NODES}
    node_ids = {node: int(env["KAFKA_NODE_ID"]) for node, env in envs.items()}
    assert len(set(node_ids.values())) == len(KAFKA_NODES), f"node ids not unique: {node_ids}"
    for node, env in envs.items():
        assert services[node]["image"] == "apache/kafka:3.9.1"
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        voters = {}
        for voter in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","):
            node_id, address = voter.split("@")
            host, port = address.rsplit(":", 1)
            voters[int(node_id)] = (host, int(port))
        assert {vid: host for vid, (host, _) in voters.items()} == {
            nid: n for n, nid in node_ids.items()
        }, f"{node}: voters {voters} are not the nodes {node_ids}"
        controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
        own = listeners(env["KAFKA_LISTENERS"])
        assert voters[node_ids[node]][1] == own[controller][1], f"{node}: controller port"
        assert controller not in listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    # one cluster: the same cluster id (the apache/kafka image reads CLUSTER_ID) and quorum
    for key in ("CLUSTER_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS"):
        assert len({env[key] for env in envs.values()}) == 1, f"{key} differs between the nodes"


def test_kafka_internal_topics_survive_one_node_down(services: dict[str, Any]) -> None:
    for node in KAFKA_NODES:
        env = environment(services[node])
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2
        assert int(env.get("KAFKA_MIN_INSYNC_REPLICAS", "1")) < len(KAFKA_NODES)
    for name in APP_SERVICES:
        replication = int(environment(services[name])["CREDITBUS_REPLICATION"])
        assert 1 < replication <= len(KAFKA_NODES), f"{name}: replication {replication}"


def test_bootstrap_names_the_kafka_listeners(services: dict[str, Any]) -> None:
    internal: set[tuple[str, int]] = set()
    for node in KAFKA_NODES:
        env = environment(services[node])
        name = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
        advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        own = listeners(env["KAFKA_LISTENERS"])
        host, port = advertised[name]
        assert host in (node, services[node].get("hostname")), f"{node} advertises {host}"
        assert own[name][1] == port, f"{node}: {name} listens on {own[name][1]}, not {port}"
        internal.add((host, port))
        # listeners for clients outside the compose network are published on the same port
        for other, (_, other_port) in advertised.items():
            if other != name:
                assert published_ports(services[node]).get(own[other][1]) == other_port
    for app in APP_SERVICES:
        bootstrap = environment(services[app])["CREDITBUS_BOOTSTRAP"]
        named = {(h, int(p)) for h, p in (a.strip().rsplit(":", 1) for a in bootstrap.split(","))}
        assert named == internal, f"{app} bootstraps from {named}, the brokers are {internal}"


# --- security: TLS, principals, ACLs, secrets ----------------------------------------------------


def example_secrets() -> dict[str, str]:
    """The variables of deploy/secrets.env.example (name -> value as committed)."""
    pairs = {}
    for line in SECRETS_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def render(value: str, secrets: dict[str, str]) -> str:
    """Compose's interpolation of one value with `secrets` (as `--env-file` would give them)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        found = secrets.get(name, "")
        if op in (":?", "?") and not found:
            raise AssertionError(f"{name} is required: {arg}")
        if op in (":-", "-") and not found:
            return arg
        return found

    return INTERPOLATION.sub(one, value).replace("$$", "$")


@pytest.fixture(scope="module")
def secrets() -> dict[str, str]:
    """A filled-in secrets file: every example variable with a distinct test value."""
    return {name: f"test-{name.lower().replace('_', '-')}-0123456789abcdef"
            for name in example_secrets()} | {"KAFKA_EXTERNAL_HOST": "bus.example.org"}


@pytest.fixture(scope="module")
def rendered(services: dict[str, Any], secrets: dict[str, str]) -> dict[str, dict[str, str]]:
    """Every service's environment, rendered with the filled-in secrets file."""
    return {name: {k: render(v, secrets) for k, v in environment(service).items()}
            for name, service in services.items()}


def jaas_username(jaas: str) -> str | None:
    found = re.search(r'username="([^"]*)"', jaas)
    return found.group(1) if found else None


def test_secrets_come_from_the_uncommitted_env_file(services: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = {m.group(1) for m in INTERPOLATION.finditer(text) if m.group(2) in (":?", "?")}
    example = example_secrets()
    assert required <= set(example), \
        f"not in {SECRETS_EXAMPLE.name}: {sorted(required - set(example))}"
    assert all(value == "" for value in example.values()), "the example holds no secret"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert SECRETS_FILE in ignored and ".env" in ignored
    assert SECRETS_FILE in text and f"--env-file {SECRETS_FILE}" in text
    # no secret is written into the file itself: passwords and keys are interpolated
    for name, service in services.items():
        for key, value in environment(service).items():
            if re.search(r"PASSWORD|SECRET", key) and not key.endswith("_FILE"):
                assert INTERPOLATION.search(value), f"{name}: {key} is not from the secrets"
        for key, value in environment(service).items():
            if key.endswith("JAAS_CONFIG") and "password=" in value:
                assert 'password="${' in value, f"{name}: {key} holds a literal password"


def test_every_kafka_listener_is_encrypted_and_authenticated(
    rendered: dict[str, dict[str, str]]
) -> None:
    from creditbus.kafka.clientconf import SCRAM_MECHANISM

    for node in KAFKA_NODES:
        env = rendered[node]
        protocols = dict(item.split(":") for item in
                         env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        own = listeners(env["KAFKA_LISTENERS"])
        assert set(own) == set(protocols), f"{node}: listeners without a protocol"
        controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
        inter = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
        for name, protocol in protocols.items():
            # the image expects JKS variables of its own when a listener is named *SSL*
            assert "SSL" not in name, f"{node}: listener name {name}"
            assert protocol in ("SSL", "SASL_SSL"), f"{node}: {name} is {protocol}"
            if name == controller:
                assert protocol == "SASL_SSL" or env.get(
                    f"KAFKA_LISTENER_NAME_{name}_SSL_CLIENT_AUTH") == "required", \
                    f"{node}: the controller listener does not authenticate its peers"
            else:  # clients and brokers: SCRAM over TLS
                assert protocol == "SASL_SSL", f"{node}: {name} is {protocol}"
                key = f"KAFKA_LISTENER_NAME_{name}_SCRAM___SHA___512_SASL_JAAS_CONFIG"
                assert "ScramLoginModule required" in env[key], f"{node}: {key}"
        assert protocols[inter] == "SASL_SSL"
        assert jaas_username(env[f"KAFKA_LISTENER_NAME_{inter}_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
                             ) == "admin", f"{node}: brokers authenticate to each other as admin"
        assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == SCRAM_MECHANISM
        assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == SCRAM_MECHANISM
        assert (env["KAFKA_SSL_KEYSTORE_TYPE"], env["KAFKA_SSL_TRUSTSTORE_TYPE"]) == ("PEM", "PEM")
        assert env["KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM"] == "https"
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == \
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        assert "SSL://" not in env["KAFKA_ADVERTISED_LISTENERS"]


def test_every_node_has_a_certificate_for_the_names_it_is_reached_by(
    services: dict[str, Any], rendered: dict[str, dict[str, str]], secrets: dict[str, str]
) -> None:
    from creditbus.kafka.tls import CA_CERT

    certs = services["kafka-certs"]
    argv = [render(a, secrets) for a in command_argv(certs)]
    options: dict[str, list[str]] = {}
    for flag, value in zip(argv[2::2], argv[3::2], strict=True):
        options.setdefault(flag, []).append(value)
    mounts = dict((t, s) for s, t in volume_mounts(certs))
    out_volume, ca_volume = mounts[options["--out"][0]], mounts[options["--ca-dir"][0]]
    assert out_volume != ca_volume, "the CA key stays out of the volume the nodes mount"
    super_users = set()
    for node in KAFKA_NODES:
        env = rendered[node]
        hostname = services[node].get("hostname", node)
        assert hostname in options["--broker"], f"no certificate for {hostname}"
        # the certificate names every host clients are told to connect to
        names = {hostname, *options.get("--host", [])}
        advertised = {host for host, _ in listeners(env["KAFKA_ADVERTISED_LISTENERS"]).values()}
        assert advertised <= names, f"{node} advertises {advertised - names}, not certified"
        node_mounts = dict((t, s) for s, t in volume_mounts(services[node]))
        keystore = Path(env["KAFKA_SSL_KEYSTORE_LOCATION"])
        truststore = Path(env["KAFKA_SSL_TRUSTSTORE_LOCATION"])
        assert keystore.name == f"{hostname}.keystore.pem" and truststore.name == CA_CERT
        assert node_mounts.get(str(keystore.parent)) == out_volume
        assert node_mounts.get(str(truststore.parent)) == out_volume
        assert ca_volume not in node_mounts.values()
        super_users = set(env["KAFKA_SUPER_USERS"].split(";"))
        # the controllers know the nodes by their certificates (User:CN=<name>)
        assert {f"User:CN={services[n].get('hostname', n)}" for n in KAFKA_NODES} | {
            "User:admin"} == super_users, f"{node}: super users {super_users}"


def test_every_process_is_its_own_principal_of_the_acl_plan(
    services: dict[str, Any], rendered: dict[str, dict[str, str]]
) -> None:
    from creditbus.catalog import default_catalog
    from creditbus.security.acl import plan_principals
    from creditbus.topics import edge_group_id, worker_app_id

    setup = rendered["kafka-setup"]
    prefix = setup["CREDITBUS_TOPIC_PREFIX"]
    assert "CREDITBUS_CATALOG_DIR" not in setup  # the plan is the default catalog's
    plans = {p.name: p for p in plan_principals(
        prefix, [u.code for u in default_catalog().units])}
    # kafka-setup runs as the super user and gives each process the password it runs with
    admin_env = setup["CREDITBUS_KAFKA_USERNAME"], setup["CREDITBUS_KAFKA_PASSWORD"]
    node = rendered[KAFKA_NODES[0]]
    assert admin_env[0] == "admin" and f"User:{admin_env[0]}" in node["KAFKA_SUPER_USERS"]
    assert f'password="{admin_env[1]}"' in node[
        f"KAFKA_LISTENER_NAME_{node['KAFKA_INTER_BROKER_LISTENER_NAME']}"
        "_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
    argv = command_argv(services["kafka-setup"])
    chosen = dict(pair.split("=", 1) for flag, pair in itertools.pairwise(argv)
                  if flag == "--password-from-env")
    users = {}
    for name in PROCESS_SERVICES:
        env = rendered[name]
        user = env["CREDITBUS_KAFKA_USERNAME"]
        assert user in plans and plans[user].role == name, f"{name} runs as {user}"
        assert user in chosen, f"kafka-setup does not set {user}'s password"
        assert setup[chosen[user]] == env["CREDITBUS_KAFKA_PASSWORD"], f"{user}'s password"
        assert env["CREDITBUS_TOPIC_PREFIX"] == prefix
        users[name] = user
    assert len(set(users.values())) == len(users), "one user per process"
    assert len({rendered[n]["CREDITBUS_KAFKA_PASSWORD"] for n in PROCESS_SERVICES}) == len(users)
    assert set(chosen) == set(users.values())
    # the ACLs cover what each process does with its defaults: the worker's consumer group,
    # the sink's default group (`creditbus sink` without --group), the query's audit topic
    groups = {name: {g.name for g in plans[user].grants if g.resource == "GROUP"}
              for name, user in users.items()}
    assert {worker_app_id(prefix), edge_group_id(prefix)} <= groups["worker"]
    sink_argv = command_argv(services["sink"])
    assert "--group" not in sink_argv and "--http" not in sink_argv
    assert f"{prefix}-platform-sink" in groups["sink"]
    assert {g.name for g in plans["query"].grants if g.operation == "WRITE"} == {
        f"{prefix}.audit"}
    # the portal: the audit topic, not the updates topic (a sink dead letter is the console's)
    portal_writes = {g.name for g in plans["portal"].grants if g.operation == "WRITE"}
    assert f"{prefix}.audit" in portal_writes and f"{prefix}.archive.updates" not in portal_writes
    portal_env = rendered["portal"]
    assert portal_env["CREDITBUS_PORTAL_KAFKA_CREDENTIALS"].endswith("/kafka/credentials.json")
    # no process is a super user
    for user in users.values():
        assert f"User:{user}" not in node["KAFKA_SUPER_USERS"].split(";")


def test_every_client_verifies_the_brokers_with_the_ca(
    services: dict[str, Any], rendered: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from creditbus.kafka.clientconf import confluent_auth
    from creditbus.kafka.tls import ensure_ca

    node = rendered[KAFKA_NODES[0]]
    tls_volume = dict((t, s) for s, t in volume_mounts(services[KAFKA_NODES[0]]))[
        str(Path(node["KAFKA_SSL_TRUSTSTORE_LOCATION"]).parent)]
    ca_file, _ = ensure_ca(tmp_path)
    for name in APP_SERVICES:
        env = rendered[name]
        ca = Path(env["CREDITBUS_KAFKA_CA_FILE"])
        assert ca.name == Path(node["KAFKA_SSL_TRUSTSTORE_LOCATION"]).name
        mounts = {t: s for s, t in volume_mounts(services[name])}
        assert mounts.get(str(ca.parent)) == tls_volume, f"{name} does not mount the CA"
        assert any(str(item).endswith(f"{ca.parent}:ro") for item in services[name]["volumes"])
        # what clientconf makes of this service's settings: SCRAM over TLS with the CA
        settings = SimpleNamespace(bootstrap=env["CREDITBUS_BOOTSTRAP"],
                                   kafka_username=env["CREDITBUS_KAFKA_USERNAME"],
                                   kafka_password=env["CREDITBUS_KAFKA_PASSWORD"],
                                   kafka_ca_file=ca_file)
        auth = confluent_auth(settings)
        assert auth["security.protocol"] == "SASL_SSL"
        assert auth["ssl.endpoint.identification.algorithm"] == "https"


# --- the image and the CLI -----------------------------------------------------------------------


def test_dockerfile_installs_the_project_as_a_non_root_creditbus_entrypoint() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert froms and all(f.startswith("python:3.11-slim") for f in froms), froms
    assert re.search(r"pip install (?:[^\n]*\s)?\.(?:\s|$)", text), "installs with `pip install .`"
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert re.search(r'^ENTRYPOINT\s+\["creditbus"\]\s*$', text, flags=re.MULTILINE)
    # every folder pyproject.toml installs from is in the build context of `pip install .`
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"]
    folders = {"creditbus", *setuptools["package-dir"].values()}
    for package in sorted(folders):
        assert re.search(rf"^COPY\s+(?:--\S+\s+)*{package}\s", text, flags=re.MULTILINE), package
    ignored = DOCKERIGNORE.read_text(encoding="utf-8").split()
    for entry in (".env", ".git/", ".venv/"):
        assert entry in ignored, f".dockerignore must leave out {entry}"


def test_app_services_run_the_creditbus_image(services: dict[str, Any]) -> None:
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(images) == 1, images
    for name in APP_SERVICES:
        assert services[name].get("build") is not None, f"{name} is built from this repository"
        assert command_argv(services[name]), f"{name} has no command"
    assert command_argv(services["kafka-setup"])[:2] == ["acl", "apply"]
    assert "--no-topics" not in command_argv(services["kafka-setup"])  # it creates the topics
    assert command_argv(services["kafka-certs"])[:2] == ["kafka", "certs"]
    assert [command_argv(services[n]) for n in ("worker", "sink", "query", "portal")] == [
        ["worker"],
        ["sink"],
        ["query"],
        ["portal"],
    ]


def test_app_commands_exist_in_the_cli(services: dict[str, Any]) -> None:
    """`worker`, `sink`, `query`, `acl apply`, `kafka certs` must be sub-commands of
    `creditbus`, with the options the compose file gives them."""
    from creditbus.cli.main import build_parser

    for name in (*APP_SERVICES, "kafka-certs"):
        build_parser().parse_args(command_argv(services[name]))  # exits on an unknown option
    missing = []
    for name in (*APP_SERVICES, "kafka-certs"):
        parser = build_parser()
        path: list[str] = []
        for word in command_argv(services[name]):
            if word.startswith("-"):
                break
            actions = subparsers_of(parser)
            if actions is None:
                break  # a positional argument of a leaf command
            path.append(word)
            if word not in actions.choices:
                missing.append(" ".join(path))
                break
            parser = actions.choices[word]
    assert missing == [], f"`creditbus` has no sub-command(s): {missing}"


# --- Grafana and the metrics contract ------------------------------------------------------------


def test_dashboard_metrics_are_documented(dashboard: dict[str, Any]) -> None:
    documented = documented_metrics()
    assert documented, "docs/metrics.md lists no metrics"
    exprs = dashboard_exprs(dashboard)
    assert exprs, "the dashboard queries nothing"
    undocumented: set[str] = set()
    for expr in exprs:
        for name in promql_metric_names(expr):
            if name in documented:
                continue
            base, _, suffix = name.rpartition("_")
            if suffix in ("bucket", "sum", "count") and documented.get(base) == "histogram":
                continue
            undocumented.add(name)
    assert undocumented == set(), f"not in docs/metrics.md: {sorted(undocumented)}"


def test_dashboard_shows_the_required_metrics(dashboard: dict[str, Any]) -> None:
    used = {n for e in dashboard_exprs(dashboard) for n in promql_metric_names(e)}
    required = {
        "creditbus_events_in_total",
        "creditbus_events_invalid_total",
        "creditbus_duplicates_total",
        "creditbus_archive_updates_total",
        "creditbus_dead_letters_total",
        "creditbus_publish_to_update_seconds_bucket",
        "creditbus_publish_to_commit_seconds_bucket",
        "creditbus_sink_batch_size_bucket",
        "creditbus_sink_write_seconds_bucket",
        "creditbus_consumer_lag",
        "creditbus_sink_last_success_timestamp_seconds",
        "up",
    }
    assert required - used == set(), f"the dashboard does not show {sorted(required - used)}"
    assert dashboard["schemaVersion"] >= 36


def test_dashboard_datasource_is_the_provisioned_one(
    dashboard: dict[str, Any], services: dict[str, Any]
) -> None:
    source = provisioned_datasource()
    uids = set()
    for ref in datasource_refs(dashboard):
        if isinstance(ref, dict) and ref.get("type") == "grafana":
            continue  # Grafana's built-in annotations
        assert isinstance(ref, dict), f"datasource by name, not uid: {ref!r}"
        uids.add(ref.get("uid"))
    assert uids == {source["uid"]}, f"dashboard uses {uids}, provisioned is {source['uid']}"
    # the datasource points at the prometheus service on its port
    assert re.fullmatch(r"http://prometheus:9090/?", source["url"])
    assert 9090 in container_ports(services["prometheus"])


def test_grafana_loads_the_provisioning_and_dashboards(services: dict[str, Any]) -> None:
    mounts = dict(volume_mounts(services["grafana"]))
    assert mounts.get("./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    providers = yaml.safe_load(GRAFANA_PROVIDERS.read_text(encoding="utf-8"))["providers"]
    paths = {p["options"]["path"].rstrip("/") for p in providers}
    assert paths == {mounts.get("./deploy/grafana/dashboards")}, paths
    home = environment(services["grafana"]).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert home == f"{paths.pop()}/{DASHBOARD_FILE.name}"


def test_documented_metrics_match_the_metrics_module() -> None:
    """docs/metrics.md and creditbus/metrics.py name the same metrics, types and labels."""
    from prometheus_client.metrics import MetricWrapperBase

    import creditbus.metrics as module

    exported: dict[str, tuple[str, set[str]]] = {}
    for value in vars(module).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        for family in value.describe():
            name = f"{family.name}_total" if family.type == "counter" else family.name
            exported[name] = (family.type, set(value._labelnames))
    documented = {
        name: row for name, row in documented_metric_rows().items() if name.startswith("creditbus_")
    }
    assert set(exported) == set(documented), (
        f"only in creditbus/metrics.py: {sorted(set(exported) - set(documented))}; "
        f"only in docs/metrics.md: {sorted(set(documented) - set(exported))}"
    )
    for name, (kind, labels) in exported.items():
        assert documented[name] == (kind, labels), f"{name}: code {kind} {sorted(labels)}"
