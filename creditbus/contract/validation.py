"""Validation of a CreditEvent datum against the schema's models and the catalog's rules.

`validate_event` runs per event on the ingest hot path. It takes the datum as
`creditbus.contract.wire` decodes it (content as a ``(record full name, fields)`` tuple), checks
types and size limits with the strict pydantic models (cheap on decoded data), then the business
rules in plain Python against lookups pre-computed once per catalog. The first problem found
raises `EventRejected`; its message is English and shows identity numbers only masked.
Reason codes: `creditbus.contract.reasons`, documented in docs/contract.md.
"""

from __future__ import annotations

import math
import re
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ValidationError

from creditbus.catalog.models import Catalog
from creditbus.contract import reasons as R
from creditbus.contract.limits import (
    EARLIEST_YEAR,
    EVENT_MAX_BYTES,
    FINE_MAX_DIGITS,
    FINE_SCALE,
    FUTURE_TOLERANCE_MS,
    TRAINING_HOURS_MAX,
)
from creditbus.contract.models import (
    CONTENT_KIND_RECORDS,
    CONTENT_MODELS,
    CONTENT_TEXT,
    DATE_PAIRS,
    EVENT_TEXT,
    FACT_DATES,
    PERSON_TEXT,
    REPAIR_RECORD,
    CreditEvent,
    TextSpec,
)
from creditbus.contract.schemas import NAMESPACE
from creditbus.errors import ContractError
from creditbus.identity import IdentifierError, ResidentId, mask_id, parse_resident_id, redact
from creditbus.identity.uscc import validate_uscc

__all__ = ["EventRejected", "ValidEvent", "common_categories", "validate_event"]

_EVENT_ID = re.compile(r"[0-9a-f]{64}")
# Control characters (C0, DEL, C1), and for names also invisible format characters (zero-width,
# bidi overrides, BOM) and line/paragraph separators.
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, LF, CR allowed
_CONTROL_NAME = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
)
_CONTROL = {"name": _CONTROL_NAME, "line": _CONTROL_LINE, "text": _CONTROL_TEXT}

_CHINA_OFFSET_MS = 8 * 3_600_000
_MS_PER_DAY = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_PENALTY = f"{NAMESPACE}.Penalty"
_ASSESSMENT = f"{NAMESPACE}.Assessment"
_TRAINING = f"{NAMESPACE}.Training"
_NOTE = f"{NAMESPACE}.Note"
_FINE_LIMIT = Decimal(10) ** (FINE_MAX_DIGITS - FINE_SCALE)
_CENT = Decimal(1).scaleb(-FINE_SCALE)
_LONG_DIGITS = re.compile(r"\d{8,}[\dXx]?")
# Upper bound of UTF-8 bytes per character, and Avro overhead per string and per event (varint
# lengths, union indexes, longs, the 10-byte single-object header), for the size pre-check.
_UTF8_MAX = 4
_PER_STRING = 5
_PER_EVENT = 64


class EventRejected(ContractError, ValueError):
    """An event that breaks the contract. `code` is a reason code, `field` the dotted path of
    the offending field (``person.id_number``, ``content.decision_date``) or None for the event
    as a whole; `message` is English and never holds a clear identity number."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field

    def __reduce__(self) -> tuple[type[EventRejected], tuple[str, str, str | None]]:
        return (type(self), (self.code, self.message, self.field))


@dataclass(frozen=True, slots=True)
class ValidEvent:
    """A valid event: the decoded identity number and the catalog severity code."""

    resident: ResidentId
    severity: str | None
    """Catalog code of the severity (``general``), None when the event has none."""
    dishonesty: bool
    """Whether the category is a dishonesty record (catalog)."""


@dataclass(frozen=True, slots=True)
class _Rules:
    """The catalog's lookups, pre-computed once per catalog."""

    unit_groups: dict[str, frozenset[str]]
    group_categories: dict[str, frozenset[str]]
    categories: dict[str, tuple[str, bool]]  # code -> (content record full name, dishonesty)
    domains: frozenset[str]
    severities: dict[str, str]  # Avro symbol -> catalog code


def common_categories(catalog: Catalog) -> frozenset[str]:
    """The categories every group of the catalog lists (its common core).

    The notice lists the common core per group and leaves items out for some (tour guides have
    no annual assessment or complaints), so a category is allowed for a group when the group
    lists it or it belongs to this core; with the packaged catalog the core adds nothing to any
    group's own list, but it keeps the rule stable when a group is configured with fewer items.
    """
    lists = [frozenset(g.required_categories) for g in catalog.groups]
    return frozenset.intersection(*lists) if lists else frozenset()


def _build_rules(catalog: Catalog) -> _Rules:
    core = common_categories(catalog)
    return _Rules(
        unit_groups={u.code: frozenset(u.groups) for u in catalog.units},
        group_categories={
            g.code: frozenset(g.required_categories) | core for g in catalog.groups
        },
        categories={
            c.code: (CONTENT_KIND_RECORDS[c.content_kind], c.dishonesty)
            for c in catalog.categories
        },
        domains=frozenset(d.code for d in catalog.domains),
        severities={s.symbol: s.code for s in catalog.severities},
    )


# Keyed by id(); the catalog is kept in the value so that its id cannot be reused.
_RULES: dict[int, tuple[Catalog, _Rules]] = {}
_RULES_MAX = 8


def _rules_for(catalog: Catalog) -> _Rules:
    cached = _RULES.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    rules = _build_rules(catalog)
    if len(_RULES) >= _RULES_MAX:
        _RULES.pop(next(iter(_RULES)))
    _RULES[id(catalog)] = (catalog, rules)
    return rules


def validate_event(
    datum: Mapping[str, Any],
    catalog: Catalog,
    *,
    topic_unit: str | None = None,
    now_ms: int | None = None,
    encoded_size: int | None = None,
    decoded: bool = False,
) -> ValidEvent:
    """Validate a CreditEvent datum; return a `ValidEvent` or raise `EventRejected`.

    `topic_unit`: the unit of the topic the event came from (or is bound for); `now_ms`: the
    validation time (default: now); `encoded_size`: the encoded message length when known (else
    the 64 KiB limit is checked on an upper-bound estimate of it). `decoded`: the datum is what
    `Wire.decode` returned, so the Avro schema already guarantees every type; only the size
    limits of the models are checked then (`_check_lengths`, same codes and messages), which
    costs a tenth of validating the models.
    """
    rules = _rules_for(catalog)
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    if decoded:
        _check_lengths(datum)
    else:
        _typed(datum)
    content = datum.get("content")
    record_name = content[0] if content is not None else None

    _check_catalog(datum, rules, topic_unit)
    category_record, dishonesty = rules.categories[datum["category"]]
    severity = _check_severity(datum, rules, dishonesty)
    if datum["action"] == "REPAIR":
        _check_repair(datum, record_name, dishonesty)
    elif record_name is None:
        if datum["action"] == "UPSERT":
            raise EventRejected(
                R.CONTENT_MISMATCH, "an UPSERT needs content (only a RETRACT may omit it)",
                "content",
            )
    elif record_name != category_record:
        raise EventRejected(
            R.CONTENT_MISMATCH,
            f"category {datum['category']!r} carries {_short(category_record)} content, "
            f"not {_short(record_name)}",
            "content",
        )

    chars = _check_texts(datum, record_name, content[1] if content is not None else None)
    _check_size(datum, chars, encoded_size)

    today = _china_date(now_ms)
    resident = _check_identity(datum, today)
    _check_dates(datum, record_name, content[1] if content else None, now_ms, today, resident)
    return ValidEvent(resident=resident, severity=severity, dishonesty=dishonesty)


# --- types and sizes (pydantic) ----------------------------------------------------------------


def _typed(datum: Mapping[str, Any]) -> CreditEvent:
    if not isinstance(datum, Mapping):
        raise EventRejected(R.SCHEMA_MISMATCH, "the event is not a record")
    content = datum.get("content")
    if content is None:
        body = datum
    else:
        if not (isinstance(content, tuple) and len(content) == 2):
            raise EventRejected(
                R.SCHEMA_MISMATCH, "content must be a (record name, fields) tuple", "content"
            )
        model = CONTENT_MODELS.get(content[0]) if isinstance(content[0], str) else None
        if model is None:
            raise EventRejected(
                R.SCHEMA_MISMATCH, "content is not a record type of the schema", "content"
            )
        try:
            typed_content = model.model_validate(content[1])
        except ValidationError as exc:
            raise _from_pydantic(exc, "content.") from None
        body = {**datum, "content": typed_content}
    try:
        event = CreditEvent.model_validate(body)
    except ValidationError as exc:
        raise _from_pydantic(exc, "") from None
    return event


@dataclass(frozen=True, slots=True)
class _Limit:
    """The size limits of one model field, read from its annotations."""

    name: str
    chars: int | None = None  # a string's characters
    items: int | None = None  # a tuple's or a map's entries
    item_chars: int | None = None  # each tuple item's, or each map key's, characters
    value_chars: int | None = None  # each map value's characters
    model: Any = None  # a nested record (person, sealed fields)


def _max_length(metadata: Any) -> int | None:
    for item in metadata:
        limit = getattr(item, "max_length", None)
        if limit is not None:
            return int(limit)
    return None


def _unwrap(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """(base type, Annotated metadata) of a hint, Optional removed."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            hint = args[0]
    if get_origin(hint) is Annotated:
        return get_args(hint)[0], tuple(hint.__metadata__)
    return hint, ()


@cache
def _limits(model: Any) -> tuple[_Limit, ...]:
    hints = get_type_hints(model, include_extras=True)
    limits = []
    for name, info in model.model_fields.items():
        base, metadata = _unwrap(hints[name])
        metadata = (*metadata, *info.metadata)
        origin = get_origin(base)
        if isinstance(base, type) and issubclass(base, BaseModel):
            limits.append(_Limit(name, model=base))
        elif base is str:
            limits.append(_Limit(name, chars=_max_length(metadata)))
        elif origin is tuple:
            limits.append(_Limit(name, items=_max_length(metadata),
                                 item_chars=_max_length(_unwrap(get_args(base)[0])[1])))
        elif origin is dict:
            key, value = (_unwrap(a)[1] for a in get_args(base))
            limits.append(_Limit(name, items=_max_length(metadata), item_chars=_max_length(key),
                                 value_chars=_max_length(value)))
    return tuple(limits)


def _check_lengths(datum: Mapping[str, Any]) -> None:
    """The models' size limits on a datum whose types the Avro schema guarantees; raises the
    `EventRejected` that validating the models would raise first."""
    content = datum.get("content")
    if content is not None:
        model = CONTENT_MODELS.get(content[0])
        if model is not None:
            _check_record(content[1], model, "content.")
    _check_record(datum, CreditEvent, "")


def _check_record(record: Mapping[str, Any], model: Any, prefix: str) -> None:
    for limit in _limits(model):
        value = record.get(limit.name)
        if value is None:
            continue
        where = prefix + limit.name
        if limit.model is not None:
            _check_record(value, limit.model, where + ".")
        elif limit.chars is not None and len(value) > limit.chars:
            raise EventRejected(R.FIELD_TOO_LONG, f"{where}: more than {limit.chars} characters",
                                where)
        elif limit.items is not None:
            _check_entries(value, limit, where)


def _check_entries(value: Any, limit: _Limit, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            for text, most in ((key, limit.item_chars), (item, limit.value_chars)):
                if most is not None and len(text) > most:
                    raise EventRejected(R.FIELD_TOO_LONG,
                                        f"{where}: more than {most} characters", where)
    else:
        for i, item in enumerate(value):
            if limit.item_chars is not None and len(item) > limit.item_chars:
                raise EventRejected(R.FIELD_TOO_LONG,
                                    f"{where}[{i}]: more than {limit.item_chars} characters",
                                    where)
    if limit.items is not None and len(value) > limit.items:
        raise EventRejected(R.FIELD_TOO_LONG, f"{where}: more than {limit.items} items", where)


def _from_pydantic(exc: ValidationError, prefix: str) -> EventRejected:
    err = exc.errors(include_url=False, include_input=False, include_context=True)[0]
    loc = err["loc"]
    # Field names only: map keys in the location are data (they could be identity numbers).
    depth = 2 if not prefix and loc and loc[0] == "person" else 1
    parts = [str(p) for p in loc[:depth] if not isinstance(p, int)]
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    path = prefix + ".".join(parts)
    where = f"{path}[{index}]" if index is not None else path
    kind = err["type"]
    if kind in ("string_too_long", "too_long"):
        limit = (err.get("ctx") or {}).get("max_length")
        unit = "characters" if kind == "string_too_long" else "items"
        return EventRejected(R.FIELD_TOO_LONG, f"{where}: more than {limit} {unit}", path)
    if kind == "missing":
        return EventRejected(R.SCHEMA_MISMATCH, f"{where}: required field missing", path)
    # pydantic's messages name the expected type, never the input value
    return EventRejected(R.SCHEMA_MISMATCH, f"{where}: {redact(err['msg'])}", path)


# --- catalog rules -----------------------------------------------------------------------------


def _check_catalog(datum: Mapping[str, Any], rules: _Rules, topic_unit: str | None) -> None:
    if not _EVENT_ID.fullmatch(datum["event_id"]):
        raise EventRejected(
            R.BAD_EVENT_ID, "event_id must be 64 lower-case hex characters (SHA-256)", "event_id"
        )
    unit, group, category = datum["unit"], datum["group"], datum["category"]
    groups = rules.unit_groups.get(unit)
    if groups is None:
        raise EventRejected(R.UNKNOWN_UNIT, f"unknown unit {_code(unit)}", "unit")
    if topic_unit is not None and topic_unit != unit:
        raise EventRejected(
            R.TOPIC_UNIT_MISMATCH,
            f"unit {unit!r} published on the topic of unit {_code(topic_unit)}",
            "unit",
        )
    allowed = rules.group_categories.get(group)
    if allowed is None:
        raise EventRejected(R.UNKNOWN_GROUP, f"unknown group {_code(group)}", "group")
    if group not in groups:
        raise EventRejected(
            R.UNIT_NOT_RESPONSIBLE, f"unit {unit!r} is not responsible for group {group!r}",
            "group",
        )
    if category not in rules.categories:
        raise EventRejected(R.UNKNOWN_CATEGORY, f"unknown category {_code(category)}", "category")
    if category not in allowed:
        raise EventRejected(
            R.CATEGORY_NOT_FOR_GROUP,
            f"category {category!r} is not an archive item of group {group!r}",
            "category",
        )
    domain = datum.get("domain")
    if domain is not None and domain not in rules.domains:
        raise EventRejected(R.UNKNOWN_DOMAIN, f"unknown domain {_code(domain)}", "domain")


def _check_repair(datum: Mapping[str, Any], record_name: str | None, dishonesty: bool) -> None:
    """A REPAIR addresses a dishonesty record and carries the repair decision."""
    if not dishonesty:
        raise EventRejected(
            R.REPAIR_NOT_APPLICABLE,
            f"category {datum['category']!r} is not a dishonesty record: there is nothing to "
            "repair",
            "category",
        )
    if record_name != REPAIR_RECORD:
        shown = _short(record_name) if record_name else "no"
        raise EventRejected(
            R.CONTENT_MISMATCH, f"a REPAIR carries CreditRepair content, not {shown} content",
            "content",
        )


def _check_severity(datum: Mapping[str, Any], rules: _Rules, dishonesty: bool) -> str | None:
    symbol = datum.get("severity")
    if symbol is None:
        if dishonesty and datum["action"] == "UPSERT":
            raise EventRejected(
                R.SEVERITY_REQUIRED,
                f"category {datum['category']!r} is a dishonesty record and needs a severity",
                "severity",
            )
        return None
    code = rules.severities.get(symbol)
    if code is None:
        raise EventRejected(R.UNKNOWN_SEVERITY, f"unknown severity {_code(symbol)}", "severity")
    if not dishonesty:
        raise EventRejected(
            R.SEVERITY_NOT_APPLICABLE,
            f"category {datum['category']!r} is not a dishonesty record and takes no severity",
            "severity",
        )
    return code


# --- text ------------------------------------------------------------------------------------


def _check_spec(record: Mapping[str, Any], spec: TextSpec, prefix: str) -> int:
    """Blank and control-character checks of one record's text fields; returns their length."""
    total = 0
    for name, kind, required in spec:
        value = record.get(name)
        if value is None:
            continue
        total += len(value)
        if not value.strip():
            code = R.BAD_NAME if kind == "name" else R.EMPTY_FIELD
            what = "required" if required else "optional (use null instead)"
            raise EventRejected(code, f"{prefix}{name} is blank ({what})", prefix + name)
        if _CONTROL[kind].search(value):
            code = R.BAD_NAME if kind == "name" else R.BAD_TEXT
            raise EventRejected(
                code, f"{prefix}{name} contains control or invisible characters", prefix + name
            )
    return total


def _check_texts(
    datum: Mapping[str, Any], record_name: str | None, body: Mapping[str, Any] | None
) -> int:
    person = datum["person"]
    total = len(datum["event_id"]) + len(datum["unit"]) + len(datum["group"])
    total += len(datum["category"]) + len(person["id_number"])
    total += len(person.get("organisation_uscc") or "") + len(datum.get("domain") or "")
    total += _check_spec(datum, EVENT_TEXT, "")
    total += _check_spec(person, PERSON_TEXT, "person.")
    if record_name is None or body is None:
        return total
    total += _check_spec(body, CONTENT_TEXT[record_name], "content.")
    if record_name == _PENALTY:
        types = body["penalty_types"]
        if not types:
            raise EventRejected(
                R.EMPTY_FIELD, "content.penalty_types needs at least one penalty type",
                "content.penalty_types",
            )
        for i, item in enumerate(types):
            total += len(item)
            if not item.strip() or _CONTROL_LINE.search(item):
                raise EventRejected(
                    R.EMPTY_FIELD if not item.strip() else R.BAD_TEXT,
                    f"content.penalty_types[{i}] is blank or contains control characters",
                    "content.penalty_types",
                )
        total += len(body.get("authority_uscc") or "")
    elif record_name == _NOTE:
        for key, value in body["attributes"].items():
            total += len(key) + len(value)
            if not key.strip() or _CONTROL_LINE.search(key):
                raise EventRejected(
                    R.EMPTY_FIELD if not key.strip() else R.BAD_TEXT,
                    "content.attributes has a blank key or one with control characters",
                    "content.attributes",
                )
            if _CONTROL_TEXT.search(value):
                raise EventRejected(
                    R.BAD_TEXT, "a content.attributes value contains control characters",
                    "content.attributes",
                )
    return total


def _check_size(datum: Mapping[str, Any], chars: int, encoded_size: int | None) -> None:
    limit = EVENT_MAX_BYTES
    if encoded_size is not None:
        size = encoded_size
    else:
        # Upper bound first (cheap); measure the real UTF-8 bytes only when it is too big.
        if chars * _UTF8_MAX + _PER_EVENT + 40 * _PER_STRING <= limit:
            return
        size = _utf8_size(datum) + _PER_EVENT
    if size > limit:
        raise EventRejected(
            R.FIELD_TOO_LONG, f"the event is {size} bytes encoded; the limit is {limit}", None
        )


def _utf8_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) + _PER_STRING
    if isinstance(value, Mapping):
        return sum(_utf8_size(k) + _utf8_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(_utf8_size(v) for v in value) + _PER_STRING
    return 10


# --- identifiers -------------------------------------------------------------------------------


def _check_identity(datum: Mapping[str, Any], today: date) -> ResidentId:
    person = datum["person"]
    try:
        resident = parse_resident_id(person["id_number"], today=today)
    except IdentifierError as exc:
        raise EventRejected(exc.code, f"person.id_number: {exc.message}",
                            "person.id_number") from None
    _check_uscc(person.get("organisation_uscc"), "person.organisation_uscc")
    content = datum.get("content")
    if content is not None and content[0] in (_PENALTY, REPAIR_RECORD):
        _check_uscc(content[1].get("authority_uscc"), "content.authority_uscc")
    return resident


# Codes of organisations (not personal data) recur across events: remember the valid ones.
_VALID_USCC: dict[str, None] = {}
_VALID_USCC_MAX = 8192


def _check_uscc(value: str | None, field: str) -> None:
    if value is None or value in _VALID_USCC:
        return
    try:
        validate_uscc(value)
    except IdentifierError as exc:
        raise EventRejected(exc.code, f"{field}: {exc.message}", field) from None
    if len(_VALID_USCC) >= _VALID_USCC_MAX:
        _VALID_USCC.clear()
    _VALID_USCC[value] = None


# --- dates and numbers -------------------------------------------------------------------------


def _china_date(ms: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + (ms + _CHINA_OFFSET_MS) // _MS_PER_DAY)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _check_dates(
    datum: Mapping[str, Any],
    record_name: str | None,
    body: Mapping[str, Any] | None,
    now_ms: int,
    today: date,
    resident: ResidentId,
) -> None:
    latest_ms = now_ms + FUTURE_TOLERANCE_MS
    latest_day = today + timedelta(days=1)
    birth = resident.birth_date
    for name in ("occurred_at", "published_at"):
        if _ms(datum[name]) > latest_ms:
            raise EventRejected(
                R.FUTURE_DATE, f"{name} is more than one day in the future", name
            )
    occurred = datum["occurred_at"]
    if _china_date(_ms(occurred)) < birth:
        raise EventRejected(
            R.DATE_ORDER, "occurred_at is before the person's birth date", "occurred_at"
        )
    if record_name is None or body is None:
        return
    for name in FACT_DATES[record_name]:
        value = body.get(name)
        if value is None:
            continue
        if value > latest_day:
            raise EventRejected(
                R.FUTURE_DATE, f"content.{name} is more than one day in the future",
                f"content.{name}",
            )
        if value < birth:
            raise EventRejected(
                R.DATE_ORDER, f"content.{name} is before the person's birth date",
                f"content.{name}",
            )
    for earlier, later in DATE_PAIRS.get(record_name, ()):
        first, second = body.get(earlier), body.get(later)
        if first is not None and second is not None and second < first:
            raise EventRejected(
                R.DATE_ORDER, f"content.{later} is before content.{earlier}", f"content.{later}"
            )
    if record_name == _PENALTY:
        _check_fine(body.get("fine_amount"))
    elif record_name == REPAIR_RECORD:
        if body["decision_date"] > _china_date(_ms(datum["published_at"])):
            raise EventRejected(
                R.DATE_ORDER, "content.decision_date of the repair is after published_at: a "
                "repair is published once decided", "content.decision_date",
            )
    elif record_name == _ASSESSMENT:
        year = body["year"]
        if year > latest_day.year:
            raise EventRejected(
                R.FUTURE_DATE, "content.year is a future assessment year", "content.year"
            )
        if year < max(EARLIEST_YEAR, birth.year):
            raise EventRejected(
                R.OUT_OF_RANGE if year < EARLIEST_YEAR else R.DATE_ORDER,
                "content.year is before 1949 or before the person's birth", "content.year",
            )
    elif record_name == _TRAINING:
        hours = body["hours"]
        if not (0 < hours <= TRAINING_HOURS_MAX) or math.isnan(hours):
            raise EventRejected(
                R.OUT_OF_RANGE,
                f"content.hours must be above 0 and at most {TRAINING_HOURS_MAX:g}",
                "content.hours",
            )


def _check_fine(amount: Decimal | None) -> None:
    if amount is None:
        return
    if not amount.is_finite() or amount < 0 or amount >= _FINE_LIMIT:
        raise EventRejected(
            R.OUT_OF_RANGE,
            "content.fine_amount must be a non-negative amount below 10^16 yuan",
            "content.fine_amount",
        )
    if amount != amount.quantize(_CENT):
        raise EventRejected(
            R.OUT_OF_RANGE, "content.fine_amount has more than two decimal places",
            "content.fine_amount",
        )


def _code(value: str) -> str:
    """A code for a message: quoted, cut, and masked if it looks like an identity number."""
    shown = value if len(value) <= 40 else value[:37] + "..."
    return repr(_LONG_DIGITS.sub(lambda m: mask_id(m.group(0)), shown))


def _short(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]
