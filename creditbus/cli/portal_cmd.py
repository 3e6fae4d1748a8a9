"""`creditbus portal [--host H] [--port P]`: the web portal of units and the credit office;
`creditbus portal account add|list` manages its accounts (docs/portal.md).

The portal's tables are migration 3 of the platform schema: it migrates the database on start
where its login may (SQLite, the owner), like the sink.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sys

from creditbus.catalog import default_catalog
from creditbus.errors import ConfigError
from creditbus.settings import Settings

log = logging.getLogger("creditbus.ops")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "portal", help="serve the web portal (or manage its accounts: portal account ...)")
    parser.add_argument("--host", default=None,
                        help="address to listen on (default: CREDITBUS_PORTAL_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: CREDITBUS_PORTAL_PORT, 8090)")
    parser.set_defaults(func=run_serve)
    actions = parser.add_subparsers(dest="portal_action", metavar="ACTION")
    account = actions.add_parser("account", help="add or list portal accounts")
    account_actions = account.add_subparsers(dest="account_action", required=True,
                                             metavar="ACTION")
    add = account_actions.add_parser(
        "add", help="create an account, or reset its password and role when it exists")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=("unit", "office"))
    add.add_argument("--unit", help="unit code or Chinese name (role unit only)")
    add.add_argument("--name", default="", help="display name (default: the unit's name)")
    add.add_argument("--password-env", metavar="VARIABLE",
                     help="take the password from this environment variable")
    add.add_argument("--generate", action="store_true",
                     help="generate a password and print it once")
    add.set_defaults(func=run_account_add)
    listing = account_actions.add_parser("list", help="list the accounts (never passwords)")
    listing.set_defaults(func=run_account_list)


def _store(settings: Settings):  # type: ignore[no-untyped-def]
    from creditbus.services.portal.store import PortalStore

    store = PortalStore(settings.database_url)
    db = store.db()
    if db.may_migrate():
        store.migrate()
    return store


def run_account_add(args: argparse.Namespace) -> int:
    from creditbus.publish.producer import resolve_unit
    from creditbus.services.portal.accounts import hash_password
    from creditbus.services.portal.store import Account

    settings = Settings.from_env()
    catalog = default_catalog(settings.catalog_dir)
    unit = None
    if args.role == "unit":
        if not args.unit:
            raise ConfigError("a unit account needs --unit")
        try:
            unit = resolve_unit(catalog, args.unit)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    elif args.unit:
        raise ConfigError("--unit is for unit accounts only")
    if args.generate:
        password = secrets.token_urlsafe(12)
    elif args.password_env:
        password = os.environ.get(args.password_env, "")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    name = args.name or (catalog.unit(unit).name_zh if unit else "信用办")
    account = Account(args.username.strip(), args.role, unit, name, hash_password(password))
    store = _store(settings)
    try:
        store.save_account(account)
    finally:
        store.close()
    print(f"account {account.username}: {account.role}" + (f" of {unit}" if unit else ""))
    if args.generate:
        print(f"password: {password}")
    return 0


def run_account_list(_args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    store = _store(settings)
    try:
        for account in store.accounts():
            state = " (disabled)" if account.disabled else ""
            print(f"{account.username}\t{account.role}\t{account.unit or '-'}\t"
                  f"{account.display_name}{state}")
    finally:
        store.close()
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from creditbus.errors import BrokerUnavailable
    from creditbus.kafka.admin import require_broker
    from creditbus.kafka.clientconf import confluent_auth
    from creditbus.logsetup import configure_logging
    from creditbus.services.portal.app import build, create_app, serve
    from creditbus.services.portal.config import PortalConfig
    from creditbus.services.query.app import ensure_audit_topic
    from creditbus.services.query.listener import bind

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    config = PortalConfig.from_settings(settings)
    host = args.host or config.host
    port = args.port if args.port is not None else config.port
    if settings.production and config.secure_cookies == "never":
        print("error: CREDITBUS_PORTAL_SECURE_COOKIES=never is refused with "
              "CREDITBUS_ENV=production", file=sys.stderr)
        return 2
    require_broker(settings)  # uploads and the audit topic need it
    confluent_auth(settings)
    sock = bind(host, port)
    try:
        try:
            ensure_audit_topic(settings)
        except BrokerUnavailable as exc:
            log.warning("cannot make sure the audit topic exists: %s", exc)
        store = _store(settings)
        store.close()
        portal, reads = build(settings, config)
        print(f"portal: http://{host}:{sock.getsockname()[1]}/", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1") and not config.trust_proxy:
            log.warning("portal on %s in plain HTTP: put it behind a TLS reverse proxy and set "
                        "CREDITBUS_PORTAL_TRUST_PROXY=true (docs/portal.md)", host)
        serve(create_app(portal, reads, settings), sock)
        return 0
    finally:
        sock.close()
