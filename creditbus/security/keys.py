"""The bus's field-protection keys: X25519 key pairs in PEM files, named by key id.

The key id is the first 16 hex characters of the SHA-256 of the raw 32-byte public key; sealed
events carry it so that a worker holding several private keys (old and new, during a rotation)
knows which one opens an event.

Private key files must be readable by their owner only (mode 0600 or 0400): a key file the
group or others may read is refused, like every other secret file
(creditbus.security.secretfile).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from creditbus.errors import ConfigError
from creditbus.security.secretfile import SecretFileError, check_private_file

KEY_ID_HEX = 16


class FieldKeyError(ConfigError, ValueError):
    """A key file is missing, unreadable, readable by others (private keys) or not an X25519
    key."""


@dataclass(frozen=True)
class KeyFiles:
    key_id: str
    private_path: Path
    public_path: Path


def key_id(public_key: X25519PublicKey) -> str:
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:KEY_ID_HEX]


def generate_key_files(out: Path) -> KeyFiles:
    """Write a new pair as `field-<id>.key.pem` (PKCS#8, 0600) and `field-<id>.pub.pem`."""
    private = X25519PrivateKey.generate()
    public = private.public_key()
    kid = key_id(public)
    out.mkdir(parents=True, exist_ok=True)
    files = KeyFiles(kid, out / f"field-{kid}.key.pem", out / f"field-{kid}.pub.pem")
    _write_new(files.private_path, private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ), 0o600)
    _write_new(files.public_path, public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
    ), 0o644)
    return files


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # never overwrite a key
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise FieldKeyError(f"cannot read key file {path}: {exc.strerror}") from None


def load_public_key(path: Path) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_read(path))
    except ValueError:
        raise FieldKeyError(f"{path} is not a PEM public key") from None
    if not isinstance(key, X25519PublicKey):
        raise FieldKeyError(f"{path} is not an X25519 public key")
    return key


def load_private_key(path: Path) -> X25519PrivateKey:
    try:
        check_private_file(path)
    except SecretFileError as exc:
        raise FieldKeyError(f"field private key: {exc}") from None
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError):
        raise FieldKeyError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, X25519PrivateKey):
        raise FieldKeyError(f"{path} is not an X25519 private key")
    return key


def load_private_keys(paths: Iterable[Path]) -> dict[str, X25519PrivateKey]:
    """Key id -> private key, for every file (old and new keys during a rotation)."""
    keys: dict[str, X25519PrivateKey] = {}
    for path in paths:
        key = load_private_key(path)
        keys[key_id(key.public_key())] = key
    return keys


def _paths(value: Any) -> list[Path]:
    if not value:
        return []
    if isinstance(value, str | Path):
        value = str(value).split(",")
    return [Path(str(p).strip()).expanduser() for p in value if str(p).strip()]


def public_key_from_settings(settings: Any) -> X25519PublicKey | None:
    """`CREDITBUS_FIELD_PUBLIC_KEY` loaded, or None when field protection is off."""
    paths = _paths(getattr(settings, "field_public_key", None))
    return load_public_key(paths[0]) if paths else None


def private_keys_from_settings(settings: Any) -> dict[str, X25519PrivateKey]:
    """`CREDITBUS_FIELD_PRIVATE_KEYS` loaded ({} when none are configured)."""
    return load_private_keys(_paths(getattr(settings, "field_private_keys", ())))
