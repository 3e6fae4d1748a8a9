"""Field protection: the person's identity number and name sealed for the stream workers only.

A publisher seals `Person.id_number` and `Person.name` with the bus's public key; what travels
on `<prefix>.raw.<unit>` (and sits in its log segments, backups and dead letters) then holds a
fixed placeholder and a `sealed` record that only a holder of the private key can open.

Scheme (per event): a fresh ephemeral X25519 key pair; ECDH with the bus's public key; HKDF-SHA256
over the shared secret (info: a label, the ephemeral and the recipient public keys) gives a
256-bit AES-GCM key; a random 96-bit nonce; the plaintext is the canonical JSON of the clear
fields. The associated data binds the key id and the event (unit, record id, event id), so a
ciphertext copied into another event, or relabelled with another key id, does not open.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from creditbus.errors import ContractError
from creditbus.security.keys import key_id

SEALED_FIELDS = ("id_number", "name")
PLACEHOLDER = "[sealed]"
"""What `id_number` and `name` hold while sealed (not a valid identity number by design)."""

SEAL_UNKNOWN_KEY = "SEAL_UNKNOWN_KEY"
SEAL_INVALID = "SEAL_INVALID"

_LABEL = b"creditbus/field-seal/v1"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_TAG_BYTES = 16


class FieldProtectionError(ContractError, ValueError):
    """A sealed person that cannot be opened (or a person that cannot be sealed)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def event_aad(unit: str, record_id: str, event_id: str) -> bytes:
    """The associated data of an event's seal: unambiguous (JSON array) and UTF-8."""
    return json.dumps(["CreditEvent", unit, record_id, event_id], ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def is_sealed(person: Mapping[str, Any]) -> bool:
    return person.get("sealed") is not None


def seal_person(
    person: Mapping[str, Any], public_key: X25519PublicKey, *, aad: bytes
) -> dict[str, Any]:
    """A copy of `person` with `id_number` and `name` replaced by PLACEHOLDER and sealed."""
    if is_sealed(person):
        raise FieldProtectionError(SEAL_INVALID, "the person is sealed already")
    clear = {}
    for name in SEALED_FIELDS:
        value = person.get(name)
        if not isinstance(value, str):
            raise FieldProtectionError(SEAL_INVALID, f"person.{name} is not a string")
        clear[name] = value
    plaintext = json.dumps(clear, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":")).encode("utf-8")
    kid = key_id(public_key)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    key = _derive(ephemeral.exchange(public_key), ephemeral_public, public_key.public_bytes_raw())
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, _associated(kid, aad))
    return {
        **person,
        **dict.fromkeys(SEALED_FIELDS, PLACEHOLDER),
        "sealed": {
            "key_id": kid,
            "ephemeral_public_key": ephemeral_public,
            "nonce": nonce,
            "ciphertext": ciphertext,
        },
    }


def open_person(
    person: Mapping[str, Any], private_keys: Mapping[str, X25519PrivateKey], *, aad: bytes
) -> dict[str, Any]:
    """A copy of `person` with the sealed fields restored and `sealed` set to None.

    A person without `sealed` (an older or unprotected publisher) is returned as it is.
    Raises `FieldProtectionError` with SEAL_UNKNOWN_KEY (no private key with that id) or
    SEAL_INVALID (malformed, tampered, or sealed for another event). Messages hold no values.
    """
    sealed = person.get("sealed")
    if sealed is None:
        return dict(person)
    kid, ephemeral_public, nonce, ciphertext = _parts(sealed)
    private = private_keys.get(kid)
    if private is None:
        raise FieldProtectionError(
            SEAL_UNKNOWN_KEY, f"no private key with id {kid} is configured on this worker"
        )
    for name in SEALED_FIELDS:
        if person.get(name) != PLACEHOLDER:
            raise FieldProtectionError(SEAL_INVALID, f"a sealed person carries a clear {name}")
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    except ValueError:
        raise FieldProtectionError(SEAL_INVALID, "the ephemeral public key is invalid") from None
    key = _derive(shared, ephemeral_public, private.public_key().public_bytes_raw())
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, _associated(kid, aad))
    except InvalidTag:
        raise FieldProtectionError(
            SEAL_INVALID, "the sealed fields do not open: tampered, or sealed for another event"
        ) from None
    clear = _clear_fields(plaintext)
    return {**person, **clear, "sealed": None}


def seal_event(event: Mapping[str, Any], public_key: X25519PublicKey) -> dict[str, Any]:
    """A CreditEvent datum with its person sealed; `event_id` must be final already."""
    aad = event_aad(event["unit"], event["record_id"], event["event_id"])
    return {**event, "person": seal_person(event["person"], public_key, aad=aad)}


def open_event(
    event: Mapping[str, Any], private_keys: Mapping[str, X25519PrivateKey]
) -> dict[str, Any]:
    """A CreditEvent datum with its person opened (unchanged when it is not sealed)."""
    if not is_sealed(event["person"]):
        return dict(event)
    aad = event_aad(event["unit"], event["record_id"], event["event_id"])
    return {**event, "person": open_person(event["person"], private_keys, aad=aad)}


def _derive(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None,
                info=_LABEL + ephemeral_public + recipient_public)
    return hkdf.derive(shared)


def _associated(kid: str, aad: bytes) -> bytes:
    return _LABEL + b"\0" + kid.encode("ascii") + b"\0" + aad


def _parts(sealed: Any) -> tuple[str, bytes, bytes, bytes]:
    try:
        kid = sealed["key_id"]
        ephemeral_public = bytes(sealed["ephemeral_public_key"])
        nonce = bytes(sealed["nonce"])
        ciphertext = bytes(sealed["ciphertext"])
    except (KeyError, TypeError, ValueError):
        raise FieldProtectionError(SEAL_INVALID, "the sealed record is incomplete") from None
    if not isinstance(kid, str) or not kid.isascii() or not kid:
        raise FieldProtectionError(SEAL_INVALID, "the sealed record has no valid key id")
    if (len(ephemeral_public) != 32 or len(nonce) != _NONCE_BYTES
            or len(ciphertext) < _TAG_BYTES):
        raise FieldProtectionError(SEAL_INVALID, "the sealed record has wrong sizes")
    return kid, ephemeral_public, nonce, ciphertext


def _clear_fields(plaintext: bytes) -> dict[str, str]:
    try:
        clear = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FieldProtectionError(SEAL_INVALID, "the sealed fields are not JSON") from None
    if (not isinstance(clear, dict) or set(clear) != set(SEALED_FIELDS)
            or not all(isinstance(v, str) for v in clear.values())):
        raise FieldProtectionError(SEAL_INVALID, "the sealed fields are not id_number and name")
    return clear
