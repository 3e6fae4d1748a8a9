"""Logging for every process: one format, and identity numbers masked on every handler."""

from __future__ import annotations

import logging

from creditbus.identity import redact

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter and masks identity numbers in the text it produces.

    Masking the formatted text, instead of rewriting the record, leaves the shared LogRecord
    intact for the other handlers (Faust's logging re-enters records; rewriting msg/args there
    breaks %-formatting).
    """

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def protect_handlers(logger: logging.Logger | None = None) -> None:
    """Make every handler of `logger` (root by default) mask identity numbers."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    protect_handlers()
