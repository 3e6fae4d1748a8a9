"""Who may see what of an archive: the three roles and the views they get.

- `unit`: a publishing unit (bound to its unit code) sees the current records it published
  itself, and the person fields.
- `office` (信用办): sees everything: every record including retracted ones, with their flags,
  the person's full fields and the history of changes (the update log).
- `public`: sees only records in the public view today: `is_public`, not retracted, not
  repaired (信用修复), and today (Beijing) inside the disclosure window
  [disclosure_start, disclosure_end). Only the masked
  ID and the name of the person, no birth date or sex (together with the masked ID they
  would reveal the hidden digits).

A unit or public caller who may see no record of a person gets the same answer as for an
unknown person (404), so a query does not reveal that an archive exists elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from creditbus.catalog import Catalog
from creditbus.identity import IdentifierError, mask_id, parse_resident_id

Role = Literal["unit", "office", "public"]
ROLES: tuple[Role, ...] = ("unit", "office", "public")

ROLE_NAMES_ZH: dict[str, str] = {"unit": "责任单位", "office": "信用办", "public": "社会公众"}

STATUS_NAMES_ZH: dict[str, str] = {"retracted": "已撤销", "repaired": "已修复",
                                   "public": "公示中", "not_public": "未公示"}
"""A record's status as the views name it (`record_status`)."""

_ID_CANDIDATE = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")


@dataclass(frozen=True)
class Principal:
    """The caller, as its token describes it."""

    name: str
    role: Role
    unit: str | None = None


def in_public_view(record: Mapping[str, Any], today: date) -> bool:
    """Whether a record is publicly disclosed on `today` (a Beijing calendar day)."""
    if not record["is_public"] or record["is_retracted"] or record.get("is_repaired"):
        return False
    start, end = record.get("disclosure_start"), record.get("disclosure_end")
    if not start or not end:
        return False
    return date.fromisoformat(start) <= today < date.fromisoformat(end)


def record_status(record: Mapping[str, Any], today: date) -> str:
    """retracted, repaired (已修复: stays in the archive, out of the public view), public
    (in the public view today) or not_public."""
    if record["is_retracted"]:
        return "retracted"
    if record.get("is_repaired"):
        return "repaired"
    return "public" if in_public_view(record, today) else "not_public"


def may_see(principal: Principal, record: Mapping[str, Any], today: date) -> bool:
    if principal.role == "office":
        return True
    if principal.role == "unit":
        return record["unit"] == principal.unit and not record["is_retracted"]
    return in_public_view(record, today)


def mask_resident_ids(text: str) -> str:
    """Mask every run of 18 characters that is a valid resident ID (check character, province
    and birth date), leaving other long numbers (e.g. codes of organisations) alone."""

    def replace(match: re.Match[str]) -> str:
        try:
            parse_resident_id(match.group(0))
        except IdentifierError:
            return match.group(0)
        return mask_id(match.group(0).upper())

    return _ID_CANDIDATE.sub(replace, text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_resident_ids(value)
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def _content(content_json: str) -> Any:
    try:
        return _masked(json.loads(content_json))
    except ValueError:
        return None


def _name(catalog: Catalog, kind: str, code: str | None) -> str | None:
    if code is None or not catalog.has(kind, code):
        return None
    getter = getattr(catalog, kind)
    return str(getter(code).name_zh)


def record_view(principal: Principal, record: Mapping[str, Any],
                catalog: Catalog, today: date) -> dict[str, Any]:
    status = record_status(record, today)
    view: dict[str, Any] = {
        "unit": record["unit"], "unit_name": _name(catalog, "unit", record["unit"]),
        "group": record["group_code"], "group_name": _name(catalog, "group", record["group_code"]),
        "category": record["category"],
        "category_name": _name(catalog, "category", record["category"]),
        "severity": record["severity"],
        "severity_name": _name(catalog, "severity", record["severity"]),
        "domain": record["domain"], "domain_name": _name(catalog, "domain", record["domain"]),
        "occurred_at": record["occurred_at"],
        "disclosure_start": record["disclosure_start"],
        "disclosure_end": record["disclosure_end"],
        "content": _content(record["content_json"]),
        "status": status, "status_name": STATUS_NAMES_ZH[status],
    }
    if principal.role != "public":
        view.update(record_id=record["record_id"], record_version=record["record_version"],
                    published_at=record["published_at"], public=bool(record["is_public"]),
                    repaired=bool(record.get("is_repaired")), repair=_repair(record))
    if principal.role == "office":
        view.update(retracted=bool(record["is_retracted"]),
                    person_version=record["person_version"])
    return view


def _repair(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The repair decision (信用修复决定) of a repaired record, else None."""
    if not record.get("is_repaired"):
        return None
    return {"decision_number": record.get("repair_decision_number"),
            "decision_date": record.get("repair_date"),
            "authority": record.get("repair_authority")}


def history_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the update log, for the office: what changed, when, and its hash."""
    unit = record_id = None
    try:
        body = json.loads(entry["body"])
        record = body.get("change", {}).get("record", {})
        unit, record_id = record.get("unit"), record.get("record_id")
    except (ValueError, AttributeError):
        pass
    return {"version": entry["version"], "kind": entry["kind"], "unit": unit,
            "record_id": record_id, "event_id": entry["event_id"],
            "committed_at": entry["committed_at"], "hash": entry["hash"]}


def _sort_key(record: Mapping[str, Any]) -> tuple[str, str, str]:
    return record["occurred_at"], record["unit"], record["record_id"]


def archive_view(
    principal: Principal, person: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]], catalog: Catalog, today: date,
) -> dict[str, Any] | None:
    """The archive as `principal` may see it, or None when it may see nothing of it."""
    visible = sorted((r for r in records if may_see(principal, r, today)), key=_sort_key,
                     reverse=True)
    if principal.role != "office" and not visible:
        return None
    if principal.role == "office":
        groups = list(json.loads(person["groups"]))
    else:
        groups = sorted({r["group_code"] for r in visible})
    shown: dict[str, Any] = {
        "person_key": person["person_key"], "masked_id": person["masked_id"],
        "name": person["name"],
        "groups": [{"code": g, "name": _name(catalog, "group", g)} for g in groups],
    }
    if principal.role != "public":
        shown.update(birth_date=person["birth_date"], sex=person["sex"],
                     division_code=person["division_code"])
    if principal.role == "office":
        shown.update(archive_version=person["archive_version"], updated_at=person["updated_at"],
                     chain_head=person["chain_head"])
    view: dict[str, Any] = {
        "as_of": today.isoformat(), "role": principal.role,
        "person": shown,
        "records": [record_view(principal, r, catalog, today) for r in visible],
    }
    if principal.role == "office":
        view["history"] = [history_view(h) for h in history]
    return view
