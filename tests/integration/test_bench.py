"""`creditbus bench` end to end on a small workload: its own broker, the real worker and sink.

The figures themselves are not asserted (they are what the benchmark is for); what is asserted
is that every event is accounted for, every measure was taken, and the report is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_bench_measures_everything_and_writes_the_report(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("CREDITBUS_BOOTSTRAP", None)
    done = subprocess.run(
        [sys.executable, "-m", "creditbus.cli.main", "bench", "--events", "1500",
         "--rates", "300", "--rate-seconds", "2", "--warmup-seconds", "1", "--workers", "1",
         "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| raw limit (consume + Avro decode) |" in done.stdout
    assert (tmp_path / "latest.md").read_text() == done.stdout.rstrip("\n") + "\n"

    result = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert result["events"] == result["valid"] + result["duplicates"] + result["bad"] >= 1500
    assert result["duplicates"] > 0 and result["bad"] > 0
    assert result["raw_limit_eps"] > 0 and result["end_to_end_eps"] > 0
    assert result["backfill_seconds"] > 0
    assert set(result["cpu_seconds"]) == {"worker0", "worker0-edge", "sink", "broker"}
    assert all(seconds > 0 for seconds in result["cpu_seconds"].values())
    assert result["peak_rss_mib"]["worker0"] > 0
    assert result["topic_mib"]["raw.*"] > 0 and result["topic_mib"]["archive.updates"] > 0

    steps = result["steps_us"]
    assert set(steps) == {"ingest", "partition + pack", "unpack", "state load + save", "apply",
                          "encode update", "sink prepare", "sink write"}
    assert all(us > 0 for us in steps.values())
    written = result["records_written"]
    assert written["inbound"] == result["events"]
    # every valid event made one update: the workload publishes each record once
    assert written["updates"] == result["valid"]
    assert written["dead letters"] == result["bad"]
    assert 0 < written["by-person"] < result["events"] / 5  # packs, not one record per event
    assert 0 < written["changelog"] <= written["updates"]
    floors = result["floors"]
    assert set(floors) == {"confluent-kafka, inbound", "confluent-kafka, by-person",
                           "confluent-kafka, updates", "Faust agent, by-person"}
    for floor in floors.values():  # timed from the first record: a tiny topic may cost 0
        assert floor["records"] > 0 and floor["records_per_s"] > 0
        assert floor["cpu_us_per_record"] >= 0
    assert floors["confluent-kafka, inbound"]["records"] == written["inbound"]
    assert floors["Faust agent, by-person"]["records"] == written["by-person"]
    assert "| ingest |" in done.stdout and "| Faust agent, by-person |" in done.stdout

    latency = result["latency"]["300"]
    assert latency["sent"] >= 400  # 2 s at 300/s, give or take the pacing
    assert latency["committed"] == latency["sent"]  # each fresh event became one row
    assert latency["count"] >= latency["sent"]
    assert 0 < latency["p50_update"] <= latency["p50"] <= latency["p99"]
