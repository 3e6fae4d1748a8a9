"""Identifiers: resident identity numbers, unified social credit codes, masking, person keys."""

from creditbus.identity.errors import IdentifierError
from creditbus.identity.masking import RedactingFilter, mask_id, redact
from creditbus.identity.person_key import person_key
from creditbus.identity.resident_id import (
    ResidentId,
    make_resident_id,
    normalise_resident_id,
    parse_resident_id,
)
from creditbus.identity.uscc import make_uscc, validate_uscc

__all__ = [
    "IdentifierError",
    "RedactingFilter",
    "ResidentId",
    "make_resident_id",
    "make_uscc",
    "mask_id",
    "normalise_resident_id",
    "parse_resident_id",
    "person_key",
    "redact",
    "validate_uscc",
]
