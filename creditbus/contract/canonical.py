"""Canonical JSON: the byte form that is hashed (event ids, content, the archive hash chain).

The streams hash these bytes and the sink re-hashes them, so the rule must be deterministic and
the same everywhere:

- objects: keys must be strings, sorted by code point; separators ``,`` and ``:`` (no spaces);
- text: UTF-8, non-ASCII characters kept as they are (``ensure_ascii=False``), no Unicode
  normalisation; lone surrogates are an error;
- ``datetime``: must be timezone-aware; converted to UTC, ``YYYY-MM-DDTHH:MM:SS.mmmZ``
  (microseconds ``.ffffffZ`` only when the value has a sub-millisecond part);
- ``date``: ``YYYY-MM-DD``;
- ``Decimal``: a string in plain notation, normalised so that equal values give equal text
  (``Decimal("200.00")`` and ``Decimal("2E+2")`` both give ``"200"``); NaN/Infinity are errors;
- ``float``: Python's shortest round-trip ``repr``; NaN/Infinity are errors;
- tuples and lists: arrays; ``None``, ``bool``, ``int``: JSON literals;
- anything else (bytes, sets, naive datetimes, ...) raises ``TypeError``.

Values are expected in the form fastavro decodes them (aware datetimes, dates, Decimals), so
that the producer of a hash and a consumer that decoded the same Avro bytes agree.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

GENESIS_HASH = "0" * 64
"""The previous_hash of a person's first archive update (see creditbus.archive.chain)."""

# Fields that do not take part in an event id: the id itself, the publication time (a
# re-publication is the same fact) and the clear identity number (see derive_event_id).
_EVENT_ID_EXCLUDED = ("event_id", "published_at")


def canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``obj`` (rules in the module docstring).

    orjson writes the same bytes as the standard library for strings, integers of 64 bits,
    literals, arrays and objects with sorted keys. Whatever it would write differently (floats,
    whose exponent it spells otherwise, integers beyond 64 bits, lone surrogates) it refuses,
    and the standard library writes those.
    """
    prepared = _prepare(obj)
    try:
        return orjson.dumps(prepared, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _stdlib_json(prepared)


def _stdlib_json(prepared: Any) -> bytes:
    return json.dumps(
        prepared,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


class _Float(float):
    """A float that orjson refuses (it serialises no float subclass), so that the standard
    library, with Python's own repr, writes every float of the canonical form."""

    __slots__ = ()


def format_timestamp(value: datetime) -> str:
    """A timezone-aware datetime in the canonical UTC form (millisecond precision when exact)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError("canonical JSON needs timezone-aware datetimes")
    utc = value.astimezone(UTC)
    spec = "milliseconds" if utc.microsecond % 1000 == 0 else "microseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def format_decimal(value: Decimal) -> str:
    """A finite Decimal as normalised plain-notation text (no exponent, no trailing zeros)."""
    if not value.is_finite():
        raise ValueError("canonical JSON cannot represent a non-finite Decimal")
    if value.is_zero():
        return "0"
    return format(value.normalize(), "f")


_PLAIN = frozenset({str, int, bool, type(None)})


def _prepare(obj: Any) -> Any:
    # Fast path on exact types: this runs for every field of every archive update.
    kind = type(obj)
    if kind in _PLAIN:
        return obj
    if kind is dict:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if type(key) is not str:
                raise TypeError("canonical JSON object keys must be strings")
            out[key] = value if type(value) in _PLAIN else _prepare(value)
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN else _prepare(item) for item in obj]
    return _prepare_other(obj)


def _prepare_other(obj: Any) -> Any:
    # Order matters: bool is an int and datetime is a date.
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError("canonical JSON cannot represent a non-finite float")
        return _Float(obj)
    if isinstance(obj, datetime):
        return format_timestamp(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return format_decimal(obj)
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError("canonical JSON object keys must be strings")
            out[key] = _prepare(value)
        return out
    if isinstance(obj, list | tuple):
        return [_prepare(item) for item in obj]
    raise TypeError(f"canonical JSON cannot represent a {type(obj).__name__}")


def content_type_name(full_name: str) -> str:
    """``cn.gov.ganzhou.creditbus.Penalty`` -> ``Penalty``."""
    return full_name.rsplit(".", 1)[-1]


def canonical_content(content: tuple[str, Mapping[str, Any]] | None) -> bytes:
    """Canonical JSON of a decoded ``CreditEvent.content`` (RecordSnapshot.content_json).

    ``content`` is what `creditbus.contract.wire` decodes: ``None`` or a tuple
    ``(record full name, fields)``. The result is ``{"<ShortName>":{...}}`` or ``null``.
    """
    if content is None:
        return b"null"
    name, body = content
    return canonical_json({content_type_name(name): body})


def derive_event_id(event: Mapping[str, Any]) -> str:
    """The dedup key of a CreditEvent datum: hex SHA-256 of its canonical JSON without
    ``event_id``, ``published_at`` and ``person.id_number``.

    The same unit + record id + content (+ action, times, classification) gives the same id. The
    clear identity number is left out so the id, which travels on into the archive, cannot be
    used to test guesses of it; records of different people are still told apart because the
    dedup state is per person key. ``occurred_at`` must be an aware datetime.
    """
    if not isinstance(event.get("occurred_at"), datetime):
        raise TypeError("derive_event_id needs occurred_at as a timezone-aware datetime")
    basis = {k: v for k, v in event.items() if k not in _EVENT_ID_EXCLUDED}
    person = basis.get("person")
    if isinstance(person, Mapping):
        # `sealed` (field protection) is a form of the same person, not another fact.
        basis["person"] = {k: v for k, v in person.items() if k not in ("id_number", "sealed")}
    return hashlib.sha256(canonical_json(basis)).hexdigest()
