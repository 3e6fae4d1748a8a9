"""`creditbus query [serve | token add|list|revoke]`: the query service and its tokens."""

from __future__ import annotations

import argparse
import logging
import socket
import ssl
import sys

from creditbus.catalog import default_catalog
from creditbus.errors import ConfigError
from creditbus.settings import Settings

log = logging.getLogger("creditbus.ops")


# -- query ---------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "query", help="serve the archive query service (or manage its tokens: query token ...)")
    parser.add_argument("--host", default=None,
                        help="address to listen on (default: CREDITBUS_QUERY_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: CREDITBUS_QUERY_PORT)")
    parser.set_defaults(func=run_query_serve)
    actions = parser.add_subparsers(dest="query_action", metavar="ACTION")
    token = actions.add_parser("token", help="add, list or revoke query tokens")
    token_actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")

    add = token_actions.add_parser("add", help="make a token, print it once, store its hash")
    add.add_argument("--role", required=True, choices=("unit", "office", "public"))
    add.add_argument("--unit", help="unit code (role unit only)")
    add.add_argument("--name", required=True, help="who holds it, e.g. 司法局查询 (unique)")
    add.set_defaults(func=run_token_add)

    listing = token_actions.add_parser("list", help="list the tokens (names and roles)")
    listing.set_defaults(func=run_token_list)

    revoke = token_actions.add_parser("revoke", help="remove a token by name")
    revoke.add_argument("--name", required=True)
    revoke.set_defaults(func=run_token_revoke)


def run_query_serve(args: argparse.Namespace) -> int:
    from creditbus.logsetup import configure_logging
    from creditbus.services.query.listener import bind, tls_context

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    host = args.host or settings.query_host
    port = args.port if args.port is not None else settings.query_port
    # first: a taken port or a bad certificate ends here (ConfigError), before Kafka is touched
    tls = tls_context(settings.query_tls_cert, settings.query_tls_key)
    sock = bind(host, port)
    if tls is None and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("query service on %s in plain HTTP: bearer tokens and archives cross the "
                    "network in clear unless a TLS reverse proxy fronts it; set "
                    "CREDITBUS_QUERY_TLS_CERT and CREDITBUS_QUERY_TLS_KEY for HTTPS", host)
    try:
        return _serve_query(settings, sock, tls)
    finally:
        sock.close()


def _serve_query(settings: Settings, sock: socket.socket, tls: ssl.SSLContext | None) -> int:
    from creditbus.errors import BrokerUnavailable
    from creditbus.kafka.admin import require_broker
    from creditbus.kafka.clientconf import confluent_auth
    from creditbus.services.query.app import build_service, ensure_audit_topic, serve

    require_broker(settings)  # the audit topic
    confluent_auth(settings)  # ConfigError now rather than at the first query
    path = settings.query_tokens
    if not path.exists():  # the service picks the file up as soon as a token is added
        log.warning("no tokens file at %s yet: every query is refused until tokens are added "
                    "with `creditbus query token add`", path)
    if settings.uses_dev_secret:
        log.warning("CREDITBUS_PERSON_KEY_SECRET is the development secret: lookups by ID "
                    "number will not match a production platform")
    try:
        ensure_audit_topic(settings)
    except BrokerUnavailable as exc:
        log.warning("cannot make sure the audit topic exists: %s", exc)
    if not _database_login_is_read_only(settings):
        return 2
    serve(build_service(settings, path), sock, tls)
    return 0


def _database_login_is_read_only(settings: Settings) -> bool:
    """The service only reads the platform database: a login that could write is a warning,
    and with CREDITBUS_ENV=production a refusal (one line). An unreachable database is not
    decided here (the service starts degraded and /healthz says so)."""
    from creditbus.platformdb.db import redact_url
    from creditbus.services.query.store import writable_tables

    try:
        tables = writable_tables(settings.database_url)
    except Exception as exc:  # the drivers' errors share no base class  # noqa: BLE001
        log.warning("cannot check the privileges of the database login: %s", type(exc).__name__)
        return True
    if not tables:
        return True
    message = (f"the database login of {redact_url(settings.database_url)} may write "
               f"{', '.join(tables)}: connect with the reader role of `creditbus db migrate`")
    if settings.production:
        print(f"error: CREDITBUS_ENV=production and {message}", file=sys.stderr)
        return False
    log.warning("%s", message)
    return True


def run_token_add(args: argparse.Namespace) -> int:
    from creditbus.services.query.tokens import add_token

    settings = Settings.from_env()
    if args.role == "unit" and not args.unit:
        raise ConfigError("--role unit needs --unit CODE")
    if args.role != "unit" and args.unit:
        raise ConfigError("only --role unit takes --unit")
    path = settings.query_tokens
    token = add_token(path, name=args.name, role=args.role, unit=args.unit,
                      catalog=default_catalog(settings.catalog_dir))
    print(token)
    print(f"token {args.name!r} ({args.role}) added to {path}; it is shown only this once",
          file=sys.stderr)
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    from creditbus.services.query.tokens import load_entries

    path = Settings.from_env().query_tokens
    entries = load_entries(path)
    for e in entries:
        print("\t".join((e.name, e.role, e.unit or "-", e.created_at)))
    print(f"{len(entries)} token(s) in {path}", file=sys.stderr)
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    from creditbus.services.query.tokens import revoke_token

    path = Settings.from_env().query_tokens
    removed = revoke_token(path, args.name)
    if not removed:
        print(f"error: no token named {args.name!r} in {path}", file=sys.stderr)
        return 1
    print(f"token {args.name!r} revoked", file=sys.stderr)
    return 0

