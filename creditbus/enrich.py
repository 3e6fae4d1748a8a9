"""Enrichment of a validated credit event into what the archive needs.

Derived once, at ingest: the person key (keyed HMAC of the normalised identity number), the
masked number, birth date, sex and division; the record's canonical content and content hash;
and its public-disclosure window. After this step the clear identity number is gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from creditbus.archive.disclosure import disclosure_window
from creditbus.archive.event import EnrichedEvent
from creditbus.archive.timeutil import CHINA_TZ, datetime_to_ms
from creditbus.catalog.models import Catalog
from creditbus.contract.canonical import canonical_content, canonical_json, content_type_name
from creditbus.identity import ResidentId, person_key


def enrich(
    datum: Mapping[str, Any],
    resident: ResidentId,
    catalog: Catalog,
    secret: bytes,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp: int = 0,
    row: int | None = None,
) -> EnrichedEvent:
    """Turn a decoded, validated CreditEvent datum into an EnrichedEvent."""
    content = datum.get("content")
    body: Mapping[str, Any] = content[1] if content else {}
    content_json = _content_json(datum, content)
    occurred_ms = datetime_to_ms(datum["occurred_at"])
    severity = catalog.severity(datum["severity"]).code if datum.get("severity") else None
    window = None
    if severity is not None:
        level = catalog.severity(severity)
        decided = body.get("decision_date") or _china_day(datum["occurred_at"])
        window = disclosure_window(
            dishonesty=catalog.category(datum["category"]).dishonesty,
            min_months=level.disclosure_min_months,
            max_months=level.disclosure_max_months,
            decision_date=decided,
            unit_deadline=body.get("disclosure_until"),
        )
    domain = datum.get("domain") or catalog.group(datum["group"]).default_domain
    start = window.start.isoformat() if window else None
    end = window.end.isoformat() if window else None
    content_hash = hashlib.sha256(canonical_json([
        datum["action"], datum["group"], datum["category"], severity, domain, occurred_ms,
        content_json, start, end, datum["person"]["name"],
    ])).hexdigest()
    return EnrichedEvent(
        event_id=datum["event_id"], unit=datum["unit"], action=datum["action"],
        record_id=datum["record_id"], group=datum["group"], category=datum["category"],
        severity=severity, domain=domain,
        published_at=datetime_to_ms(datum["published_at"]), occurred_at=occurred_ms,
        person_key=person_key(resident.number, secret), masked_id=resident.masked,
        name=datum["person"]["name"], birth_date=resident.birth_date.isoformat(),
        sex=resident.sex, division_code=resident.division_code,
        content_json=content_json, content_hash=content_hash,
        disclosure_start=start, disclosure_end=end,
        source_topic=topic, source_partition=partition, source_offset=offset,
        source_timestamp=timestamp, source_row=row,
    )


def _content_json(datum: Mapping[str, Any], content: Any) -> str:
    """`{"<Type>": {...}}` (or null) plus the person's organisation when the event names one,
    as canonical JSON, built in one pass."""
    person = datum["person"]
    organisation = {k: person.get(k) for k in ("organisation", "organisation_uscc")
                    if person.get(k)}
    if not organisation:
        return canonical_content(content).decode()
    wrapped: dict[str, Any] = {"organisation": organisation}
    if content:
        wrapped[content_type_name(content[0])] = content[1]
    return canonical_json(wrapped).decode()


def _china_day(value: datetime) -> date:
    return value.astimezone(CHINA_TZ).date()
