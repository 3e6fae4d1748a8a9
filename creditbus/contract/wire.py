"""The wire format: Avro bodies in one of two framings.

Single-object encoding (the default, no registry needed)::

    C3 01 | fingerprint (8 bytes, CRC-64-AVRO, little-endian) | Avro binary body

Confluent Schema Registry framing (when a registry client is given)::

    00 | schema id (4 bytes, big-endian) | Avro binary body

`Wire.encode` writes with the current schema of a record; `Wire.decode` accepts both framings,
finds the writer schema (by fingerprint in the `SchemaStore`, or by id in the registry) and
resolves it against the current schema of the same record. Every decoding failure is a
`WireError` whose message never contains payload bytes or values.

Decoded data is what fastavro returns, with one convention: a union of several records (the
``content`` of a CreditEvent) decodes to a tuple ``(record full name, fields)``, and `encode`
accepts the same tuple (or a plain dict, which fastavro matches to the first fitting branch).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn, Protocol

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from creditbus.contract.schemas import (
    SchemaStore,
    SchemaVersion,
    record_full_name,
    schema_fingerprint,
)
from creditbus.errors import ContractError

SINGLE_OBJECT_MARKER: Final = b"\xc3\x01"
SINGLE_OBJECT_HEADER_LEN: Final = 10
CONFLUENT_MAGIC: Final = 0x00
CONFLUENT_HEADER_LEN: Final = 5

WIRE_EMPTY: Final = "WIRE_EMPTY"
WIRE_UNKNOWN_FRAMING: Final = "WIRE_UNKNOWN_FRAMING"
WIRE_UNKNOWN_FINGERPRINT: Final = "WIRE_UNKNOWN_FINGERPRINT"
WIRE_UNKNOWN_SCHEMA_ID: Final = "WIRE_UNKNOWN_SCHEMA_ID"
WIRE_TRUNCATED: Final = "WIRE_TRUNCATED"
WIRE_AVRO_INVALID: Final = "WIRE_AVRO_INVALID"
WIRE_REGISTRY_UNAVAILABLE: Final = "WIRE_REGISTRY_UNAVAILABLE"
"""The registry could not be asked (network, server error): retry, do not dead-letter."""

_READ_OPTIONS: Final = {"return_record_name": True, "return_record_name_override": True}
_NEGATIVE_CACHE_MAX: Final = 1024

Framing = Literal["single-object", "confluent"]


class SchemaRegistry(Protocol):
    """The two calls `Wire` makes on a registry client.

    ``confluent_kafka.schema_registry.SchemaRegistryClient`` satisfies it (that module needs the
    ``confluent-kafka[schemaregistry]`` extra). ``get_schema`` failures carrying
    ``http_status_code == 404`` mean "no such id"; any other failure means "unreachable".
    """

    def register_schema(self, subject_name: str, schema: Any) -> int: ...

    def get_schema(self, schema_id: int) -> Any: ...


@dataclass(frozen=True)
class RegistrySchema:
    """Stand-in for ``confluent_kafka.schema_registry.Schema`` when that module is not
    installed (only registry doubles can be used then)."""

    schema_str: str
    schema_type: str = "AVRO"


class WireError(ContractError):
    """A message that cannot be framed or decoded. ``code`` is one of the WIRE_* constants."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def retriable(self) -> bool:
        """True when the message may decode later (registry unreachable), False when it never
        will (dead-letter it)."""
        return self.code == WIRE_REGISTRY_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded message."""

    record_name: str
    """Full record name, e.g. ``cn.gov.ganzhou.creditbus.CreditEvent``."""
    datum: dict[str, Any]
    """The record read with the current schema of ``record_name``."""
    framing: Framing
    fingerprint: bytes | None
    """Writer schema fingerprint (single-object framing), else None."""
    schema_id: int | None
    """Registry schema id (Confluent framing), else None."""
    writer_version: int | None
    """Store version number of the writer schema, None if the store does not hold it."""


@dataclass(frozen=True, slots=True)
class _ReadPlan:
    """Everything `decode` needs for one writer schema, computed once."""

    record_name: str
    writer: dict[str, Any]
    reader: dict[str, Any] | None  # None: writer is the current schema, no resolution needed
    writer_version: int | None


@dataclass(frozen=True, slots=True)
class _WritePlan:
    record_name: str
    schema: dict[str, Any]
    header: bytes


class Wire:
    """Encoder/decoder bound to a `SchemaStore` and, optionally, a Schema Registry client.

    Without a registry, `encode` writes the single-object encoding; with one, the Confluent
    framing, registering the current schema under ``<topic>-value`` (when ``topic`` is given)
    or under the record's full name. `decode` always accepts both framings.
    """

    def __init__(
        self, store: SchemaStore | None = None, registry: SchemaRegistry | None = None
    ) -> None:
        self.store = store if store is not None else SchemaStore()
        self.registry = registry
        self._write_plans: dict[tuple[str, str | None], _WritePlan] = {}
        self._read_by_fp: dict[bytes, _ReadPlan] = {}
        self._read_by_id: dict[int, _ReadPlan] = {}
        self._unknown_ids: dict[int, str] = {}
        for name in self.store.names():
            current = self.store.current(name)
            for sv in self.store.versions(name):
                if self.store.by_fingerprint(sv.fingerprint) is sv:
                    self._read_by_fp[sv.fingerprint] = self._plan_for(sv, current)

    @staticmethod
    def _plan_for(writer: SchemaVersion, current: SchemaVersion) -> _ReadPlan:
        same = writer.canonical_form == current.canonical_form
        return _ReadPlan(
            record_name=current.name,
            writer=writer.parsed,
            reader=None if same else current.parsed,
            writer_version=writer.version,
        )

    # -- encoding -----------------------------------------------------------------------------

    def encode(
        self, record_name: str, datum: Mapping[str, Any], *, topic: str | None = None
    ) -> bytes:
        """Encode ``datum`` with the current schema of ``record_name`` (full or short name).

        Raises `WireError` (WIRE_AVRO_INVALID) when the datum does not fit the schema, KeyError
        for an unknown record, and the registry client's own errors when registering fails.
        """
        plan = self._write_plans.get((record_name, topic)) or self._write_plan(record_name, topic)
        buf = io.BytesIO()
        buf.write(plan.header)
        try:
            schemaless_writer(buf, plan.schema, datum, strict_allow_default=True)
        except Exception as exc:  # noqa: BLE001 - fastavro raises many types on bad data
            raise WireError(WIRE_AVRO_INVALID, _describe_invalid(plan, datum, exc)) from None
        return buf.getvalue()

    def encode_many(
        self, record_name: str, datums: Iterable[Mapping[str, Any]], *, topic: str | None = None
    ) -> list[bytes]:
        """`encode` for a batch (same record and topic)."""
        return [self.encode(record_name, datum, topic=topic) for datum in datums]

    def _write_plan(self, record_name: str, topic: str | None) -> _WritePlan:
        current = self.store.current(record_name)
        if self.registry is None:
            header = SINGLE_OBJECT_MARKER + current.fingerprint
        else:
            subject = f"{topic}-value" if topic else current.name
            schema_id = self._register(subject, current)
            header = struct.pack(">bI", CONFLUENT_MAGIC, schema_id)
            # A reader in this process knows the id without asking the registry.
            self._read_by_id.setdefault(schema_id, self._plan_for(current, current))
        plan = _WritePlan(current.name, current.parsed, header)
        self._write_plans[(record_name, topic)] = plan
        return plan

    def _register(self, subject: str, sv: SchemaVersion) -> int:
        try:
            from confluent_kafka.schema_registry import Schema
        except ImportError:  # the schemaregistry extra is missing: a registry double is in use
            schema: Any = RegistrySchema(json.dumps(sv.raw))
        else:
            schema = Schema(json.dumps(sv.raw), "AVRO")
        assert self.registry is not None
        return int(self.registry.register_schema(subject, schema))

    # -- decoding -----------------------------------------------------------------------------

    def decode(self, data: bytes) -> Decoded:
        """Decode a message in either framing; raises only `WireError`."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise WireError(WIRE_EMPTY, f"expected bytes, got {type(data).__name__}")
        size = len(data)
        if size == 0:
            raise WireError(WIRE_EMPTY, "empty message")
        first = data[0]
        if first == 0xC3:
            if size < SINGLE_OBJECT_HEADER_LEN:
                if size == 1 or data[1] == 0x01:
                    raise WireError(WIRE_TRUNCATED, f"single-object header cut at {size} bytes")
                raise WireError(WIRE_UNKNOWN_FRAMING, "unknown framing marker")
            if data[1] != 0x01:
                raise WireError(WIRE_UNKNOWN_FRAMING, "unknown framing marker")
            fp = bytes(data[2:10])
            plan = self._read_by_fp.get(fp)
            if plan is None:
                raise WireError(WIRE_UNKNOWN_FINGERPRINT, f"no schema with fingerprint {fp.hex()}")
            datum = self._read_body(data, SINGLE_OBJECT_HEADER_LEN, plan)
            return Decoded(plan.record_name, datum, "single-object", fp, None, plan.writer_version)
        if first == CONFLUENT_MAGIC:
            if size < CONFLUENT_HEADER_LEN:
                raise WireError(WIRE_TRUNCATED, f"registry header cut at {size} bytes")
            schema_id = int.from_bytes(data[1:5], "big")
            plan = self._read_by_id.get(schema_id) or self._fetch(schema_id)
            datum = self._read_body(data, CONFLUENT_HEADER_LEN, plan)
            return Decoded(
                plan.record_name, datum, "confluent", None, schema_id, plan.writer_version
            )
        raise WireError(WIRE_UNKNOWN_FRAMING, f"unknown framing byte 0x{first:02x}")

    @staticmethod
    def _read_body(data: bytes, offset: int, plan: _ReadPlan) -> dict[str, Any]:
        body = memoryview(data)[offset:]
        if len(body) == 0:
            raise WireError(WIRE_TRUNCATED, "header without a body")
        buf = io.BytesIO(body)
        try:
            datum = schemaless_reader(buf, plan.writer, plan.reader, **_READ_OPTIONS)
        except EOFError:
            raise WireError(WIRE_TRUNCATED, f"{plan.record_name} body ends early") from None
        except Exception as exc:  # noqa: BLE001 - any fastavro failure means an invalid body
            if buf.tell() >= len(body):  # failed after a short read: the body was cut
                raise WireError(WIRE_TRUNCATED, f"{plan.record_name} body ends early") from None
            raise WireError(
                WIRE_AVRO_INVALID, f"{plan.record_name} body does not decode ({type(exc).__name__})"
            ) from None
        rest = len(body) - buf.tell()
        if rest:
            raise WireError(WIRE_AVRO_INVALID, f"{plan.record_name} body has {rest} trailing bytes")
        if not isinstance(datum, dict):
            raise WireError(WIRE_AVRO_INVALID, f"{plan.record_name} body is not a record")
        return datum

    def _fetch(self, schema_id: int) -> _ReadPlan:
        """Resolve a registry id to a read plan (cached; unknown ids are cached too)."""
        if schema_id in self._unknown_ids:
            raise WireError(WIRE_UNKNOWN_SCHEMA_ID, self._unknown_ids[schema_id])
        if self.registry is None:
            raise WireError(WIRE_UNKNOWN_SCHEMA_ID, "registry framing but no registry configured")
        try:
            registered = self.registry.get_schema(schema_id)
        except Exception as exc:  # noqa: BLE001 - SchemaRegistryError, network, client errors
            status = getattr(exc, "http_status_code", None)
            if status == 404:
                self._unknown(schema_id, f"schema id {schema_id} is not registered")
            raise WireError(
                WIRE_REGISTRY_UNAVAILABLE,
                f"registry lookup of id {schema_id} failed: {type(exc).__name__}"
                + (f" (HTTP {status})" if status else ""),
            ) from None
        if (getattr(registered, "schema_type", None) or "AVRO") != "AVRO":
            self._unknown(schema_id, f"schema id {schema_id} is not an Avro schema")
        try:
            raw = json.loads(registered.schema_str)
            name = record_full_name(raw)
            fp = schema_fingerprint(raw)
        except Exception:  # noqa: BLE001 - whatever the registry holds, it is unusable here
            self._unknown(schema_id, f"schema id {schema_id} is not a usable Avro record")
        if name not in self.store:
            self._unknown(schema_id, f"schema id {schema_id} is a record this bus lacks")
        known = self._read_by_fp.get(fp)
        if known is not None:
            plan = known
        else:
            try:
                writer = parse_schema(raw, named_schemas={})
            except Exception:  # noqa: BLE001
                self._unknown(schema_id, f"schema id {schema_id} does not parse")
            current = self.store.current(name)
            plan = _ReadPlan(current.name, writer, current.parsed, None)
        self._read_by_id[schema_id] = plan
        return plan

    def _unknown(self, schema_id: int, message: str) -> NoReturn:
        """Remember an id that will never resolve (bounded) and raise."""
        if len(self._unknown_ids) >= _NEGATIVE_CACHE_MAX:
            self._unknown_ids.pop(next(iter(self._unknown_ids)))
        self._unknown_ids[schema_id] = message
        raise WireError(WIRE_UNKNOWN_SCHEMA_ID, message)


def _describe_invalid(plan: _WritePlan, datum: Any, exc: Exception) -> str:
    """Name the offending fields without echoing any value (values may be identity numbers)."""
    problems = _shape_problems(datum, plan.schema, plan.record_name.rsplit(".", 1)[-1])
    if not problems:
        try:
            validate(datum, plan.schema, raise_errors=True)
        except ValidationError as verr:
            problems = sorted({f"{e.field}: wrong type" for e in verr.errors if e.field})
        except Exception:  # noqa: BLE001 - fall through to the generic message
            pass
    if problems:
        return f"{plan.record_name} datum does not match the schema: {'; '.join(problems[:10])}"
    return f"{plan.record_name} datum does not match the schema ({type(exc).__name__})"


def _shape_problems(datum: Any, schema: Any, path: str) -> list[str]:
    """Unknown and missing record fields, recursively (records and tagged union values)."""
    if isinstance(schema, list):
        if isinstance(datum, tuple) and len(datum) == 2:
            for branch in schema:
                if isinstance(branch, dict) and branch.get("name") == datum[0]:
                    short = str(datum[0]).rsplit(".", 1)[-1]
                    return _shape_problems(datum[1], branch, f"{path}<{short}>")
            return [f"{path}: no union branch of that name"]
        return []
    if not (isinstance(schema, dict) and schema.get("type") == "record"):
        return []
    if not isinstance(datum, Mapping):
        return [f"{path}: expected a record, got {type(datum).__name__}"]
    fields = {f["name"]: f for f in schema["fields"]}
    problems = [f"{path}.{key}: not in the schema" for key in datum if key not in fields]
    for name, field in fields.items():
        if name not in datum:
            if "default" not in field:
                problems.append(f"{path}.{name}: missing and without default")
        else:
            problems.extend(_shape_problems(datum[name], field["type"], f"{path}.{name}"))
    return problems
