"""Size limits of a CreditEvent, in one place (documented in docs/contract.md).

Lengths count characters (code points), not bytes; the whole-event limit counts the bytes of
the encoded message (framing header included).
"""

from __future__ import annotations

from typing import Final

NAME_MAX: Final = 64
"""A person's name and short labels: penalty types, assessment result, reward level, status."""
ID_MAX: Final = 128
"""Identifiers and codes: event_id, record_id, unit/group/category/domain codes, document and
certificate numbers, identity numbers and USCCs (before their own checks), attribute keys."""
SHORT_TEXT_MAX: Final = 256
"""One-line text: organisation and authority names, titles, positions, courses, source_ref."""
TEXT_MAX: Final = 4000
"""Free text: illegal facts, legal basis, penalty content, summaries, details, attribute values."""
ARRAY_MAX: Final = 50
"""Items of an array (penalty_types) or entries of a map (Note.attributes)."""
EVENT_MAX_BYTES: Final = 64 * 1024
"""The whole event, Avro-encoded with its framing header."""

FUTURE_TOLERANCE_MS: Final = 86_400_000
"""Dates of facts may lie at most one day after the validation time (clock skew, time zones)."""
FINE_MAX_DIGITS: Final = 18
"""decimal(18,2) of Penalty.fine_amount: at most 16 digits before the point, 2 after."""
FINE_SCALE: Final = 2
TRAINING_HOURS_MAX: Final = 10_000.0
EARLIEST_YEAR: Final = 1949
"""The earliest assessment year accepted."""
