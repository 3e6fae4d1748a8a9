"""Least-privilege Kafka principals of the bus and their ACLs, derived from the unit catalog.

Principals (SASL/SCRAM-SHA-512 users):

- `unit-<code>`, one per unit and association: write (and describe) its own inbound topic
  `<prefix>.raw.<code>` (a LITERAL pattern: `credit.raw.tax` must not cover `credit.raw.taxi`),
  read its own receipts topic `<prefix>.receipts.<code>` with its own group id
  `<prefix>-receipts-<code>` (readers assign partitions and commit nothing);
- `worker`: read every raw topic (PREFIXED `<prefix>.raw.`), read and write the by-person topic,
  write the updates and dead-letter topics and every unit's receipts topic (PREFIXED
  `<prefix>.receipts.`), its two consumer groups (the Faust app's and the
  edge stage's, `<prefix>-archive-edge`) and its Faust-managed topics (changelogs, repartition
  and leader topics start with `<worker app id>-`, which it may create);
- `sink`: read the updates topic in the sink's default consumer groups (`<prefix>-platform-sink`,
  `<prefix>-http-sink`), write the sink dead-letter topic;
- `query`: write the audit topic;
- `portal`: the credit office's side of the web portal: write and read the audit topic (an
  audited look-up, the audit trail), read every unit's receipts (rejections by unit and
  reason) with the office's group id, read the dead-letter topics and replay an edge or
  archive dead letter (read its original on the inbound topic, re-publish it there, and keep
  the replay record). A unit's upload is not published with this login but with the unit's
  own (`CREDITBUS_PORTAL_KAFKA_CREDENTIALS`); a sink dead letter is replayed only by the
  operator's console (it writes the updates topic, which the portal may not).

Every principal may also IdempotentWrite on the cluster (idempotent producers). `apply_plan`
converges the cluster to this plan: it creates missing users and ACLs, removes ACLs of these
principals that the plan no longer has (only on this prefix's resources), and changes nothing
when run twice. Passwords are generated here, kept in a 0600 JSON file and never printed.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from creditbus.errors import CreditbusError
from creditbus.topics import (
    audit_topic,
    by_person_topic,
    deadletter_replays_topic,
    deadletter_topic,
    edge_group_id,
    raw_topic,
    receipts_group_id,
    receipts_topic,
    sink_deadletter_topic,
    updates_topic,
    worker_app_id,
)

CLUSTER_RESOURCE = "kafka-cluster"
SCRAM_ITERATIONS = 8192
"""Kafka requires at least 4096 for SCRAM-SHA-512."""
MECHANISM = "SCRAM-SHA-512"
ROLES = ("unit", "worker", "sink", "query")
_RESOURCE_TYPES = {
    "TOPIC": ResourceType.TOPIC,
    "GROUP": ResourceType.GROUP,
    "CLUSTER": ResourceType.BROKER,  # librdkafka's name for Kafka's CLUSTER resource type (4)
    "TRANSACTIONAL_ID": ResourceType.TRANSACTIONAL_ID,
}
_RESOURCE_NAMES = {v: k for k, v in _RESOURCE_TYPES.items()}


class AclError(CreditbusError, RuntimeError):
    """The cluster refused or failed an ACL or SCRAM operation."""


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL (any host) without its principal."""

    resource: str
    """TOPIC, GROUP or CLUSTER."""
    name: str
    pattern: str
    """LITERAL or PREFIXED."""
    operation: str
    """READ, WRITE, DESCRIBE, CREATE, IDEMPOTENT_WRITE, ..."""

    def binding(self, principal: str) -> AclBinding:
        return AclBinding(
            _RESOURCE_TYPES[self.resource], self.name, ResourcePatternType[self.pattern],
            principal, "*", AclOperation[self.operation], AclPermissionType.ALLOW,
        )

    def filter(self, principal: str) -> AclBindingFilter:
        return AclBindingFilter(
            _RESOURCE_TYPES[self.resource], self.name, ResourcePatternType[self.pattern],
            principal, "*", AclOperation[self.operation], AclPermissionType.ALLOW,
        )

    def text(self) -> str:
        return f"{self.operation:<16} {self.resource:<7} {self.pattern:<8} {self.name}"


@dataclass(frozen=True)
class PrincipalPlan:
    name: str
    role: str
    grants: tuple[Grant, ...]

    @property
    def principal(self) -> str:
        return f"User:{self.name}"


def unit_principal(unit: str) -> str:
    return f"unit-{unit}"


def sink_groups(prefix: str) -> tuple[str, ...]:
    """The sink's default consumer groups (`creditbus sink`, `creditbus sink --http`); a group
    chosen with `--group` needs an ACL of its own."""
    return (f"{prefix}-platform-sink", f"{prefix}-http-sink")


def _topic(name: str, *operations: str, pattern: str = "LITERAL") -> list[Grant]:
    return [Grant("TOPIC", name, pattern, op) for op in operations]


_IDEMPOTENT = Grant("CLUSTER", CLUSTER_RESOURCE, "LITERAL", "IDEMPOTENT_WRITE")


def plan_principals(prefix: str, units: Iterable[str]) -> list[PrincipalPlan]:
    """The principals of a bus with topic prefix `prefix` and these unit codes."""
    plans = [
        PrincipalPlan(unit_principal(unit), "unit", (
            *_topic(raw_topic(prefix, unit), "WRITE", "DESCRIBE"),
            *_topic(receipts_topic(prefix, unit), "READ", "DESCRIBE"),
            Grant("GROUP", receipts_group_id(prefix, unit), "LITERAL", "READ"),
            _IDEMPOTENT,
        ))
        for unit in sorted(set(units))
    ]
    app_id = worker_app_id(prefix)
    plans.append(PrincipalPlan("worker", "worker", (
        *_topic(raw_topic(prefix, ""), "READ", "DESCRIBE", pattern="PREFIXED"),
        *_topic(by_person_topic(prefix), "READ", "WRITE", "DESCRIBE"),
        *_topic(updates_topic(prefix), "WRITE", "DESCRIBE"),
        *_topic(deadletter_topic(prefix), "WRITE", "DESCRIBE"),
        *_topic(receipts_topic(prefix, ""), "WRITE", "DESCRIBE", pattern="PREFIXED"),
        *_topic(f"{app_id}-", "CREATE", "READ", "WRITE", "DESCRIBE", pattern="PREFIXED"),
        Grant("GROUP", app_id, "LITERAL", "READ"),
        Grant("GROUP", edge_group_id(prefix), "LITERAL", "READ"),
        _IDEMPOTENT,
    )))
    plans.append(PrincipalPlan("sink", "sink", (
        *_topic(updates_topic(prefix), "READ", "DESCRIBE"),
        *(Grant("GROUP", group, "LITERAL", "READ") for group in sink_groups(prefix)),
        *_topic(sink_deadletter_topic(prefix), "WRITE", "DESCRIBE"),
        _IDEMPOTENT,
    )))
    plans.append(PrincipalPlan("query", "query", (
        *_topic(audit_topic(prefix), "WRITE", "DESCRIBE"), _IDEMPOTENT,
    )))
    plans.append(PrincipalPlan("portal", "portal", (
        *_topic(audit_topic(prefix), "READ", "WRITE", "DESCRIBE"),
        *_topic(receipts_topic(prefix, ""), "READ", "DESCRIBE", pattern="PREFIXED"),
        Grant("GROUP", receipts_group_id(prefix), "LITERAL", "READ"),
        *_topic(deadletter_topic(prefix), "READ", "DESCRIBE"),
        *_topic(sink_deadletter_topic(prefix), "READ", "DESCRIBE"),
        *_topic(deadletter_replays_topic(prefix), "READ", "WRITE", "DESCRIBE"),
        *_topic(raw_topic(prefix, ""), "READ", "WRITE", "DESCRIBE", pattern="PREFIXED"),
        _IDEMPOTENT,
    )))
    return plans


# -- the credentials file -------------------------------------------------------------------


class CredentialStore:
    """`{"mechanism": ..., "users": {name: password}}` in a file only its owner can read."""

    def __init__(self, path: Path, users: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.users: dict[str, str] = dict(users or {})

    @classmethod
    def load(cls, path: Path) -> CredentialStore:
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            users = {str(k): str(v) for k, v in data["users"].items()}
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise AclError(
                f"{path} is not a creditbus credentials file ({type(exc).__name__})"
            ) from None
        return cls(path, users)

    def save(self) -> None:
        """Write atomically, 0600, in a 0700 directory when it creates one."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"mechanism": MECHANISM, "users": dict(sorted(self.users.items()))}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        tmp.replace(self.path)


def new_password() -> str:
    return secrets.token_urlsafe(32)


# -- reading the cluster ------------------------------------------------------------------------


def scram_users(admin: AdminClient, timeout: float = 30.0) -> dict[str, list[str]]:
    """User name -> the SCRAM mechanisms it has credentials for."""
    try:
        described = admin.describe_user_scram_credentials(request_timeout=timeout).result(timeout)
    except KafkaException as exc:
        raise AclError(f"cannot list SCRAM users: {exc.args[0].str()}") from None
    return {
        user: sorted(info.mechanism.name.replace("_", "-") for info in desc.scram_credential_infos)
        for user, desc in described.items()
    }


def current_acls(admin: AdminClient, timeout: float = 30.0) -> dict[str, set[Grant]]:
    """Principal -> its ALLOW ACLs for any host (other ACLs are not this module's business)."""
    everything = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
        AclOperation.ANY, AclPermissionType.ANY,
    )
    try:
        bindings = admin.describe_acls(everything, request_timeout=timeout).result(timeout)
    except KafkaException as exc:
        raise AclError(f"cannot list ACLs: {exc.args[0].str()}") from None
    found: dict[str, set[Grant]] = {}
    for b in bindings:
        if b.permission_type != AclPermissionType.ALLOW or b.host != "*":
            continue
        resource = _RESOURCE_NAMES.get(b.restype, b.restype.name)
        grant = Grant(resource, b.name, b.resource_pattern_type.name, b.operation.name)
        found.setdefault(b.principal, set()).add(grant)
    return found


# -- applying ------------------------------------------------------------------------------------


@dataclass
class ApplyResult:
    users_created: list[str] = field(default_factory=list)
    users_reset: list[str] = field(default_factory=list)
    """Users that existed with a password this file does not know (or were rotated)."""
    users_kept: list[str] = field(default_factory=list)
    acls_created: list[tuple[str, Grant]] = field(default_factory=list)
    acls_deleted: list[tuple[str, Grant]] = field(default_factory=list)
    acls_kept: int = 0
    orphans: list[str] = field(default_factory=list)
    """`unit-*` users on the cluster that the catalog no longer has (left alone)."""

    @property
    def changed(self) -> bool:
        return bool(self.users_created or self.users_reset or self.acls_created
                    or self.acls_deleted)


def _owned(grant: Grant, prefix: str) -> bool:
    """Whether an ACL is on this bus's resources (so the plan may remove it)."""
    if grant.resource == "CLUSTER":
        return True
    return grant.name.startswith((f"{prefix}.", f"{prefix}-"))


def apply_plan(
    admin: AdminClient, plans: list[PrincipalPlan], store: CredentialStore, *, prefix: str,
    rotate: Iterable[str] = (), given: Mapping[str, str] | None = None, timeout: float = 30.0,
) -> ApplyResult:
    """Converge users and ACLs to `plans`; passwords go to `store` before the cluster.

    `given`: principal -> the password the deployment chose for it (e.g. from its secrets
    file); such a principal gets exactly that password, set again whenever it changes.
    """
    result = ApplyResult()
    rotate = set(rotate)
    given = dict(given or {})
    unknown = (rotate | set(given)) - {p.name for p in plans}
    if unknown:
        raise AclError(f"not a principal of this bus: {', '.join(sorted(unknown))}")
    existing_users = scram_users(admin, timeout)
    upserts: list[str] = []
    for plan in plans:
        has_scram = MECHANISM in existing_users.get(plan.name, [])
        known = plan.name in store.users
        chosen = given.get(plan.name)
        if chosen is not None and (not has_scram or store.users.get(plan.name) != chosen):
            store.users[plan.name] = chosen
            (result.users_reset if has_scram else result.users_created).append(plan.name)
            upserts.append(plan.name)
        elif chosen is not None:
            result.users_kept.append(plan.name)
        elif plan.name in rotate or (has_scram and not known):
            store.users[plan.name] = new_password()
            result.users_reset.append(plan.name)
            upserts.append(plan.name)
        elif not has_scram:
            store.users.setdefault(plan.name, new_password())
            result.users_created.append(plan.name)
            upserts.append(plan.name)
        else:
            result.users_kept.append(plan.name)
    planned = {p.name for p in plans}
    result.orphans = sorted(u for u in existing_users if u.startswith("unit-")
                            and u not in planned)
    if upserts:
        store.save()  # a password the cluster accepts must never exist only in memory
        _upsert_users(admin, [(name, store.users[name]) for name in upserts], timeout)

    existing = current_acls(admin, timeout)
    to_create: list[tuple[str, Grant]] = []
    to_delete: list[tuple[str, Grant]] = []
    for plan in plans:
        have = existing.get(plan.principal, set())
        want = set(plan.grants)
        to_create += [(plan.principal, g) for g in sorted(want - have)]
        to_delete += [(plan.principal, g) for g in sorted(have - want) if _owned(g, prefix)]
        result.acls_kept += len(want & have)
    if to_create:
        _create_acls(admin, to_create, timeout)
    if to_delete:
        _delete_acls(admin, to_delete, timeout)
    result.acls_created, result.acls_deleted = to_create, to_delete
    if upserts or to_create or to_delete:
        _await_effect(admin, plans, prefix, upserts, timeout)
    return result


def _await_effect(
    admin: AdminClient, plans: list[PrincipalPlan], prefix: str, users: list[str],
    timeout: float,
) -> None:
    """Wait until a broker serves the new users and ACLs.

    The controller acknowledges a change once it is in the metadata log; brokers apply it a
    little later (seconds when they are busy, e.g. creating many partitions at the same time).
    DescribeAcls and DescribeUserScramCredentials are answered from a broker's own view, so
    once they show the plan, clients of that broker see it too.
    """
    deadline = time.monotonic() + timeout
    while True:
        known = scram_users(admin, timeout)
        acls = current_acls(admin, timeout)
        users_ok = all(MECHANISM in known.get(name, []) for name in users)
        acls_ok = all(
            set(plan.grants) == {g for g in acls.get(plan.principal, set()) if _owned(g, prefix)}
            for plan in plans
        )
        if users_ok and acls_ok:
            return
        if time.monotonic() > deadline:
            raise AclError(f"the broker did not show the new users and ACLs within {timeout:.0f} s")
        time.sleep(0.2)


def _upsert_users(admin: AdminClient, users: list[tuple[str, str]], timeout: float) -> None:
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    alterations = [UserScramCredentialUpsertion(name, info, password.encode("utf-8"))
                   for name, password in users]
    _wait_all(admin.alter_user_scram_credentials(alterations, request_timeout=timeout),
              "set the credentials of", timeout)


def _create_acls(admin: AdminClient, acls: list[tuple[str, Grant]], timeout: float) -> None:
    _wait_all(admin.create_acls([g.binding(p) for p, g in acls], request_timeout=timeout),
              "create ACL", timeout)


def _delete_acls(admin: AdminClient, acls: list[tuple[str, Grant]], timeout: float) -> None:
    _wait_all(admin.delete_acls([g.filter(p) for p, g in acls], request_timeout=timeout),
              "delete ACL", timeout)


def _wait_all(futures: Mapping[Any, Future[Any]], action: str, timeout: float) -> None:
    """Wait for every admin request; the first refusal becomes an AclError naming its subject."""
    for subject, future in futures.items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            raise AclError(f"cannot {action} {subject}: {exc.args[0].str()}") from None
