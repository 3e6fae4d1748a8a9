"""The worker's tables: one archive per person, and the recent updates kept for replay.

Both are co-partitioned with the by-person topic (Faust writes each changelog entry to the
partition of the event being processed), so the worker that owns a person's partition owns
that person's archive and replay entries.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

REPLAY_DEPTH = 16
"""Updates kept per person for re-emission after a crash. Faust flushes the producer before it
commits offsets, so only messages after the last commit (about one commit interval) are ever
replayed; 16 changes of one person inside one interval is far beyond what any unit publishes."""


class ArchiveTables:
    def __init__(self, app: faust.App, partitions: int) -> None:
        self.archives = app.Table(
            "archives", default=None, partitions=partitions, key_type=bytes, value_type=bytes,
            help="Person key -> the person's archive (JSON).",
        )
        self.replay = app.Table(
            "replay", default=None, partitions=partitions, key_type=bytes, value_type=bytes,
            help="'<person key>:<version>' -> the encoded archive update.",
        )

    def load(self, person_key: str) -> dict[str, Any] | None:
        stored = self.archives.get(person_key.encode())
        return orjson.loads(stored) if stored else None

    def save(self, archive: dict[str, Any]) -> None:
        self.archives[archive["person_key"].encode()] = orjson.dumps(archive)

    def remember(self, person_key: str, version: int, data: bytes) -> None:
        self.replay[f"{person_key}:{version}".encode()] = data
        old = f"{person_key}:{version - REPLAY_DEPTH}".encode()
        if version > REPLAY_DEPTH and old in self.replay:
            del self.replay[old]

    def recall(self, person_key: str, version: int) -> bytes | None:
        return self.replay.get(f"{person_key}:{version}".encode())
