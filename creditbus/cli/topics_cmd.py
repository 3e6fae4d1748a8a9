"""`creditbus topics ensure | list`: the bus's topics on the configured cluster."""

from __future__ import annotations

import argparse
import sys

from confluent_kafka import KafkaException

from creditbus.catalog import default_catalog
from creditbus.kafka.admin import admin_client, ensure_topics
from creditbus.kafka.clientconf import confluent_auth
from creditbus.settings import Settings
from creditbus.topics import bus_topics


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("topics", help="create or list the bus's topics")
    parser.add_argument("action", choices=("ensure", "list"))
    parser.set_defaults(func=run)


def ensure_bus_topics(settings: Settings) -> list[str]:
    catalog = default_catalog(settings.catalog_dir)
    specs = bus_topics(settings.topic_prefix, [u.code for u in catalog.units],
                       settings.partitions, settings.replication)
    return ensure_topics(admin_client(settings.bootstrap, confluent_auth(settings)), specs)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.bootstrap:
        print("error: no broker: set CREDITBUS_BOOTSTRAP or run `creditbus kafka up`",
              file=sys.stderr)
        return 2
    try:
        if args.action == "ensure":
            created = ensure_bus_topics(settings)
            print(f"{len(created)} topic(s) created" + (": " + ", ".join(created) if created
                                                          else "; all existed"))
            return 0
        metadata = admin_client(settings.bootstrap, confluent_auth(settings)).list_topics(
            timeout=30)
        for name in sorted(metadata.topics):
            if name.startswith(settings.topic_prefix + "."):
                print(f"{name}\t{len(metadata.topics[name].partitions)} partitions")
        return 0
    except KafkaException as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
