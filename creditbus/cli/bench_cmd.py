"""`creditbus bench`: measure the bus end to end against the raw limit (see docs/benchmark.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from creditbus.errors import ConfigError
from creditbus.settings import REPO_ROOT, Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmark throughput, latency and backfill")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="messages pre-produced for the raw limit and the backfill")
    parser.add_argument("--rates", default="1000,5000",
                        help="steady publish rates for the latency runs (events/s)")
    parser.add_argument("--rate-seconds", type=int, default=20,
                        help="how long each latency run is measured")
    parser.add_argument("--warmup-seconds", type=int, default=10,
                        help="publishing at the rate before each latency run is measured")
    parser.add_argument("--workers", type=int, default=2,
                        help="stream worker processes (2: one per core, as in docker-compose)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--secure", action="store_true",
                        help="the broker in secure mode: every client over SASL_SSL with a "
                             "user of its own, ACLs (the cost of TLS and SCRAM)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from creditbus.devtools.bench import report, runner

    try:
        rates = tuple(int(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        raise ConfigError(f"--rates must be whole numbers separated by commas, "
                          f"not {args.rates!r}") from None
    problems = [f"{name} must be at least {low}" for name, value, low in (
        ("--events", args.events, 1), ("--workers", args.workers, 1),
        ("--rate-seconds", args.rate_seconds, 1), ("--warmup-seconds", args.warmup_seconds, 0),
        ("every rate in --rates", min(rates, default=1), 1)) if value < low]
    if problems:
        raise ConfigError("; ".join(problems))
    result = runner.run(Settings.from_env(), events=args.events, rates=rates,
                        rate_seconds=args.rate_seconds, workers=args.workers, keep=args.keep,
                        warmup_seconds=args.warmup_seconds, secure=args.secure)
    json_path, md_path = report.write(result, args.out)
    print(report.markdown(result))
    print(f"written: {json_path} and {md_path}", file=sys.stderr)
    return 0
