"""Masking of identity numbers for display, free text and logs."""

from __future__ import annotations

import logging
import re

# An 18-character resident ID (17 digits + digit/X) or a 15-digit legacy number, not part of a
# longer digit run. Letters next to it do not protect it: "ID360702...1234abc" is still masked.
_ID_RUN = re.compile(r"(?<!\d)(?:\d{17}[\dXx]|\d{15})(?!\d)")


def mask_id(text: str) -> str:
    """Mask an identifier: 18 characters keep the first 6 and last 4, others the first 2 and last 2.

    Values of 4 characters or fewer are masked completely.
    """
    n = len(text)
    if n == 18:
        return text[:6] + "*" * 8 + text[-4:]
    if n <= 4:
        return "*" * n
    return text[:2] + "*" * (n - 4) + text[-2:]


def redact(text: str) -> str:
    """Replace every ID-like run in free text (18-char IDs, 15-digit numbers) by its mask."""
    return _ID_RUN.sub(lambda m: mask_id(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks identity numbers in a record before any handler formats it.

    It formats the message with its args, redacts the result and clears the args; exception and
    stack text are formatted and redacted too. Attach it to *handlers* (a logger's own filters do
    not see records propagated from child loggers).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # args that do not fit the format string
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
