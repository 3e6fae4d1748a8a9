"""`creditbus topics ensure | list`: the bus's topics on the configured cluster."""

from __future__ import annotations

import argparse

from confluent_kafka import KafkaException

from creditbus.kafka.admin import bus_admin, ensure_bus_topics, unreachable
from creditbus.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("topics", help="create or list the bus's topics")
    parser.add_argument("action", choices=("ensure", "list"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.action == "ensure":
        created = ensure_bus_topics(settings)
        print(f"{len(created)} topic(s) created" + (": " + ", ".join(created) if created
                                                      else "; all existed"))
        return 0
    try:
        metadata = bus_admin(settings).list_topics(timeout=30)
    except KafkaException as exc:
        raise unreachable(settings, exc) from None
    for name in sorted(metadata.topics):
        if name.startswith(settings.topic_prefix + "."):
            print(f"{name}\t{len(metadata.topics[name].partitions)} partitions")
    return 0
