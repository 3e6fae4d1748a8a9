"""The `creditbus` console command.

Core commands are listed here; the stream worker and the connectors add theirs through the
`creditbus.commands` entry-point group, so that the core never imports them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

from creditbus.settings import SettingsError

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
        _refuse_development_defaults(args)
        return int(args.func(args))
    except SettingsError as exc:  # a setting that cannot be used: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _refuse_development_defaults(args: argparse.Namespace) -> None:
    """With CREDITBUS_ENV=production, a command that serves or moves data refuses to start on
    development defaults (creditbus.security.production)."""
    from creditbus.security.production import refuse_development_defaults
    from creditbus.settings import Settings

    command = str(args.command)
    if command == "query" and getattr(args, "query_action", None):
        return  # token management only touches the tokens file
    refuse_development_defaults(Settings.from_env(), command)


if __name__ == "__main__":
    sys.exit(main())
