"""The one error type of identifier validation."""

from __future__ import annotations

from creditbus.errors import ContractError


class IdentifierError(ContractError, ValueError):
    """An identifier failed validation.

    `code` is a machine-readable reason (e.g. `ID_CHECKSUM`, `USCC_CHARSET`) that dead-letter
    headers and metrics carry; `message` is English and never contains the full number (at most
    its masked form), so the error can be logged and shown as is.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[IdentifierError], tuple[str, str]]:
        return (type(self), (self.code, self.message))
