"""Errors the sinks share."""

from __future__ import annotations


class TransientError(Exception):
    """A failure that may go away (database or API unavailable): retry the batch, drop nothing."""


class SinkFatal(Exception):
    """A failure that retrying cannot fix (bad configuration, schema missing): stop the sink."""
