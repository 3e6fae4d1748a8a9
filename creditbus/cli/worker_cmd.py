"""`creditbus worker`: run a stream worker (the Faust app and its edge stage)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help="run a stream worker (Faust)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from creditbus.kafka.admin import require_broker
    from creditbus.settings import Settings
    from creditbus.streams.worker import run_worker

    settings = Settings.from_env()
    require_broker(settings)
    return run_worker(settings)
