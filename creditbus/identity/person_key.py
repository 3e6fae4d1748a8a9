"""The pseudonymous person key that replaces the clear ID inside the bus."""

from __future__ import annotations

import hashlib
import hmac


def person_key(normalised_id: str, secret: bytes) -> str:
    """Hex HMAC-SHA256 (64 characters) of the normalised resident ID under `secret`.

    The ID is stripped and upper-cased first, so a lower-case `x` gives the same key. A keyed hash
    (not a plain hash) keeps the key from being reversed by enumerating the small ID space.
    """
    if not secret:
        raise ValueError("the person key secret must not be empty")
    data = normalised_id.strip().upper().encode("utf-8")
    return hmac.new(secret, data, hashlib.sha256).hexdigest()
