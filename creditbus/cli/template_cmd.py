"""`creditbus template --unit UNIT [--group GROUP] [--out FILE]`: the blank .xlsx a unit fills.

The headers are the importer's, the code columns are drop-down lists from the catalog, and a
sheet of instructions in Chinese says what each column needs (creditbus.publish.template).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from creditbus.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "template", help="write the blank .xlsx a unit fills in (headers, drop-downs, 说明)")
    parser.add_argument("--unit", required=True, help="the unit (code or Chinese name)")
    parser.add_argument("--group", help="only this group of the unit (code or Chinese name)")
    parser.add_argument("--out", type=Path, metavar="PATH",
                        help="the .xlsx to write, or a directory (default: the current one, "
                             "as <单位>信用档案填报模板.xlsx)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from creditbus.catalog import default_catalog
    from creditbus.publish.producer import resolve_unit
    from creditbus.publish.row_events import CatalogNames
    from creditbus.publish.template import default_file_name, write_template
    from creditbus.settings import Settings

    catalog = default_catalog(Settings.from_env().catalog_dir)
    try:
        unit = resolve_unit(catalog, args.unit)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    group = None
    if args.group:
        names = CatalogNames(catalog)
        group = names.lookup(names.groups, args.group)
        if group is None:
            raise ConfigError(f"unknown group {args.group!r} (see `creditbus catalog`)")
    out: Path = args.out or Path.cwd()
    if out.is_dir():
        out = out / default_file_name(catalog, unit, group)
    if out.suffix.lower() != ".xlsx":
        raise ConfigError(f"{out}: a template is an .xlsx file")
    try:
        write_template(out, catalog, unit, group)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot be written ({exc.strerror})") from None
    print(out)
    return 0
