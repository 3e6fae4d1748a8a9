"""The JSON form of a record: what people write and read (examples, files, HTTP).

It is plain JSON with the Avro field names, driven by the schema:

- ``timestamp-millis``: ISO 8601 text with an offset (``2024-03-01T09:30:00+08:00``);
- ``date``: ``YYYY-MM-DD``; ``decimal``: a string (``"5000.00"``), or a JSON number in input;
- ``[null, T]`` unions: ``null`` or the plain value of T;
- unions of several records (CreditEvent.content): ``{"Penalty": {...}}`` (short or full name);
- enums: the symbol; maps and arrays: JSON objects and arrays.

`from_json` gives a datum for `creditbus.contract.wire.Wire.encode` (content as the tuple
``(full name, fields)``); `to_json` is its inverse for decoded data. Errors are ValueError
naming the field path, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from creditbus.constants import CHINA_TZ
from creditbus.contract.canonical import format_decimal
from creditbus.contract.schemas import SchemaVersion

_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def from_json(schema: SchemaVersion, obj: Any) -> Any:
    """Convert a JSON value (as `json.loads` returns it) to a datum of ``schema``."""
    return _Converter(schema.parsed).load(obj, schema.parsed, schema.short_name)


def is_json_form(event: Mapping[str, Any]) -> bool:
    """Whether a CreditEvent is in the JSON form rather than the Python form.

    The JSON form writes ``occurred_at`` (required) as ISO 8601 text; the Python form holds an
    aware datetime or epoch milliseconds there, never text, so the two cannot be confused.
    """
    return isinstance(event.get("occurred_at"), str)


def to_json(schema: SchemaVersion, datum: Any, tz: timezone = CHINA_TZ) -> Any:
    """Convert a datum of ``schema`` (as decoded) to its JSON form; timestamps in ``tz``."""
    return _Converter(schema.parsed, tz).dump(datum, schema.parsed, schema.short_name)


def _collect_names(schema: Any, names: dict[str, dict[str, Any]]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, names)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed") and "name" in schema:
            names.setdefault(schema["name"], schema)
            for field in schema.get("fields", []):
                _collect_names(field["type"], names)
        elif kind == "array":
            _collect_names(schema["items"], names)
        elif kind == "map":
            _collect_names(schema["values"], names)


class _Converter:
    def __init__(self, parsed: dict[str, Any], tz: timezone = CHINA_TZ) -> None:
        self.names: dict[str, dict[str, Any]] = {}
        _collect_names(parsed, self.names)  # parsed schemas use full names throughout
        self.tz = tz

    def _resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.names[schema]
        return schema

    @staticmethod
    def _kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, str):
            return schema
        return str(schema["type"])

    # -- JSON -> datum ------------------------------------------------------------------------

    def load(self, value: Any, schema: Any, path: str) -> Any:
        schema = self._resolve(schema)
        kind = self._kind(schema)
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        try:
            if kind == "union":
                return self._load_union(value, schema, path)
            if kind == "record":
                return self._load_record(value, schema, path)
            if kind == "array":
                _expect(isinstance(value, list), path, "an array")
                return [self.load(v, schema["items"], f"{path}[{i}]") for i, v in enumerate(value)]
            if kind == "map":
                _expect(isinstance(value, dict), path, "an object")
                return {k: self.load(v, schema["values"], f"{path}.{k}") for k, v in value.items()}
            if logical == "timestamp-millis":
                _expect(isinstance(value, str), path, "an ISO 8601 timestamp")
                parsed = datetime.fromisoformat(value)
                _expect(parsed.tzinfo is not None, path, "a timestamp with an offset")
                return parsed
            if logical == "date":
                _expect(isinstance(value, str), path, "an ISO date")
                return date.fromisoformat(value)
            if logical == "decimal":
                _expect(isinstance(value, str | int | float), path, "a decimal string")
                return Decimal(str(value))
            if kind in ("int", "long"):
                _expect(isinstance(value, int) and not isinstance(value, bool), path, "an integer")
            elif kind in ("float", "double"):
                _expect(
                    isinstance(value, int | float) and not isinstance(value, bool), path, "a number"
                )
                return float(value)
            elif kind == "boolean":
                _expect(isinstance(value, bool), path, "true or false")
            elif kind == "string":
                _expect(isinstance(value, str), path, "a string")
            elif kind == "enum":
                _expect(value in schema["symbols"], path, f"one of {', '.join(schema['symbols'])}")
            elif kind == "null":
                _expect(value is None, path, "null")
            else:
                raise ValueError(f"{path}: {kind} has no JSON form here")
            return value
        except (InvalidOperation, TypeError) as exc:
            raise ValueError(f"{path}: not a valid {logical or kind}") from exc
        except ValueError as exc:
            if str(exc).startswith(path):
                raise
            raise ValueError(f"{path}: not a valid {logical or kind}") from None

    def _load_record(self, value: Any, schema: dict[str, Any], path: str) -> dict[str, Any]:
        _expect(isinstance(value, dict), path, "an object")
        fields = {f["name"]: f for f in schema["fields"]}
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise ValueError(f"{path}: unknown fields: {', '.join(sorted(unknown))}")
        return {
            name: self.load(value[name], field["type"], f"{path}.{name}")
            for name, field in fields.items()
            if name in value
        }

    def _load_union(self, value: Any, schema: list[Any], path: str) -> Any:
        if value is None:
            _expect("null" in schema, path, "not null")
            return None
        branches = [self._resolve(b) for b in schema if b != "null"]
        records = [b for b in branches if self._kind(b) == "record"]
        if len(records) > 1:
            _expect(isinstance(value, dict) and len(value) == 1, path, '{"<Type>": {...}}')
            ((tag, body),) = value.items()
            for branch in records:
                if tag in (branch["name"], branch["name"].rsplit(".", 1)[-1]):
                    short = branch["name"].rsplit(".", 1)[-1]
                    return (branch["name"], self._load_record(body, branch, f"{path}<{short}>"))
            raise ValueError(f"{path}: unknown union type {tag!r}")
        _expect(len(branches) == 1, path, "a value of a [null, T] union")
        return self.load(value, branches[0], path)

    # -- datum -> JSON ------------------------------------------------------------------------

    def dump(self, value: Any, schema: Any, path: str) -> Any:
        schema = self._resolve(schema)
        kind = self._kind(schema)
        if kind == "union":
            if value is None:
                return None
            branches = [self._resolve(b) for b in schema if b != "null"]
            if isinstance(value, tuple):
                name, body = value
                branch = next(b for b in branches if isinstance(b, dict) and b.get("name") == name)
                return {name.rsplit(".", 1)[-1]: self.dump(body, branch, path)}
            return self.dump(value, branches[0], path)
        if kind == "record":
            return {
                f["name"]: self.dump(value.get(f["name"]), f["type"], path)
                for f in schema["fields"]
            }
        if kind == "array":
            return [self.dump(v, schema["items"], path) for v in value]
        if kind == "map":
            return {k: self.dump(v, schema["values"], path) for k, v in value.items()}
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if logical == "timestamp-millis":
            if isinstance(value, int):
                value = _EPOCH + timedelta(milliseconds=value)
            return value.astimezone(self.tz).isoformat(timespec="milliseconds")
        if logical == "date":
            if isinstance(value, int):
                value = _EPOCH_DAY + timedelta(days=value)
            return value.isoformat()
        if logical == "decimal":
            return format_decimal(value)
        return value


def _expect(condition: bool, path: str, what: str) -> None:
    if not condition:
        raise ValueError(f"{path}: expected {what}")


def load_event(schema: SchemaVersion, line: str | bytes) -> dict[str, Any]:
    """Parse one JSON line into a datum of ``schema``."""
    obj = json.loads(line)
    if not isinstance(obj, Mapping):
        raise ValueError(f"{schema.short_name}: expected a JSON object")
    return from_json(schema, obj)
