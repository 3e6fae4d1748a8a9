"""Benchmark figures as JSON and a short Markdown table."""

from __future__ import annotations

import json
from pathlib import Path

from creditbus.devtools.bench.runner import BenchResult, as_dict


def markdown(r: BenchResult) -> str:
    lines = [
        f"Benchmark of {r.date}: {r.cores} cores, Apache Kafka {r.kafka_version}, "
        f"{r.partitions} partitions, {r.workers} worker(s), SQLite platform DB.",
        "",
        f"Workload: {r.events:,} messages ({r.valid:,} valid, {r.duplicates:,} duplicates, "
        f"{r.bad:,} bad) for {r.persons:,} persons.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| raw limit (consume + Avro decode) | {r.raw_limit_eps:,.0f} events/s |",
        f"| bus end to end (inbound -> platform rows) | {r.end_to_end_eps:,.0f} events/s |",
        f"| ratio end to end / raw | {r.ratio:.2f} |",
        f"| backfill of {r.events:,} events | {r.backfill_seconds:,.1f} s |",
    ]
    for name, mib in r.peak_rss_mib.items():
        lines.append(f"| peak RSS {name} | {mib:,.0f} MiB |")
    for name, seconds in r.cpu_seconds.items():
        per_event_ms = 1000 * seconds / r.events if r.events else 0.0
        lines.append(f"| CPU during backfill: {name} | {seconds:,.0f} s "
                     f"({per_event_ms:.3f} ms per event) |")
    for name, mib in r.state_mib.items():
        lines.append(f"| on disk: {name} | {mib:,.0f} MiB |")
    for kind, mib in sorted(r.topic_mib.items(), key=lambda kv: -kv[1]):
        lines.append(f"| on disk: Kafka topic {kind} | {mib:,.1f} MiB |")
    for rate, q in r.latency.items():
        lines.append(
            f"| latency at {int(rate):,}/s (achieved {q.get('achieved_rate', 0):,.0f}/s) "
            f"p50 / p95 / p99 | {q.get('p50', 0):.3f} / {q.get('p95', 0):.3f} / "
            f"{q.get('p99', 0):.3f} s |")
        cpu = {k.removeprefix("cpu_"): v for k, v in q.items() if k.startswith("cpu_")}
        if cpu and q.get("sent"):
            per_event = ", ".join(f"{name} {1000 * used / q['sent']:.2f}"
                                  for name, used in cpu.items())
            lines.append(f"| CPU per event at {int(rate):,}/s (ms) | {per_event} |")
        if "p50_update" in q:
            lines.append(
                f"| of which publication -> archive update (worker) p50 / p95 / p99 | "
                f"{q['p50_update']:.3f} / {q.get('p95_update', 0):.3f} / "
                f"{q.get('p99_update', 0):.3f} s |")
    if r.steps_us:
        lines += ["", "Domain work per inbound message, without Kafka (CPU µs):", "",
                  "| step | µs |", "| --- | --- |"]
        lines += [f"| {step} | {us:,.1f} |" for step, us in r.steps_us.items()]
        lines.append(f"| **all steps** | **{sum(r.steps_us.values()):,.1f}** |")
    if r.records_written and r.events:
        lines += ["", "Kafka records written during the backfill:", "",
                  "| topic | records | per inbound message |", "| --- | --- | --- |"]
        lines += [f"| {kind} | {n:,} | {n / r.events:.3f} |"
                  for kind, n in r.records_written.items()]
    if r.floors:
        lines += ["", "Floors: consumers that do nothing, on the same topics:", "",
                  "| consumer | records | records/s | CPU µs per record | per inbound message |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {name} | {f.get('records', 0):,.0f} | {f.get('records_per_s', 0):,.0f} "
                  f"| {f.get('cpu_us_per_record', 0):.1f} "
                  f"| {f.get('cpu_us_per_record', 0) * f.get('records', 0) / r.events:.1f} |"
                  for name, f in r.floors.items()] if r.events else []
    lines += ["", *[f"- {note}" for note in r.notes]] if r.notes else []
    return "\n".join(lines) + "\n"


def write(result: BenchResult, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = result.date.replace(" ", "_").replace(":", "")
    json_path = directory / f"{stem}.json"
    md_path = directory / f"{stem}.md"
    json_path.write_text(json.dumps(as_dict(result), indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(result))
    (directory / "latest.md").write_text(markdown(result))
    return json_path, md_path
