"""The per-person hash chain of archive updates (tamper evidence).

hash = SHA-256( previous_hash as ASCII hex || canonical JSON of the update without its `hash`,
`previous_hash` and `hashed_body` fields ). The update is taken in the form fastavro decodes it
(aware datetimes, dates), so the stream worker that emits it and a sink that decoded it agree
(the worker builds that text once and carries it in `hashed_body`, creditbus.archive.update); the
canonical JSON rules are in `creditbus.contract.canonical`. Covering the whole update (person
key, version, person fields, change) means no field can be altered, and no update removed,
reordered or inserted, without breaking the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from creditbus.contract.canonical import GENESIS_HASH, canonical_json

UNHASHED_FIELDS = frozenset({"hash", "previous_hash", "hashed_body"})


def hashed_view(update: Mapping[str, Any]) -> dict[str, Any]:
    """The update as hashed: without the unhashed fields, and without fields added after
    ArchiveUpdate version 2 while they are null (`change.record.repair`), so that an update
    read with a newer schema, which fills them with their null default, hashes as written."""
    view = {k: v for k, v in update.items() if k not in UNHASHED_FIELDS}
    change = view.get("change")
    if isinstance(change, Mapping):
        record = change.get("record")
        if isinstance(record, Mapping) and "repair" in record and record["repair"] is None:
            view["change"] = dict(change, record={k: v for k, v in record.items()
                                                  if k != "repair"})
    return view


def hashed_bytes(update: Mapping[str, Any]) -> bytes:
    """The canonical bytes that the chain hashes (also what the platform stores per update)."""
    return canonical_json(hashed_view(update))


def link_hash(previous_hash: str, body: bytes) -> str:
    digest = hashlib.sha256(previous_hash.encode("ascii"))
    digest.update(body)
    return digest.hexdigest()


def update_hash(previous_hash: str, update: Mapping[str, Any]) -> str:
    return link_hash(previous_hash, hashed_bytes(update))


def chain_problems(
    links: Iterable[tuple[int, str, str, bytes]], *, head: str | None = None
) -> list[tuple[int, str]]:
    """Check a person's chain given (version, previous_hash, hash, hashed bytes) in order.

    Returns (version, problem) pairs: a gap or repetition in versions, a previous hash that
    does not match the one before, a hash that does not match its bytes, a head that is not
    the last hash.
    """
    problems: list[tuple[int, str]] = []
    expected_previous = GENESIS_HASH
    expected_version = 1
    last_hash = GENESIS_HASH
    for version, previous_hash, hash_, body in links:
        if version != expected_version:
            problems.append((version, f"version {version} where {expected_version} was expected"))
        if previous_hash != expected_previous:
            problems.append((version, "previous_hash does not match the preceding update"))
        if link_hash(previous_hash, body) != hash_:
            problems.append((version, "hash does not match the stored content"))
        expected_previous = hash_
        expected_version = version + 1
        last_hash = hash_
    if head is not None and head != last_hash:
        problems.append((expected_version - 1, "chain head does not match the last update"))
    return problems


__all__ = ["GENESIS_HASH", "chain_problems", "hashed_bytes", "hashed_view", "link_hash",
           "update_hash"]
