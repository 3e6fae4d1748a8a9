"""Which updates of a batch to apply, and the rows they produce (pure, no I/O).

An update is applied only when its version is newer than the person's stored archive version
(or the version applied earlier in the same batch); an older or equal version is skipped, so
redelivered updates change nothing and a newer version is never overwritten by an older one.
A version that skips ahead (gap), or one whose previous hash is not the stored chain head
(fork), is still applied, and reported so it can be logged and counted; `creditbus verify`
reports the broken chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from creditbus.connectors.updates import Prepared

from creditbus.contract.canonical import GENESIS_HASH
from creditbus.platformdb.records import Row, log_row, person_row, record_key, record_row

GAP = "gap"
FORK = "fork"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    person_key: str
    version: int
    kind: str  # GAP | FORK
    stored_version: int


@dataclass
class Plan:
    applied: list[Prepared] = field(default_factory=list)
    skipped: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    persons: dict[str, Row] = field(default_factory=dict)  # final row per person
    records: dict[tuple[str, str, str], Row] = field(default_factory=dict)  # final row per record
    logs: list[Row] = field(default_factory=list)

    def merge(self, other: Plan) -> None:
        """Add a later plan of the same transaction (row-by-row mode)."""
        self.applied += other.applied
        self.skipped += other.skipped
        self.breaks += other.breaks
        self.persons.update(other.persons)
        self.records.update(other.records)
        self.logs += other.logs


def plan_batch(items: Sequence[Prepared], heads: Mapping[str, tuple[int, str]],
               committed_at: str) -> Plan:
    """Plan `items` (accepted updates, in consumption order) against the stored
    (archive_version, chain_head) of their persons."""
    state = dict(heads)
    plan = Plan()
    for item in items:
        assert item.doc is not None and item.body is not None
        pk, version = item.person_key, item.version
        stored_version, head = state.get(pk, (0, GENESIS_HASH))
        if version <= stored_version:
            plan.skipped += 1
            continue
        if version > stored_version + 1:
            plan.breaks.append(ChainBreak(pk, version, GAP, stored_version))
        elif item.previous_hash != head:
            plan.breaks.append(ChainBreak(pk, version, FORK, stored_version))
        state[pk] = (version, item.hash)
        doc = item.doc
        plan.persons[pk] = person_row(doc, item.hash)
        plan.records[record_key(doc)] = record_row(doc)
        plan.logs.append(log_row(doc, item.body, item.previous_hash, item.hash, committed_at))
        plan.applied.append(item)
    return plan
