"""Errors the sinks share."""

from __future__ import annotations

from creditbus.errors import DatabaseError, DeliveryError


class TransientError(DeliveryError):
    """A failure that may go away (database or API unavailable): retry the batch, drop nothing."""


class SinkFatal(DatabaseError):
    """A database failure that retrying cannot fix (schema missing, no privilege to create it,
    the database never came back before the stop): stop the sink (exit 4)."""
