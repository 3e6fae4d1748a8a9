"""The worker's table: one archive per person, co-partitioned with the by-person topic.

Faust writes each changelog entry to the partition of the event being processed, so the worker
that owns a person's partition owns that person's archive.

Besides the archive itself, the value keeps `recent`: the encoded updates of messages that the
consumer has not committed past yet, as [version, offset, base64 bytes]. After a crash exactly
those messages are processed again, and their updates are re-emitted from here. Keeping them in
the same value as the archive makes the two one atomic changelog write: a replay can never find
the archive changed but the update to re-emit missing.
"""

from __future__ import annotations

import base64
from typing import Any

import faust
import orjson


class ArchiveTables:
    def __init__(self, app: faust.App, partitions: int) -> None:
        self.archives = app.Table(
            "archives", default=None, partitions=partitions, key_type=bytes, value_type=bytes,
            help="Person key -> the person's archive (JSON).",
        )

    def load(self, person_key: str) -> dict[str, Any] | None:
        stored = self.archives.get(person_key.encode())
        return orjson.loads(stored) if stored else None

    def save(self, archive: dict[str, Any]) -> None:
        self.archives[archive["person_key"].encode()] = orjson.dumps(archive)


RECENT_CAP = 256
"""A bound in case commits stop advancing on a partition (a known faust-streaming rebalance
problem, see docs/guarantees.md): far more changes of one person than one commit interval
ever holds."""


def keep_recent(archive: dict[str, Any], committed: int | None,
                new: list[tuple[int, int, bytes]]) -> None:
    """Drop updates of messages below the committed offset; add (version, offset, bytes)."""
    kept = [e for e in archive.get("recent", []) if committed is None or e[1] >= committed]
    kept += [[v, o, base64.b64encode(data).decode()] for v, o, data in new]
    archive["recent"] = kept[-RECENT_CAP:]


def recall(archive: dict[str, Any] | None, first: int, last: int) -> list[tuple[int, bytes]]:
    """The kept updates with versions first..last, in order."""
    found = [(e[0], base64.b64decode(e[2])) for e in (archive or {}).get("recent", [])
             if first <= e[0] <= last]
    return sorted(found)
