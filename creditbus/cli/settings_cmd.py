"""`creditbus settings`: the settings this environment gives (secrets hidden), or the
generated docs/settings.md."""

from __future__ import annotations

import argparse
import sys

from creditbus.settings import Settings, settings_markdown


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "settings", help="show the settings in effect (secrets hidden) or document them")
    parser.add_argument("--markdown", action="store_true",
                        help="print docs/settings.md, generated from the settings model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(settings_markdown())
        return 0
    shown = Settings.from_env().describe()
    width = max(map(len, shown))
    for name, value in shown.items():
        print(f"{name:<{width}}  {value}")
    return 0
