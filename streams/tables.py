"""The worker's table: one archive state per person, co-partitioned with the by-person topic.

Faust writes each changelog entry to the partition of the event being processed
(`creditbus.streams.transport.processing`), so the worker that owns a person's partition owns that
person's state. Values are `creditbus.archive.state` encodings; a value of the first release's
format is migrated when read and stored in the new format at its next change.
"""

from __future__ import annotations

from collections.abc import Iterator

import faust

from creditbus.archive.state import PersonState, decode_state, encode_state


class ArchiveTable:
    def __init__(self, app: faust.App, partitions: int) -> None:
        self.table = app.Table(
            "archives", default=None, partitions=partitions, key_type=bytes, value_type=bytes,
            help="Person key -> the person's archive state (creditbus.archive.state).",
        )

    def load(self, person_key: str) -> PersonState | None:
        stored = self.table.get(person_key.encode())
        return decode_state(person_key, stored) if stored else None

    def save(self, person_key: str, state: PersonState) -> None:
        self.table[person_key.encode()] = encode_state(state)

    def items(self) -> Iterator[tuple[str, PersonState]]:
        for key, value in list(self.table.items()):
            if value:
                person_key = key.decode()
                yield person_key, decode_state(person_key, value)
