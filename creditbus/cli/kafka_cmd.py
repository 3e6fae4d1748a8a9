"""`creditbus kafka up | down | status`: the local single-node broker."""

from __future__ import annotations

import argparse
import sys

from creditbus.kafka.local import BrokerError, LocalBroker
from creditbus.kafka.toolchain import PrerequisiteError
from creditbus.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("kafka", help="manage the local Apache Kafka broker (KRaft)")
    actions = parser.add_subparsers(dest="kafka_action", required=True)
    actions.add_parser("up", help="start the local broker and wait until it answers")
    down = actions.add_parser("down", help="stop the local broker")
    down.add_argument("--purge", action="store_true", help="also delete its data")
    actions.add_parser("status", help="show the local broker; exit 3 when it is not running")
    parser.set_defaults(func=run)


def local_broker(settings: Settings) -> LocalBroker:
    return LocalBroker(settings.home, settings.cache, settings.kafka_version, settings.kafka_heap)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    broker = local_broker(settings)
    try:
        if args.kafka_action == "up":
            state = broker.up()
            print(f"Kafka {state.version} is up at {state.bootstrap} (pid {state.pid}).")
            print(f"Its address is recorded in {broker.state_file}.")
            return 0
        if args.kafka_action == "down":
            stopped = broker.down(purge=args.purge)
            print("Kafka stopped." if stopped else "No local Kafka was running.")
            return 0
        status = broker.status()
        if status.running and status.state:
            state = status.state
            print(f"Kafka {state.version} at {state.bootstrap} (pid {state.pid}): {status.note}")
            return 0 if status.answering else 1
        print(f"Kafka is not running ({status.note}).")
        return 3
    except (PrerequisiteError, BrokerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
