"""Machine-readable reason codes of refused events (dead-letter headers, metrics, reports).

`VALIDATION_REASONS` lists the codes `validate_event` raises itself; identifier problems carry
the identity module's own codes (`IDENTITY_REASONS`); `ARCHIVE_REASONS` are the refusals that
depend on a person's archive (a retraction or repair of a record the archive does not hold as
required), decided by the archive agent. docs/contract.md, "Validation reason codes", documents
every one of them (a unit test keeps the two in step). `MESSAGES_ZH` says the archive's refusals
in Chinese, for the units (receipts, dead-letter reports).
"""

from __future__ import annotations

from typing import Final

SCHEMA_MISMATCH: Final = "SCHEMA_MISMATCH"
BAD_EVENT_ID: Final = "BAD_EVENT_ID"
UNKNOWN_UNIT: Final = "UNKNOWN_UNIT"
TOPIC_UNIT_MISMATCH: Final = "TOPIC_UNIT_MISMATCH"
UNKNOWN_GROUP: Final = "UNKNOWN_GROUP"
UNIT_NOT_RESPONSIBLE: Final = "UNIT_NOT_RESPONSIBLE"
UNKNOWN_CATEGORY: Final = "UNKNOWN_CATEGORY"
CATEGORY_NOT_FOR_GROUP: Final = "CATEGORY_NOT_FOR_GROUP"
UNKNOWN_DOMAIN: Final = "UNKNOWN_DOMAIN"
UNKNOWN_SEVERITY: Final = "UNKNOWN_SEVERITY"
SEVERITY_REQUIRED: Final = "SEVERITY_REQUIRED"
SEVERITY_NOT_APPLICABLE: Final = "SEVERITY_NOT_APPLICABLE"
CONTENT_MISMATCH: Final = "CONTENT_MISMATCH"
EMPTY_FIELD: Final = "EMPTY_FIELD"
FIELD_TOO_LONG: Final = "FIELD_TOO_LONG"
BAD_NAME: Final = "BAD_NAME"
BAD_TEXT: Final = "BAD_TEXT"
FUTURE_DATE: Final = "FUTURE_DATE"
DATE_ORDER: Final = "DATE_ORDER"
OUT_OF_RANGE: Final = "OUT_OF_RANGE"
REPAIR_NOT_APPLICABLE: Final = "REPAIR_NOT_APPLICABLE"

VALIDATION_REASONS: Final[dict[str, str]] = {
    SCHEMA_MISMATCH: "A field is missing or has the wrong type (only for data that did not come "
    "through Avro decoding, e.g. a publisher's own dict).",
    BAD_EVENT_ID: "event_id is not 64 lower-case hex characters (a SHA-256).",
    UNKNOWN_UNIT: "unit is not a unit code of the catalog.",
    TOPIC_UNIT_MISMATCH: "The event's unit differs from the unit of the topic it was published on.",
    UNKNOWN_GROUP: "group is not a group code of the catalog.",
    UNIT_NOT_RESPONSIBLE: "The unit is not responsible for the group (catalog `may_publish`).",
    UNKNOWN_CATEGORY: "category is not a category code of the catalog.",
    CATEGORY_NOT_FOR_GROUP: "The category is not an archive item of the group.",
    UNKNOWN_DOMAIN: "domain is given and is not a domain code of the catalog.",
    UNKNOWN_SEVERITY: "severity is an Avro symbol the catalog does not define.",
    SEVERITY_REQUIRED: "An UPSERT of a dishonesty category has no severity.",
    SEVERITY_NOT_APPLICABLE: "A non-dishonesty category carries a severity.",
    CONTENT_MISMATCH: "The content record type does not fit the category's content kind, or an "
    "UPSERT has no content.",
    EMPTY_FIELD: "A text field is empty or blank (optional text must be null, not blank); an "
    "array that needs items is empty.",
    FIELD_TOO_LONG: "A field, array or map exceeds its size limit, or the encoded event exceeds "
    "64 KiB.",
    BAD_NAME: "The person's name is blank or contains control or invisible format characters.",
    BAD_TEXT: "Text contains control characters (free text may contain tab and line breaks).",
    FUTURE_DATE: "A date of the fact (occurred_at, decision_date, ...) or published_at lies more "
    "than one day after the validation time.",
    DATE_ORDER: "Dates contradict each other: an end before its start, an expiry before issue, "
    "disclosure ending before the decision, or a fact dated before the person's birth.",
    OUT_OF_RANGE: "A number is out of range: a negative or over-precise fine, non-positive or "
    "implausible training hours, an assessment year before 1949.",
    REPAIR_NOT_APPLICABLE: "A REPAIR names a category that is not a dishonesty record (or, in the "
    "archive, addresses a record without a severity): only dishonesty records are repaired.",
}

RETRACT_UNKNOWN_RECORD: Final = "RETRACT_UNKNOWN_RECORD"
REPAIR_UNKNOWN_RECORD: Final = "REPAIR_UNKNOWN_RECORD"
REPAIR_RECORD_RETRACTED: Final = "REPAIR_RECORD_RETRACTED"
REPAIR_ALREADY_REPAIRED: Final = "REPAIR_ALREADY_REPAIRED"
REPAIR_TOO_EARLY: Final = "REPAIR_TOO_EARLY"

ARCHIVE_REASONS: Final[dict[str, str]] = {
    RETRACT_UNKNOWN_RECORD: "A RETRACT addresses a record (unit + record_id) the person's archive "
    "does not hold.",
    REPAIR_UNKNOWN_RECORD: "A REPAIR addresses a record (unit + record_id) the person's archive "
    "does not hold; only the unit that owns a record can repair it.",
    REPAIR_RECORD_RETRACTED: "A REPAIR addresses a record its unit has retracted.",
    REPAIR_ALREADY_REPAIRED: "A REPAIR addresses a record already repaired by another decision.",
    REPAIR_TOO_EARLY: "The repair decision date lies before the end of the record's minimum "
    "disclosure period (catalog severities, repair_min_months, from the decision date).",
    REPAIR_NOT_APPLICABLE: VALIDATION_REASONS[REPAIR_NOT_APPLICABLE],
}

MESSAGES_ZH: Final[dict[str, str]] = {
    RETRACT_UNKNOWN_RECORD: "要撤销的记录在本单位已报送的记录中不存在，请核对记录编号",
    REPAIR_UNKNOWN_RECORD: "要修复的记录在本单位已报送的记录中不存在，请核对记录编号",
    REPAIR_RECORD_RETRACTED: "要修复的记录已被撤销，无需修复",
    REPAIR_ALREADY_REPAIRED: "该记录已按其他修复决定完成信用修复，不能重复修复",
    REPAIR_TOO_EARLY: "修复决定日期早于该记录最短公示期届满之日（自处罚决定之日起算），暂不能修复",
    REPAIR_NOT_APPLICABLE: "该记录不是失信记录，无需信用修复",
}
"""The archive's refusals in Chinese, as the units read them."""


def message_zh(code: str) -> str | None:
    """The Chinese message of an archive refusal (or REPAIR_NOT_APPLICABLE), None otherwise."""
    return MESSAGES_ZH.get(code)


IDENTITY_REASONS: Final[dict[str, str]] = {
    "ID_LEGACY_15": "A 15-digit legacy identity number; the 18-digit form is required.",
    "ID_LENGTH": "The identity number does not have 18 characters.",
    "ID_CHARSET": "The identity number is not 17 digits plus a digit or X.",
    "ID_CHECKSUM": "The ISO 7064 MOD 11-2 check character does not match.",
    "ID_DIVISION": "The first two digits are not a province code.",
    "ID_BIRTH_DATE": "The birth date is not a real date, before 1900, or in the future.",
    "USCC_LENGTH": "A unified social credit code does not have 18 characters.",
    "USCC_CHARSET": "The code has characters outside its alphabet (I, O, Z, S, V are excluded).",
    "USCC_REGISTRATION_DEPT": "Unknown registration department (1st character).",
    "USCC_ORG_TYPE": "Organisation type (2nd character) not defined for that department.",
    "USCC_DIVISION": "Characters 3-8 (the division) are not digits.",
    "USCC_CHECKSUM": "The mod-31 check character does not match.",
}

ALL_REASONS: Final[dict[str, str]] = {**VALIDATION_REASONS, **IDENTITY_REASONS,
                                      **ARCHIVE_REASONS}
