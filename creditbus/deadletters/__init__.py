"""The dead-letter console's core: read, filter, show (masked) and replay dead letters.

The writers (the worker's edge stage and archive agent, the sinks) build their headers with
`creditbus.deadletter`; this package is the reading side: `records` (a dead letter, its id and
the filters), `reader` (the dead-letter topics up to their end, the source messages),
`view` (what an operator may see: identity numbers and names masked) and `replay` (re-publish
a dead letter's original message, at most once per dead letter).
"""

from creditbus.deadletters.records import DeadLetter, DeadLetterFilter, parse_dead_letter_id

__all__ = ["DeadLetter", "DeadLetterFilter", "parse_dead_letter_id"]
