"""Dead letters: the original bytes plus headers saying where a message came from and why it
failed (in the manner of Kafka Connect's DLQ headers).

Identity numbers may appear only on the inbound topics, so the bytes kept are the original with
every ID-like run masked in place: same length, so the framing and Avro lengths stay intact and
the message still decodes; the clear original stays on its inbound topic at the offset given.
"""

from __future__ import annotations

import re
import time

from creditbus.identity import mask_id, redact

HEADER_PREFIX = "creditbus.dlq."

# No look-ahead: in Avro the number is followed by the name's length byte, which can itself be
# an ASCII digit or X. Masking a little too much in a dead letter is the safe side.
_ID_BYTES = re.compile(rb"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})")


def mask_ids_in_bytes(data: bytes) -> bytes:
    return _ID_BYTES.sub(lambda m: mask_id(m.group().decode("ascii")).encode("ascii"), data)


def dead_letter_headers(
    *, stage: str, reason: str, message: str, topic: str, partition: int, offset: int,
    unit: str | None = None,
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter; the message is redacted once more, to be sure."""
    headers = [
        ("stage", stage), ("reason", reason), ("message", redact(message)[:1000]),
        ("source.topic", topic), ("source.partition", str(partition)),
        ("source.offset", str(offset)), ("failed.at.ms", str(int(time.time() * 1000))),
    ]
    if unit:
        headers.append(("source.unit", unit))
    return [(HEADER_PREFIX + k, v.encode()) for k, v in headers]


def header_dict(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Dead-letter headers of a consumed message, prefix removed."""
    out: dict[str, str] = {}
    for key, value in headers or []:
        if key.startswith(HEADER_PREFIX):
            out[key[len(HEADER_PREFIX):]] = value.decode(errors="replace") if value else ""
    return out
