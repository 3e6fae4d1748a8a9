"""Unified social credit codes of organisations (统一社会信用代码, GB 32100-2015)."""

from __future__ import annotations

from creditbus.identity.errors import IdentifierError
from creditbus.identity.masking import mask_id

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 code characters (no I, O, Z, S, V); a character's value is its index."""
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Weight of position i (0-based) is 3**i mod 31.
_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))

# Registration department (登记管理部门, 1st char) -> organisation types (机构类别, 2nd char).
REGISTRATION_DEPARTMENTS: dict[str, tuple[str, frozenset[str]]] = {
    "1": ("机构编制", frozenset("1239")),
    "2": ("外交", frozenset("19")),
    "3": ("司法行政", frozenset("123459")),
    "4": ("文化", frozenset("19")),
    "5": ("民政", frozenset("1239")),
    "6": ("旅游", frozenset("129")),
    "7": ("宗教", frozenset("129")),
    "8": ("工会", frozenset("19")),
    "9": ("工商（市场监管）", frozenset("123")),
    "A": ("中央军委改革和编制办公室", frozenset("19")),
    "N": ("农业", frozenset("1239")),
    "Y": ("其他", frozenset("1")),
}


def uscc_check_char(body17: str) -> str:
    """The mod-31 check character of the first 17 characters."""
    total = sum(_VALUE[c] * w for c, w in zip(body17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def validate_uscc(text: str) -> str:
    """Validate a unified social credit code and return it normalised (stripped, upper-case).

    Raises `IdentifierError` with `USCC_LENGTH`, `USCC_CHARSET`, `USCC_REGISTRATION_DEPT`,
    `USCC_ORG_TYPE`, `USCC_DIVISION` or `USCC_CHECKSUM`.
    """
    code = text.strip().upper()
    masked = mask_id(code)
    if len(code) != 18:
        raise IdentifierError(
            "USCC_LENGTH", f"a unified social credit code has 18 characters, got {len(code)}"
        )
    bad = sorted({c for c in code if c not in _VALUE})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise IdentifierError(
            "USCC_CHARSET",
            f"{masked}: characters outside the code alphabet (no I, O, Z, S, V): {shown}",
        )
    dept = REGISTRATION_DEPARTMENTS.get(code[0])
    if dept is None:
        raise IdentifierError(
            "USCC_REGISTRATION_DEPT", f"{masked}: unknown registration department {code[0]!r}"
        )
    if code[1] not in dept[1]:
        raise IdentifierError(
            "USCC_ORG_TYPE",
            f"{masked}: organisation type {code[1]!r} does not exist for department {code[0]!r}",
        )
    if not code[2:8].isdigit():
        raise IdentifierError("USCC_DIVISION", f"{masked}: characters 3-8 must be digits")
    if uscc_check_char(code[:17]) != code[17]:
        raise IdentifierError("USCC_CHECKSUM", f"{masked}: the check character does not match")
    return code


def make_uscc(
    org_code: str, division: str = "360700", registration_dept: str = "9", org_type: str = "1"
) -> str:
    """Build an 18-character code from its parts and append the check character.

    `org_code` is the 9-character subject identifier (主体标识码); the defaults make an enterprise
    registered in Ganzhou. For tests and generated data.
    """
    body = f"{registration_dept}{org_type}{division}{org_code}".upper()
    if len(body) != 17 or any(c not in _VALUE for c in body):
        raise ValueError("the parts must give 17 characters of the code alphabet")
    return body + uscc_check_char(body)
