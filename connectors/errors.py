"""Errors the sinks share."""

from __future__ import annotations

from creditbus.errors import CreditbusError, DeliveryError


class TransientError(DeliveryError):
    """A failure that may go away (database or API unavailable): retry the batch, drop nothing."""


class SinkFatal(CreditbusError):
    """A failure that retrying cannot fix (bad configuration, schema missing): stop the sink."""
