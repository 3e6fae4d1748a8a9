"""Secrets read from files that only their owner may read.

A secret in an environment variable is visible to anyone who can read the process's
environment (`/proc/<pid>/environ`, `docker inspect`, crash reports); a file with mode 0600 or
0400, mounted from the deployment's secret store, is not. `read_secret_file` and
`check_private_file` refuse a file that the group or others may read or write, saying which
file and what to do, and never show its content.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from creditbus.errors import ConfigError


class SecretFileError(ConfigError, ValueError):
    """A secret file is missing, empty, or readable by others than its owner."""


def check_private_file(path: Path) -> None:
    """Refuse `path` unless it is a regular file without any group or other permission."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise SecretFileError(f"cannot read secret file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretFileError(f"secret file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise SecretFileError(
            f"secret file {path} has mode {mode:04o}: group or others may access it; "
            f"allow its owner only (chmod 600 {path})")


def read_secret_file(path: Path) -> str:
    """The secret in `path` (trailing newlines removed), after `check_private_file`."""
    check_private_file(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretFileError(f"cannot read secret file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretFileError(f"secret file {path} is not UTF-8 text") from None
    secret = text.rstrip("\r\n")
    if not secret.strip():
        raise SecretFileError(f"secret file {path} is empty")
    return secret


def tls_pair(cert: Path | None, key: Path | None, setting: str) -> tuple[Path, Path] | None:
    """A server's certificate chain and key from the settings `<setting>_CERT` and `_KEY`:
    both or neither, the key an owner-only file; None when neither is set."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise SecretFileError(f"{setting}_CERT and {setting}_KEY go together: set both or "
                              "neither")
    try:
        check_private_file(key)
    except SecretFileError as exc:
        raise SecretFileError(f"{setting}_KEY: {exc}") from None
    return cert, key
