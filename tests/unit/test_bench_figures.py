"""The benchmark's own arithmetic: histogram quantiles, CPU and disk accounting, argument checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from creditbus.devtools.bench.report import markdown
from creditbus.devtools.bench.runner import BenchResult, cpu_seconds, histogram_quantiles, topic_mib

NAME = "creditbus_publish_to_commit_seconds"


def buckets(counts: dict[str, float]) -> dict[str, float]:
    return {f'{NAME}_bucket{{le="{le}"}}': value for le, value in counts.items()}


def test_quantiles_interpolate_within_a_bucket_of_the_window() -> None:
    before = buckets({"0.5": 10, "1.0": 10, "+Inf": 10})
    # 100 new observations: 50 up to 0.5 s, 40 in (0.5, 1], 10 above 1 s
    after = buckets({"0.5": 60, "1.0": 100, "+Inf": 110})
    q = histogram_quantiles(before, after, NAME)
    assert q["count"] == 100
    assert q["p50"] == pytest.approx(0.5)
    assert q["p95"] == pytest.approx(1.0)  # rank 95 lies in the open +Inf bucket: its floor
    assert q["p99"] == pytest.approx(1.0)
    q80 = histogram_quantiles(before, after, NAME, qs=(0.8,))
    assert q80["p80"] == pytest.approx(0.5 + 0.5 * (80 - 50) / 40)


def test_quantiles_of_an_empty_window_are_absent() -> None:
    same = buckets({"0.5": 3, "+Inf": 3})
    assert histogram_quantiles(same, same, NAME) == {"count": 0.0}


def test_cpu_seconds_grow_with_work_and_vanish_with_the_process() -> None:
    start = cpu_seconds(os.getpid())
    total = 0
    for i in range(3_000_000):
        total += i
    assert cpu_seconds(os.getpid()) > start
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu_seconds(gone.pid) == 0.0


def test_topic_sizes_add_partitions_and_fold_the_raw_topics(tmp_path: Path) -> None:
    mib = 1024 * 1024
    for name, size in (("bench.raw.tax-0", 2 * mib), ("bench.raw.tax-1", mib),
                       ("bench.raw.education-0", mib), ("bench.archive.updates-0", 2 * mib),
                       ("__consumer_offsets-0", mib)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "00000000000000000000.log").write_bytes(b"x" * size)
    (tmp_path / "meta.properties").write_text("not a partition")
    sizes = topic_mib(tmp_path, "bench")
    assert set(sizes) == {"raw.*", "archive.updates", "__consumer_offsets"}
    assert sizes == {"raw.*": 4.0, "archive.updates": 2.0, "__consumer_offsets": 1.0}


def test_topic_sizes_round_the_sum_not_each_partition(tmp_path: Path) -> None:
    for unit in range(40):  # 40 partitions of 8 KiB: 0.3 MiB, though each rounds to 0.0
        (tmp_path / f"bench.raw.u{unit}-0").mkdir()
        (tmp_path / f"bench.raw.u{unit}-0" / "0.log").write_bytes(b"x" * 8192)
    assert topic_mib(tmp_path, "bench") == {"raw.*": 0.3}


def test_report_shows_cpu_per_event_and_both_latency_halves() -> None:
    result = BenchResult(date="2026-11-24 12:00", cores=2, kafka_version="3.9.1", partitions=4,
                         workers=2, events=1000, valid=900, duplicates=80, bad=20, persons=300,
                         cpu_seconds={"worker0": 2.0, "broker": 0.5})
    result.latency["1000"] = {"p50": 0.4, "p95": 0.7, "p99": 0.9, "p50_update": 0.1,
                              "p95_update": 0.2, "p99_update": 0.3, "sent": 2000,
                              "achieved_rate": 1000, "cpu_worker0": 1.0}
    text = markdown(result)
    assert "| CPU during backfill: worker0 | 2 s (2.000 ms per event) |" in text
    assert "| CPU per event at 1,000/s (ms) | worker0 0.50 |" in text
    assert "0.400 / 0.700 / 0.900 s" in text and "0.100 / 0.200 / 0.300 s" in text


@pytest.mark.parametrize("args, message", [
    (["--rates", "1000,fast"], "--rates must be whole numbers"),
    (["--events", "0"], "--events must be at least 1"),
    (["--workers", "0", "--rates", "0"], "--workers must be at least 1; every rate"),
])
def test_bad_arguments_are_refused_before_anything_starts(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "creditbus.cli.main", "bench", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Starting a broker" not in done.stderr
