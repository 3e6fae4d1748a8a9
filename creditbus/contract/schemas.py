"""The store of Avro contracts: every ``.avsc`` of a directory, parsed once.

File naming: ``<stem>.avsc`` is the current schema of the record it defines, ``<stem>.vN.avsc``
an earlier version N of the same record. Each version is indexed by the CRC-64-AVRO fingerprint
of its Parsing Canonical Form, which is what the single-object encoding carries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from creditbus.constants import NAMESPACE
from creditbus.errors import ConfigError

"""Namespace of every creditbus record."""

_VERSIONED = re.compile(r"^(?P<stem>.+)\.v(?P<version>[0-9]+)$")


class SchemaStoreError(ConfigError, ValueError):
    """A schema directory that cannot be loaded (bad JSON, bad Avro, ambiguous versions)."""


def qualify(name: str) -> str:
    """``Penalty`` -> ``cn.gov.ganzhou.creditbus.Penalty``; full names are returned as they are."""
    return name if "." in name else f"{NAMESPACE}.{name}"


def tagged(type_name: str, fields: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """A value for a union of records, e.g. ``tagged("Penalty", {...})`` for CreditEvent.content.

    This is the form `creditbus.contract.wire` decodes such unions to, and encodes unambiguously.
    """
    return (qualify(type_name), fields)


def default_schema_dir() -> Path:
    """The repository's ``schemas/avro`` directory, located relative to this package."""
    return Path(__file__).resolve().parents[2] / "schemas" / "avro"


def schema_fingerprint(schema: Any) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint (little-endian, as on the wire) of a schema."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def record_full_name(schema: Any) -> str:
    """The full name of a top-level named schema (``namespace.name``)."""
    if not isinstance(schema, dict) or "name" not in schema:
        raise SchemaStoreError("a contract must be a named Avro type at its top level")
    name = str(schema["name"])
    namespace = schema.get("namespace")
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One version of one record's schema."""

    name: str
    """Full record name, e.g. ``cn.gov.ganzhou.creditbus.CreditEvent``."""
    version: int
    """N for ``.vN.avsc`` files; the current file gets one more than the highest N (or 1)."""
    is_current: bool
    path: Path
    raw: dict[str, Any]
    """The schema as loaded from JSON (what compatibility checks and registries take)."""
    parsed: dict[str, Any]
    """The fastavro-parsed schema (what readers and writers take)."""
    canonical_form: str
    fingerprint: bytes
    """CRC-64-AVRO of ``canonical_form``, 8 bytes little-endian."""

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


class SchemaStore:
    """All contracts of a directory: current schema and every version per record name."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_schema_dir()
        if not self.directory.is_dir():
            raise SchemaStoreError(f"schema directory not found: {self.directory}")
        self._current: dict[str, SchemaVersion] = {}
        self._versions: dict[str, tuple[SchemaVersion, ...]] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        self._short: dict[str, str] = {}
        self._load()

    # -- loading ------------------------------------------------------------------------------

    def _load(self) -> None:
        loaded: list[tuple[str, int | None, Path, dict[str, Any]]] = []
        for path in sorted(self.directory.glob("*.avsc")):
            stem = path.name[: -len(".avsc")]
            match = _VERSIONED.match(stem)
            version = int(match["version"]) if match else None
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SchemaStoreError(f"{path.name}: not readable JSON ({exc})") from exc
            loaded.append((record_full_name(raw), version, path, raw))

        by_name: dict[str, list[tuple[int | None, Path, dict[str, Any]]]] = {}
        for name, version, path, raw in loaded:
            by_name.setdefault(name, []).append((version, path, raw))

        for name, entries in by_name.items():
            currents = [e for e in entries if e[0] is None]
            if len(currents) != 1:
                files = ", ".join(sorted(e[1].name for e in entries))
                raise SchemaStoreError(f"{name}: needs exactly one current file, got: {files}")
            numbers = [e[0] for e in entries if e[0] is not None]
            if len(numbers) != len(set(numbers)):
                raise SchemaStoreError(f"{name}: a version number is used twice")
            current_number = max(numbers, default=0) + 1
            versions = [
                self._build(name, current_number if v is None else v, v is None, path, raw)
                for v, path, raw in entries
            ]
            versions.sort(key=lambda s: s.version)
            self._versions[name] = tuple(versions)
            self._current[name] = versions[-1]
            short = name.rsplit(".", 1)[-1]
            if short in self._short and self._short[short] != name:
                raise SchemaStoreError(f"two records share the short name {short}")
            self._short[short] = name
            for sv in versions:
                other = self._by_fingerprint.get(sv.fingerprint)
                if other is not None and other.canonical_form != sv.canonical_form:
                    raise SchemaStoreError(f"fingerprint collision: {sv.path.name}")
                # Identical versions share a fingerprint; keep the current one then.
                if other is None or sv.is_current:
                    self._by_fingerprint[sv.fingerprint] = sv

    @staticmethod
    def _build(
        name: str, version: int, is_current: bool, path: Path, raw: dict[str, Any]
    ) -> SchemaVersion:
        try:
            # One named-schema namespace per file: versions redefine the same names.
            parsed = parse_schema(raw, named_schemas={})
            canonical = to_parsing_canonical_form(raw)
        except Exception as exc:
            raise SchemaStoreError(f"{path.name}: not a valid Avro schema ({exc})") from exc
        return SchemaVersion(
            name=name,
            version=version,
            is_current=is_current,
            path=path,
            raw=raw,
            parsed=parsed,
            canonical_form=canonical,
            fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        )

    # -- lookups ------------------------------------------------------------------------------

    def full_name(self, name: str) -> str:
        """Accepts a full or a short record name; raises KeyError for unknown records."""
        if name in self._current:
            return name
        try:
            return self._short[name]
        except KeyError:
            raise KeyError(f"unknown record: {name}") from None

    def names(self) -> tuple[str, ...]:
        """Full names of all records, sorted."""
        return tuple(sorted(self._current))

    def current(self, name: str) -> SchemaVersion:
        """The current schema of a record (full or short name)."""
        return self._current[self.full_name(name)]

    def versions(self, name: str) -> tuple[SchemaVersion, ...]:
        """All versions of a record, oldest first; the last one is the current."""
        return self._versions[self.full_name(name)]

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        """The version with this 8-byte fingerprint, or None."""
        return self._by_fingerprint.get(fp)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._current or name in self._short)
