"""`creditbus kafka up | down | status`: the local single-node broker; `kafka certs`: a CA and
broker certificates for a cluster of your own (docker-compose.yml)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from creditbus.devtools.kafka.local import LocalBroker
from creditbus.errors import BrokerUnavailable, ConfigError
from creditbus.kafka.tls import ensure_broker_certificate
from creditbus.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("kafka", help="manage the local Apache Kafka broker (KRaft)")
    actions = parser.add_subparsers(dest="kafka_action", required=True)
    up = actions.add_parser("up", help="start the local broker and wait until it answers")
    up.add_argument(
        "--secure", action="store_true",
        help="TLS with a local CA, SASL/SCRAM-SHA-512 and ACLs (deny by default; also "
             "CREDITBUS_KAFKA_SECURE=true); then run `creditbus acl apply`",
    )
    down = actions.add_parser("down", help="stop the local broker")
    down.add_argument("--purge", action="store_true", help="also delete its data")
    actions.add_parser("status", help="show the local broker; exit 3 when it is not running")
    certs = actions.add_parser(
        "certs", help="create a CA (once) and a TLS keystore per broker of your own cluster")
    certs.add_argument("--out", type=Path, required=True,
                       help="directory of the keystores (<broker>.keystore.pem, 0600) and "
                            "ca.pem (0644, for the clients)")
    certs.add_argument("--ca-dir", type=Path, default=None,
                       help="directory of the CA key (default: --out); keep it off the brokers")
    certs.add_argument("--broker", action="append", required=True, metavar="NAME",
                       help="a broker's host name, also its certificate's name (repeatable)")
    certs.add_argument("--host", action="append", default=[], metavar="NAME",
                       help="another name or address every broker is reached by (repeatable)")
    certs.add_argument("--owner", default=None, metavar="UID[:GID]",
                       help="hand the keystores to this user (the broker's, when run as root)")
    certs.add_argument("--renew", action="store_true", help="re-issue the broker certificates")
    parser.set_defaults(func=run)


def local_broker(settings: Settings, *, secure: bool = False) -> LocalBroker:
    return LocalBroker(settings.home, settings.cache, settings.kafka_version, settings.kafka_heap,
                       secure=secure, jvm_options=settings.kafka_jvm_options)


def run_certs(args: argparse.Namespace) -> int:
    """Keystores for `--broker` names; prints paths and names, never key material."""
    owner = _owner(args.owner) if args.owner else None
    try:
        for broker in args.broker:
            tls = ensure_broker_certificate(args.out, broker, [broker, *args.host],
                                            ca_dir=args.ca_dir, renew=args.renew)
            if owner is not None:
                os.chown(tls.keystore, *owner)
            print(f"{broker}: {tls.keystore} ({', '.join([broker, *args.host])})")
    except OSError as exc:
        raise ConfigError(str(exc)) from None
    print(f"CA certificate for the clients (CREDITBUS_KAFKA_CA_FILE): {tls.ca_file}")
    return 0


def _owner(text: str) -> tuple[int, int]:
    uid, _, gid = text.partition(":")
    return int(uid), int(gid or uid)


def run(args: argparse.Namespace) -> int:
    if args.kafka_action == "certs":
        return run_certs(args)
    settings = Settings.from_env()
    secure = args.kafka_action == "up" and (args.secure or settings.kafka_secure)
    broker = local_broker(settings, secure=secure)
    if args.kafka_action == "up":
        state = broker.up()
        mode = " in secure mode (TLS, SASL/SCRAM, ACLs)" if state.secure else ""
        print(f"Kafka {state.version} is up at {state.bootstrap}{mode} (pid {state.pid}).")
        print(f"Its address is recorded in {broker.state_file}.")
        if state.secure:
            print(f"The admin password is in {broker.admin_secret} (0600); clients verify "
                  f"the broker with the CA certificate {state.ca_file} (the default "
                  "CREDITBUS_KAFKA_CA_FILE on this machine). Create the bus's principals "
                  "and ACLs with `creditbus acl apply`.")
        return 0
    if args.kafka_action == "down":
        stopped = broker.down(purge=args.purge)
        print("Kafka stopped." if stopped else "No local Kafka was running.")
        return 0
    status = broker.status()
    if status.running and status.state:
        state = status.state
        mode = ", secure" if state.secure else ""
        print(f"Kafka {state.version} at {state.bootstrap} (pid {state.pid}{mode}): "
              f"{status.note}")
        return 0 if status.answering else 1
    print(f"Kafka is not running ({status.note}).")
    return BrokerUnavailable.exit_code
