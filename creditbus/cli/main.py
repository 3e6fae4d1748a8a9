"""The `creditbus` console command.

Core commands are listed here; the stream worker and the connectors add theirs through the
`creditbus.commands` entry-point group, so that the core never imports them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

CORE_COMMANDS = (
    "creditbus.cli.kafka_cmd",
    "creditbus.cli.catalog_cmd",
    "creditbus.cli.topics_cmd",
    "creditbus.cli.publish_cmd",
    "creditbus.cli.demo_cmd",
    "creditbus.cli.bench_cmd",
    "creditbus.cli.audit_cmd",
    "creditbus.cli.acl_cmd",
    "creditbus.cli.keys_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creditbus", description="Credit-archive integration bus for key population groups."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in CORE_COMMANDS:
        importlib.import_module(module).register(commands)
    for entry in sorted(entry_points(group="creditbus.commands"), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:  # a plugin whose package is not installed: say so, go on
            print(f"warning: commands of {entry.name!r} unavailable: {exc}", file=sys.stderr)
            continue
        register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
