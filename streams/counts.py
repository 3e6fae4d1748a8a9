"""Metric counts of a batch, applied once: a labelled child's lookup costs more than its
increment, and the edge stage's counts cross a process boundary to the worker's endpoint."""

from __future__ import annotations

from collections import Counter

from creditbus import metrics

Counts = Counter[tuple[str, tuple[str, ...]]]
"""(metric name in creditbus.metrics, label values) -> amount."""


def apply_counts(counts: Counts) -> None:
    """Add a batch's counts to this process's Prometheus counters."""
    for (name, labels), amount in counts.items():
        metric = getattr(metrics, name)
        (metric.labels(*labels) if labels else metric).inc(amount)
