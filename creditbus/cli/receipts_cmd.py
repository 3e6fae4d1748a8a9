"""`creditbus receipts summary|list --unit U [--since DATE]`: a unit's receipts (回执).

`summary` counts receipts per unit, day (China) and outcome; without `--unit` it counts every
unit's (the office's view: the administrator's credentials). `list` prints one line per
receipt of a unit, with Chinese column names (the unit's view). Run with the unit's own
credentials a unit sees only its own receipts (docs/receipts.md). Exit code 0, also when
nothing matched; 2 on usage, authorisation or broker errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date, datetime

from creditbus.archive.timeutil import CHINA_TZ, china_midnight_ms
from creditbus.catalog import default_catalog
from creditbus.kafka.clientconf import ClientConfigError
from creditbus.publish.producer import resolve_unit
from creditbus.receipts import (
    OUTCOME_NAMES_ZH,
    OUTCOMES,
    Receipt,
    ReceiptsError,
    read_receipts,
    summarize,
)
from creditbus.settings import Settings

LIST_HEADER = ("决定时间", "行号", "结果", "原因代码", "记录编号", "档案版本", "说明", "事件编号")
SUMMARY_HEADER = ("单位", "日期", *(OUTCOME_NAMES_ZH[o] for o in OUTCOMES), "合计")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "receipts", help="a unit's receipts: counts per day and outcome, or one line each",
        description="Receipts (回执) of the messages units published: accepted, duplicate or "
        "rejected (docs/receipts.md).")
    actions = parser.add_subparsers(dest="receipts_action", required=True, metavar="ACTION")
    summary = actions.add_parser("summary", help="counts per unit, day and outcome")
    summary.add_argument("--unit", help="one unit (code or Chinese name); default: every unit "
                         "(needs the administrator's credentials)")
    listing = actions.add_parser("list", help="one line per receipt of a unit")
    listing.add_argument("--unit", required=True, help="the unit (code or Chinese name)")
    listing.add_argument("--outcome", choices=OUTCOMES, help="only receipts with this outcome")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    for sub in (summary, listing):
        sub.add_argument("--since", type=parse_day, metavar="DATE",
                         help="only receipts decided on or after this day (YYYY-MM-DD, China)")
        sub.set_defaults(func=run)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    catalog = default_catalog(settings.catalog_dir)
    try:
        unit = resolve_unit(catalog, args.unit) if args.unit else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    since_ms = china_midnight_ms(args.since) if args.since else None
    try:
        if args.receipts_action == "summary":
            print_summary(summarize(settings, unit, since_ms,
                                    units=[u.code for u in catalog.units]))
        else:
            print_list(read_receipts(settings, [unit or ""], since_ms=since_ms),
                       args.outcome, as_json=args.json)
    except (ReceiptsError, ClientConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def print_summary(rows: list[tuple[str, str, str, int]]) -> None:
    table: dict[tuple[str, str], dict[str, int]] = {}
    for unit, day, outcome, count in rows:
        table.setdefault((unit, day), {})[outcome] = count
    print("\t".join(SUMMARY_HEADER))
    for (unit, day), counts in table.items():
        cells = [counts.get(o, 0) for o in OUTCOMES]
        print("\t".join([unit, day, *map(str, cells), str(sum(cells))]))


def print_list(receipts: list[Receipt], outcome: str | None, *, as_json: bool) -> None:
    chosen = [r for r in receipts if outcome is None or r.outcome == outcome]
    chosen.sort(key=lambda r: (r.decided_at, r.topic, r.partition, r.offset))
    if as_json:
        for r in chosen:
            print(json.dumps(asdict(r), ensure_ascii=False, sort_keys=True))
        return
    print("\t".join(LIST_HEADER))
    for r in chosen:
        at = datetime.fromtimestamp(r.decided_at / 1000, tz=CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
        print("\t".join([at, "" if r.source_row is None else str(r.source_row),
                         OUTCOME_NAMES_ZH.get(r.outcome, r.outcome), r.reason or "",
                         r.record_id or "", "" if r.version is None else str(r.version),
                         r.message.replace("\t", " "), r.event_id]))
