"""18-character resident identity numbers (公民身份号码, GB 11643-1999)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from operator import mul

from creditbus.identity.divisions import division_table, province_is_valid
from creditbus.identity.errors import IdentifierError
from creditbus.identity.masking import mask_id

# ISO 7064 MOD 11-2: weight of position i (0-based, left to right) is 2**(17-i) mod 11.
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)
_EARLIEST_BIRTH = date(1900, 1, 1)


@dataclass(frozen=True)
class ResidentId:
    """A validated resident identity number and what it encodes."""

    number: str
    """Normalised: 18 characters, upper-case check character."""
    division_code: str
    division_name: str | None
    in_ganzhou: bool
    birth_date: date
    sex: str
    """'M' (17th digit odd) or 'F' (even)."""

    @property
    def masked(self) -> str:
        return mask_id(self.number)

    def __repr__(self) -> str:  # never print the clear number by accident
        return (
            f"ResidentId(number={self.masked!r}, division_code={self.division_code!r}, "
            f"in_ganzhou={self.in_ganzhou}, sex={self.sex!r})"
        )


def check_char(body17: str) -> str:
    """The MOD 11-2 check character of the first 17 digits."""
    if len(body17) != len(_WEIGHTS):
        raise ValueError("the check character is computed over 17 digits")
    total = sum(map(mul, map(int, body17), _WEIGHTS))
    return _CHECK_CHARS[total % 11]


def normalise_resident_id(text: str) -> str:
    """Strip surrounding whitespace and upper-case a trailing x."""
    return text.strip().upper()


def parse_resident_id(text: str, *, today: date | None = None) -> ResidentId:
    """Validate and decode a resident identity number; raise `IdentifierError` if invalid.

    Checks, in order: length (15-digit legacy numbers get `ID_LEGACY_15`), characters, the
    check character, the province of the division code, and the birth date (a real date, from
    1900 on, not after `today`, which defaults to the current date).
    """
    number = normalise_resident_id(text)
    masked = mask_id(number)
    if len(number) == 15 and number.isdigit():
        raise IdentifierError(
            "ID_LEGACY_15",
            f"{masked} is a 15-digit legacy number; it must be converted to the 18-digit form",
        )
    if len(number) != 18:
        shown = f" ({masked})" if number else ""
        raise IdentifierError(
            "ID_LENGTH", f"a resident ID has 18 characters, got {len(number)}{shown}"
        )
    body, last = number[:17], number[17]
    if not (body.isascii() and body.isdigit() and (last.isdigit() or last == "X")):
        raise IdentifierError(
            "ID_CHARSET", f"{masked}: expected 17 digits and a digit or X as the check character"
        )
    if check_char(body) != last:
        raise IdentifierError("ID_CHECKSUM", f"{masked}: the check character does not match")
    division = number[:6]
    if not province_is_valid(division):
        raise IdentifierError(
            "ID_DIVISION", f"{masked}: {division[:2]} is not a province code"
        )
    birth = _birth_date(number[6:14], masked, today or date.today())
    table = division_table()
    return ResidentId(
        number=number,
        division_code=division,
        division_name=table.name(division),
        in_ganzhou=table.in_ganzhou(division),
        birth_date=birth,
        sex="M" if int(number[16]) % 2 else "F",
    )


def _birth_date(yyyymmdd: str, masked: str, today: date) -> date:
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise IdentifierError(
            "ID_BIRTH_DATE", f"{masked}: the birth date is not a real calendar date"
        ) from None
    if birth < _EARLIEST_BIRTH:
        raise IdentifierError("ID_BIRTH_DATE", f"{masked}: the birth date is before 1900")
    if birth > today:
        raise IdentifierError("ID_BIRTH_DATE", f"{masked}: the birth date is in the future")
    return birth


def make_resident_id(division: str, birth_date: date | str, seq: int) -> str:
    """Build an 18-character number with its check character (for tests and generated data).

    `birth_date` may be a `date` or an 8-digit `YYYYMMDD` string (which allows impossible dates
    for negative tests); `seq` is the 3-digit sequence 0..999 (odd = male, even = female).
    """
    if len(division) != 6 or not division.isdigit():
        raise ValueError("division must be 6 digits")
    if isinstance(birth_date, date):
        birth = f"{birth_date.year:04d}{birth_date.month:02d}{birth_date.day:02d}"
    else:
        birth = birth_date
    if len(birth) != 8 or not birth.isdigit():
        raise ValueError("birth_date must be a date or 8 digits YYYYMMDD")
    if not 0 <= seq <= 999:
        raise ValueError("seq must be in 0..999")
    body = f"{division}{birth}{seq:03d}"
    return body + check_char(body)
