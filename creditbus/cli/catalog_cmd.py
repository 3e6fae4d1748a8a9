"""`creditbus catalog`: list units, groups, categories, domains and severities of the catalog."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path

from creditbus.catalog import Catalog, default_catalog, load_catalog

SECTIONS = ("units", "groups", "categories", "domains", "severities")
KIND_TITLES = {"city_unit": "市直单位", "county": "县（市、区）", "association": "行业协会、商会"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "catalog", help="show the catalog: units, groups, record categories, domains, severities"
    )
    parser.add_argument("--json", action="store_true", help="print the catalog as JSON")
    parser.add_argument(
        "--only", choices=SECTIONS, help="show one section only (with --json too)"
    )
    parser.add_argument(
        "--catalog-dir", type=Path, default=None,
        help="extra catalog TOML directory (default: $CREDITBUS_CATALOG_DIR)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    catalog = load_catalog(args.catalog_dir) if args.catalog_dir else default_catalog()
    if args.json:
        data = catalog.to_dict()
        if args.only:
            data = {args.only: data[args.only]}
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    sections = [args.only] if args.only else list(SECTIONS)
    print("\n\n".join(RENDERERS[name](catalog) for name in sections))
    return 0


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def render_units(catalog: Catalog) -> str:
    lines = ["Units (单位)"]
    for kind, title in KIND_TITLES.items():
        units = catalog.units_of_kind(kind)  # type: ignore[arg-type]
        if kind == "city_unit":
            units = catalog.progress_units() + tuple(u for u in units if u.seq is None)
        if not units:
            continue
        lines.append(f"  {title} ({kind})")
        for unit in units:
            seq = f"{unit.seq:>2}" if unit.seq is not None else " -"
            groups = _groups_text(catalog, unit.groups)
            lines.append(f"    {seq} {unit.code:<18} {_pad(unit.name_zh, 22)} {groups}")
    return "\n".join(lines)


def _groups_text(catalog: Catalog, codes: tuple[str, ...]) -> str:
    if not codes:
        return "—"
    if len(codes) > 3:  # counties: codes only, one line
        return ", ".join(codes)
    return ", ".join(f"{g} {catalog.group(g).name_zh}" for g in codes)


def render_groups(catalog: Catalog) -> str:
    lines = ["Groups (重点人群)"]
    for group in catalog.groups:
        units = ", ".join(u.code for u in catalog.responsible_units(group.code)) or "—"
        domain = group.default_domain or "—"
        lines.append(
            f"  {group.code:<24} {_pad(group.name_zh, 30)} [{group.tier}] "
            f"domain: {domain}; units: {units}"
        )
        items = "、".join(catalog.category(c).name_zh for c in group.required_categories)
        lines.append(f"      {items}")
    return "\n".join(lines)


def render_categories(catalog: Catalog) -> str:
    lines = ["Record categories (记录类别)   * = dishonesty record"]
    for cat in catalog.categories:
        mark = "*" if cat.dishonesty else " "
        lines.append(f"  {mark} {cat.code:<28} {cat.content_kind:<13} {cat.name_zh}")
    return "\n".join(lines)


def render_domains(catalog: Catalog) -> str:
    lines = ["Key domains (重点领域)"]
    lines += [f"  {d.code:<24} {d.name_zh}" for d in catalog.domains]
    return "\n".join(lines)


def render_severities(catalog: Catalog) -> str:
    lines = ["Severities (失信程度), public disclosure and earliest credit repair (months)"]
    for s in catalog.severities:
        window = "not disclosed"
        if s.disclosed:
            window = f"{s.disclosure_min_months}–{s.disclosure_max_months}"
        lines.append(f"  {s.code:<10} {s.symbol:<10} {_pad(s.name_zh, 6)} {window:<14} "
                     f"repair after {s.repair_minimum}")
    return "\n".join(lines)


RENDERERS = {
    "units": render_units,
    "groups": render_groups,
    "categories": render_categories,
    "domains": render_domains,
    "severities": render_severities,
}
