"""The `creditbus` console command: every sub-command is registered here, in one list.

Each module of `COMMANDS` has `register(subparsers)`; the worker, sink and service modules import
their runtime (creditbus.streams, .connectors, .services) only when the command runs, so that
`creditbus --help` stays fast and the core never depends on them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from creditbus.errors import INTERRUPTED, CreditbusError, exit_codes_text

COMMANDS = (
    "creditbus.cli.kafka_cmd",
    "creditbus.cli.settings_cmd",
    "creditbus.cli.catalog_cmd",
    "creditbus.cli.topics_cmd",
    "creditbus.cli.publish_cmd",
    "creditbus.cli.receipts_cmd",
    "creditbus.cli.demo_cmd",
    "creditbus.cli.bench_cmd",
    "creditbus.cli.audit_cmd",
    "creditbus.cli.deadletters_cmd",
    "creditbus.cli.template_cmd",
    "creditbus.cli.acl_cmd",
    "creditbus.cli.keys_cmd",
    "creditbus.cli.worker_cmd",
    "creditbus.cli.sink_cmd",
    "creditbus.cli.query_cmd",
    "creditbus.cli.report_cmd",
    "creditbus.cli.portal_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creditbus", description="Credit-archive integration bus for key population groups.",
        epilog=exit_codes_text(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _refuse_development_defaults(args)
        return int(args.func(args))
    except CreditbusError as exc:  # the one error path: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return INTERRUPTED


def _refuse_development_defaults(args: argparse.Namespace) -> None:
    """With CREDITBUS_ENV=production, a command that serves or moves data refuses to start on
    development defaults (creditbus.security.production)."""
    from creditbus.security.production import refuse_development_defaults
    from creditbus.settings import Settings

    command = str(args.command)
    if command == "query" and getattr(args, "query_action", None):
        return  # token management only touches the tokens file
    if command == "portal" and getattr(args, "portal_action", None):
        return  # account management only touches the portal's accounts
    refuse_development_defaults(Settings.from_env(), command)


if __name__ == "__main__":
    sys.exit(main())
