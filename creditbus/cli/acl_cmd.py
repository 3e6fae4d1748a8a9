"""`creditbus acl apply | list`: least-privilege principals and ACLs on the configured cluster.

The command itself needs a super user: `CREDITBUS_KAFKA_USERNAME` / `CREDITBUS_KAFKA_PASSWORD`,
or, for the local broker started with `creditbus kafka up --secure`, nothing (its admin password
is read from `<home>/kafka/admin.secret`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from creditbus.catalog import default_catalog
from creditbus.devtools.kafka.local import local_admin_config
from creditbus.kafka.admin import ensure_bus_topics, require_broker, unreachable
from creditbus.kafka.clientconf import confluent_config
from creditbus.security.acl import (
    AclError,
    CredentialStore,
    apply_plan,
    current_acls,
    plan_principals,
    scram_users,
)
from creditbus.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "acl", help="create the bus's Kafka principals and ACLs (SASL/SCRAM), or list them"
    )
    actions = parser.add_subparsers(dest="acl_action", required=True)
    apply = actions.add_parser(
        "apply", help="create or update one principal per unit, worker, sink and query"
    )
    apply.add_argument(
        "--out", type=Path, default=None,
        help="credentials file (0600; default: $CREDITBUS_HOME/kafka/credentials.json)",
    )
    apply.add_argument(
        "--rotate", action="append", default=[], metavar="PRINCIPAL",
        help="give this principal a new password (repeatable)",
    )
    apply.add_argument(
        "--password-from-env", action="append", default=[], metavar="PRINCIPAL=VARIABLE",
        help="give PRINCIPAL the password in environment variable VARIABLE instead of a "
             "generated one (repeatable; e.g. worker=KAFKA_WORKER_PASSWORD)",
    )
    apply.add_argument(
        "--no-topics", action="store_true",
        help="do not create the bus's topics (by default they are ensured with admin rights)",
    )
    actions.add_parser("list", help="show the principals and their ACLs (never passwords)")
    parser.set_defaults(func=run)


def default_credentials_file(settings: Settings) -> Path:
    return settings.home / "kafka" / "credentials.json"


def admin_config(settings: Settings) -> dict[str, Any]:
    """The configured principal, or the local secure broker's admin when none is configured."""
    config = confluent_config(settings)
    if "sasl.username" not in config:
        config.update(local_admin_config(settings.home, settings.bootstrap))
    return config


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    require_broker(settings)
    try:
        admin = AdminClient(admin_config(settings))
        if args.acl_action == "apply":
            return _apply(args, settings, admin)
        return _list(settings, admin)
    except KafkaException as exc:
        raise unreachable(settings, exc) from None


def passwords_from_env(pairs: list[str]) -> dict[str, str]:
    """`PRINCIPAL=VARIABLE` pairs -> {principal: the variable's value}; AclError (naming the
    variable, never its value) when one is malformed, unset or too short."""
    given: dict[str, str] = {}
    for pair in pairs:
        principal, sep, variable = pair.partition("=")
        if not sep or not principal or not variable:
            raise AclError(f"--password-from-env takes PRINCIPAL=VARIABLE, not {pair!r}")
        value = os.environ.get(variable, "")
        if len(value) < MIN_PASSWORD_LENGTH:
            raise AclError(f"{variable} (the password of {principal}) is unset or shorter "
                           f"than {MIN_PASSWORD_LENGTH} characters")
        given[principal] = value
    return given


MIN_PASSWORD_LENGTH = 24


def _apply(args: argparse.Namespace, settings: Settings, admin: AdminClient) -> int:
    catalog = default_catalog(settings.catalog_dir)
    units = [u.code for u in catalog.units]
    prefix = settings.topic_prefix
    if not args.no_topics:
        created = ensure_bus_topics(settings, units=units, admin=admin)
        print(f"topics: {len(created)} created")
    path = args.out or default_credentials_file(settings)
    store = CredentialStore.load(path)
    result = apply_plan(admin, plan_principals(prefix, units), store, prefix=prefix,
                        rotate=args.rotate, given=passwords_from_env(args.password_from_env))
    print(f"users: {len(result.users_created)} created, {len(result.users_reset)} given a new "
          f"password, {len(result.users_kept)} unchanged")
    for name in result.users_reset:
        print(f"  new password: {name}")
    print(f"ACLs: {len(result.acls_created)} created, {len(result.acls_deleted)} removed, "
          f"{result.acls_kept} unchanged")
    for principal, grant in result.acls_deleted:
        print(f"  removed: {principal} {grant.text()}")
    for name in result.orphans:
        print(f"warning: {name} is not a unit of the catalog any more; its user and ACLs "
              "were left in place", file=sys.stderr)
    print(f"credentials: {path}" + ("" if result.changed else " (nothing changed)"))
    return 0


def _list(settings: Settings, admin: AdminClient) -> int:
    users = scram_users(admin)
    acls = current_acls(admin)
    catalog = default_catalog(settings.catalog_dir)
    planned = {p.principal: p for p in plan_principals(settings.topic_prefix,
                                                       [u.code for u in catalog.units])}
    principals = sorted(set(acls) | set(planned) | {f"User:{u}" for u in users})
    for principal in principals:
        name = principal.split(":", 1)[1]
        mechanisms = ", ".join(users.get(name, [])) or "no SCRAM credentials"
        plan = planned.get(principal)
        role = plan.role if plan else "-"
        print(f"{principal}  [{role}]  {mechanisms}")
        grants = sorted(acls.get(principal, set()))
        for grant in grants:
            print(f"    {grant.text()}")
        if plan:
            missing = sorted(set(plan.grants) - set(grants))
            for grant in missing:
                print(f"    MISSING {grant.text()}")
        if not grants and not plan:
            print("    (no ALLOW ACLs; a super user if listed in super.users)")
    return 0
