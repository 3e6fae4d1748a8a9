"""`creditbus worker`: run a stream worker (the Faust app and its edge stage)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help="run a stream worker (Faust)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from creditbus.settings import Settings
    from creditbus.streams.worker import run_worker

    settings = Settings.from_env()
    if not settings.bootstrap:
        print("error: no broker: set CREDITBUS_BOOTSTRAP or run `creditbus kafka up`",
              file=sys.stderr)
        return 2
    return run_worker(settings)
