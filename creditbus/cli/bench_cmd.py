"""`creditbus bench`: measure the bus end to end against the raw limit (see docs/bench.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from creditbus.settings import REPO_ROOT, Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmark throughput, latency and backfill")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="messages pre-produced for the raw limit and the backfill")
    parser.add_argument("--rates", default="1000,5000",
                        help="steady publish rates for the latency runs (events/s)")
    parser.add_argument("--rate-seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2,
                        help="stream worker processes (2: one per core, as in docker-compose)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from creditbus.bench import report, runner

    rates = tuple(int(r) for r in args.rates.split(",") if r.strip())
    result = runner.run(Settings.from_env(), events=args.events, rates=rates,
                        rate_seconds=args.rate_seconds, workers=args.workers, keep=args.keep)
    json_path, md_path = report.write(result, args.out)
    print(report.markdown(result))
    print(f"written: {json_path} and {md_path}", file=sys.stderr)
    return 0
