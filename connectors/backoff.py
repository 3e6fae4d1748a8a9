"""Capped exponential backoff."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays initial, initial*factor, ... capped at `cap` seconds."""

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0 for the first retry)."""
        return min(self.cap, self.initial * self.factor ** min(attempt, 60))
