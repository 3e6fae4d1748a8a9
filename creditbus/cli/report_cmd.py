"""`creditbus report progress`: the notice's progress table from the platform database."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from creditbus.catalog import default_catalog
from creditbus.errors import DatabaseError
from creditbus.settings import Settings

FORMATS = ("xlsx", "csv", "html")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="reports built from the platform database")
    kinds = parser.add_subparsers(dest="report", required=True, metavar="REPORT")
    progress = kinds.add_parser(
        "progress", help="the notice's progress table (重点人群信用档案建设情况表) from live data")
    progress.add_argument("--out", type=Path, default=Path("reports"),
                          help="output directory (default: ./reports)")
    progress.add_argument("--formats", type=parse_formats, default=FORMATS,
                          help="comma-separated subset of xlsx,csv,html (default: all three)")
    progress.set_defaults(func=run_report_progress)


def parse_formats(text: str) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise argparse.ArgumentTypeError(
            f"formats must be a comma-separated subset of {','.join(FORMATS)}")
    return wanted


def report_paths(out: Path, generated: datetime, formats: tuple[str, ...]) -> dict[str, Path]:
    stamp = f"{generated:%Y%m%d}"
    base = out / f"重点人群信用档案建设情况表_{stamp}"
    paths = {}
    if "xlsx" in formats:
        paths["xlsx"] = base.with_suffix(".xlsx")
    if "csv" in formats:
        paths["csv"] = base.with_suffix(".csv")
        paths["csv-facts"] = out / f"重点人群信用档案统计_{stamp}.csv"
    if "html" in formats:
        paths["html"] = base.with_suffix(".html")
    return paths


def run_report_progress(args: argparse.Namespace) -> int:
    from creditbus.platformdb.db import open_db, redact_url
    from creditbus.services.reports.csv_out import write_annex_csv, write_facts_csv
    from creditbus.services.reports.html import write_html
    from creditbus.services.reports.progress import load_report
    from creditbus.services.reports.xlsx import write_xlsx

    settings = Settings.from_env()
    catalog = default_catalog(settings.catalog_dir)
    db = open_db(settings.database_url, application_name="creditbus-report")
    try:
        report = load_report(catalog, db)
    except Exception as exc:  # the drivers' errors share no base class  # noqa: BLE001
        raise DatabaseError(f"cannot read the platform database "
                            f"{redact_url(settings.database_url)}: {type(exc).__name__}: {exc}"
                            ) from None
    finally:
        db.close()
    if not report.database_ready:
        print(f"warning: {redact_url(settings.database_url)} holds no platform schema yet; "
              "every unit is reported as 否", file=sys.stderr)
    writers = {"xlsx": write_xlsx, "csv": write_annex_csv, "csv-facts": write_facts_csv,
               "html": write_html}
    for kind, path in report_paths(args.out, report.generated_at, args.formats).items():
        writers[kind](report, path)
        print(f"wrote {path}")
    print(f"{report.established_count} of {len(report.rows)} units have pushed archives",
          file=sys.stderr)
    return 0
