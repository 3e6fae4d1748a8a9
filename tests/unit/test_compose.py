"""The production-like topology is consistent: docker-compose.yml, the Dockerfile, the Prometheus
and Grafana files under deploy/, docs/metrics.md, the settings and the CLI agree with each other.

No Docker engine is needed (nor started): the files are parsed and cross-checked.
"""

from __future__ import annotations

import argparse
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from creditbus.settings import SETTINGS_DOC

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
APP_SERVICES = ("topics", "worker", "sink", "query")
EXPECTED_SERVICES = {*KAFKA_NODES, *APP_SERVICES, "postgres", "prometheus", "grafana"}
# service -> the setting holding the port its /metrics is served on (and the Prometheus job)
METRICS_PORT_SETTING = {
    "worker": "CREDITBUS_WORKER_METRICS_PORT",
    "sink": "CREDITBUS_SINK_METRICS_PORT",
    "query": "CREDITBUS_QUERY_PORT",
}
SETTING_DEFAULTS = {s.env: s.default for s in SETTINGS_DOC}
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
        assert depends_on(services["topics"]).get(node) == "service_healthy"
    for name in ("worker", "sink", "query"):
        assert depends_on(services[name]).get("topics") == "service_completed_successfully"
    assert depends_on(services["sink"]).get("postgres") == "service_healthy"
    assert services["worker"]["deploy"]["replicas"] == 2


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
                assert var in documented, f"{name} sets {var}, which SETTINGS_DOC does not know"
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
    assert sink["CREDITBUS_DATABASE_URL"].startswith("postgresql://creditbus:${POSTGRES_PASSWORD")
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


# --- the image and the CLI -----------------------------------------------------------------------


def test_dockerfile_installs_the_project_as_a_non_root_creditbus_entrypoint() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert froms and all(f.startswith("python:3.11-slim") for f in froms), froms
    assert re.search(r"pip install (?:[^\n]*\s)?\.(?:\s|$)", text), "installs with `pip install .`"
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert re.search(r'^ENTRYPOINT\s+\["creditbus"\]\s*$', text, flags=re.MULTILINE)
    # every top-level package pyproject.toml installs is in the build context of `pip install .`
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*").rstrip(".")
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
    assert command_argv(services["topics"]) == ["topics", "ensure"]
    assert [command_argv(services[n]) for n in ("worker", "sink", "query")] == [
        ["worker"],
        ["sink"],
        ["query"],
    ]


def test_app_commands_exist_in_the_cli(services: dict[str, Any]) -> None:
    """`worker`, `sink`, `query`, `topics ensure` must be sub-commands of `creditbus`."""
    from creditbus.cli.main import build_parser

    missing = []
    for name in APP_SERVICES:
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
