"""Pydantic models mirroring the CreditEvent Avro schema (schemas/avro/credit_event.avsc).

They check types strictly (no coercion: data decoded from Avro already has the right types, so
strict validation is cheap and catches a publisher's hand-made dict) and the size limits of
`creditbus.contract.limits`. Business rules live in `creditbus.contract.validation`.
`tests/unit/test_validation.py` checks that the fields here and in the .avsc agree.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints

from creditbus.contract.limits import ARRAY_MAX, ID_MAX, NAME_MAX, SHORT_TEXT_MAX, TEXT_MAX
from creditbus.contract.schemas import NAMESPACE

# Strict() on the type itself, so that it stays strict inside a lax container (penalty_types).
NameStr = Annotated[str, Strict(), StringConstraints(max_length=NAME_MAX)]
IdStr = Annotated[str, StringConstraints(max_length=ID_MAX)]
ShortStr = Annotated[str, StringConstraints(max_length=SHORT_TEXT_MAX)]
TextStr = Annotated[str, StringConstraints(max_length=TEXT_MAX)]


class _Record(BaseModel):
    # extra="ignore": a newer schema in CREDITBUS_SCHEMA_DIR may add fields this code does not
    # know yet; they are carried on the wire, not checked here.
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


class SealedFields(_Record):
    """Field protection: the person's clear fields, encrypted to the bus's key (v3)."""

    key_id: str
    ephemeral_public_key: bytes
    nonce: bytes
    ciphertext: bytes


class Person(_Record):
    id_number: IdStr
    name: NameStr
    organisation: ShortStr | None = None
    organisation_uscc: IdStr | None = None
    sealed: SealedFields | None = None


class Penalty(_Record):
    decision_number: IdStr
    illegal_facts: TextStr
    legal_basis: TextStr
    # Avro arrays decode to lists; accept them and keep a tuple (frozen).
    penalty_types: Annotated[tuple[NameStr, ...], Field(strict=False, max_length=ARRAY_MAX)]
    penalty_content: TextStr
    fine_amount: Decimal | None = None
    decision_date: date
    disclosure_until: date | None = None
    authority: ShortStr
    authority_uscc: IdStr | None = None


class Assessment(_Record):
    year: int
    result: NameStr
    assessor: ShortStr | None = None


class CareerEntry(_Record):
    organisation: ShortStr
    position: ShortStr
    start_date: date
    end_date: date | None = None


class Reward(_Record):
    title: ShortStr
    level: NameStr | None = None
    issuer: ShortStr
    award_date: date


class Complaint(_Record):
    received_date: date
    summary: TextStr
    outcome: TextStr | None = None
    substantiated: bool | None = None


class Training(_Record):
    course: ShortStr
    provider: ShortStr
    hours: float
    completed_date: date


class Qualification(_Record):
    certificate_number: IdStr
    qualification_name: ShortStr
    issuer: ShortStr
    issued_date: date
    valid_until: date | None = None
    status: NameStr


class Note(_Record):
    title: ShortStr
    detail: TextStr
    event_date: date | None = None
    attributes: Annotated[dict[IdStr, TextStr], Field(max_length=ARRAY_MAX)]


class CreditRepair(_Record):
    """The credit repair decision (信用修复决定) of a REPAIR event (v4)."""

    decision_number: IdStr
    decision_date: date
    authority: ShortStr
    authority_uscc: IdStr | None = None


Content = (Penalty | Assessment | CareerEntry | Reward | Complaint | Training | Qualification
           | Note | CreditRepair)


class CreditEvent(_Record):
    event_id: IdStr
    unit: IdStr
    published_at: AwareDatetime
    occurred_at: AwareDatetime
    action: Literal["UPSERT", "RETRACT", "REPAIR"]
    record_id: IdStr
    person: Person
    group: IdStr
    category: IdStr
    severity: IdStr | None = None
    domain: IdStr | None = None
    source_ref: ShortStr | None = None
    content: Content | None = None


CONTENT_MODELS: Final[dict[str, type[_Record]]] = {
    f"{NAMESPACE}.{model.__name__}": model
    for model in (Penalty, Assessment, CareerEntry, Reward, Complaint, Training, Qualification,
                  Note, CreditRepair)
}
"""Content record full name -> model."""

CONTENT_KIND_RECORDS: Final[dict[str, str]] = {
    "penalty": f"{NAMESPACE}.Penalty",
    "assessment": f"{NAMESPACE}.Assessment",
    "career": f"{NAMESPACE}.CareerEntry",
    "reward": f"{NAMESPACE}.Reward",
    "complaint": f"{NAMESPACE}.Complaint",
    "training": f"{NAMESPACE}.Training",
    "qualification": f"{NAMESPACE}.Qualification",
    "note": f"{NAMESPACE}.Note",
}
"""Catalog `content_kind` -> the content record full name it requires."""

REPAIR_RECORD: Final = f"{NAMESPACE}.CreditRepair"
"""The content a REPAIR event carries, whatever the category of the record it repairs."""

# Text fields by kind, for the checks pydantic does not make (blank text, control characters).
# kind: "name" (a person's name), "line" (one line), "text" (free text, may hold line breaks).
TextSpec = tuple[tuple[str, str, bool], ...]  # (field, kind, required)

PERSON_TEXT: Final[TextSpec] = (
    ("name", "name", True),
    ("organisation", "line", False),
)
EVENT_TEXT: Final[TextSpec] = (
    ("record_id", "line", True),
    ("source_ref", "line", False),
)
CONTENT_TEXT: Final[dict[str, TextSpec]] = {
    f"{NAMESPACE}.Penalty": (
        ("decision_number", "line", True),
        ("illegal_facts", "text", True),
        ("legal_basis", "text", True),
        ("penalty_content", "text", True),
        ("authority", "line", True),
    ),
    f"{NAMESPACE}.Assessment": (("result", "line", True), ("assessor", "line", False)),
    f"{NAMESPACE}.CareerEntry": (("organisation", "line", True), ("position", "line", True)),
    f"{NAMESPACE}.Reward": (
        ("title", "line", True), ("level", "line", False), ("issuer", "line", True),
    ),
    f"{NAMESPACE}.Complaint": (("summary", "text", True), ("outcome", "text", False)),
    f"{NAMESPACE}.Training": (("course", "line", True), ("provider", "line", True)),
    f"{NAMESPACE}.Qualification": (
        ("certificate_number", "line", True),
        ("qualification_name", "line", True),
        ("issuer", "line", True),
        ("status", "line", True),
    ),
    f"{NAMESPACE}.Note": (("title", "line", True), ("detail", "text", True)),
    REPAIR_RECORD: (("decision_number", "line", True), ("authority", "line", True)),
}

# Dates of the fact itself (not deadlines): not in the future, not before the person's birth.
FACT_DATES: Final[dict[str, tuple[str, ...]]] = {
    f"{NAMESPACE}.Penalty": ("decision_date",),
    f"{NAMESPACE}.Assessment": (),
    f"{NAMESPACE}.CareerEntry": ("start_date", "end_date"),
    f"{NAMESPACE}.Reward": ("award_date",),
    f"{NAMESPACE}.Complaint": ("received_date",),
    f"{NAMESPACE}.Training": ("completed_date",),
    f"{NAMESPACE}.Qualification": ("issued_date",),
    f"{NAMESPACE}.Note": ("event_date",),
    REPAIR_RECORD: ("decision_date",),
}
# (earlier, later) pairs that must not be reversed.
DATE_PAIRS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    f"{NAMESPACE}.Penalty": (("decision_date", "disclosure_until"),),
    f"{NAMESPACE}.CareerEntry": (("start_date", "end_date"),),
    f"{NAMESPACE}.Qualification": (("issued_date", "valid_until"),),
}
