"""Bearer tokens of the query service, kept as SHA-256 hashes in a TOML file.

```toml
[[tokens]]
name = "司法局查询"          # who: shown in the audit trail, unique in the file
role = "unit"               # unit | office | public (creditbus.services.query.access)
unit = "justice"            # the unit code, for role = "unit" only
sha256 = "9f86d0..."        # hex SHA-256 of the token; the token itself is never stored
created_at = "2024-05-01T08:00:00.000Z"
```

A token is shown once, when `creditbus query token add` makes it. The service re-reads the file
when it changes, so adding or revoking a token needs no restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from creditbus.services.query.access import ROLES, Role

from creditbus.audit import now_text
from creditbus.catalog import Catalog
from creditbus.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_PREFIX = "cbq_"
TOKEN_BYTES = 32


class TokenFileError(ConfigError, ValueError):
    """The tokens file cannot be read or is invalid; the message names the file and entry."""


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: Role
    unit: str | None
    sha256: str
    created_at: str = ""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def default_tokens_path(home: Path) -> Path:
    return home / "query-tokens.toml"


def load_entries(path: Path, catalog: Catalog | None = None) -> list[TokenEntry]:
    """Every entry of the file (empty when it does not exist), validated."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{path}: cannot be read ({exc})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TokenFileError(f"{path}: not valid TOML ({exc})") from exc
    raw_entries = data.get("tokens", [])
    if not isinstance(raw_entries, list):
        raise TokenFileError(f"{path}: 'tokens' must be an array of tables ([[tokens]])")
    entries: list[TokenEntry] = []
    problems: list[str] = []
    for number, raw in enumerate(raw_entries, 1):
        try:
            entries.append(_entry(raw, catalog))
        except ValueError as exc:
            problems.append(f"token #{number}: {exc}")
    names = [e.name for e in entries]
    problems += [f"name {n!r} is used twice" for n in sorted({n for n in names
                                                               if names.count(n) > 1})]
    if problems:
        raise TokenFileError(f"{path}: " + "; ".join(problems))
    return entries


def _entry(raw: object, catalog: Catalog | None) -> TokenEntry:
    if not isinstance(raw, dict):
        raise ValueError("not a table")
    name, role, unit, digest = (raw.get(k) for k in ("name", "role", "unit", "sha256"))
    if not isinstance(name, str) or not name.strip():
        raise ValueError("no name")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "unit":
        if not isinstance(unit, str) or not unit:
            raise ValueError(f"{name!r}: a unit token needs `unit` (a unit code)")
        if catalog is not None and not catalog.has("unit", unit):
            raise ValueError(f"{name!r}: unit {unit!r} is not in the catalog")
    elif unit is not None:
        raise ValueError(f"{name!r}: only unit tokens name a unit")
    if not (isinstance(digest, str) and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)):
        raise ValueError(f"{name!r}: sha256 must be 64 lower-case hex digits")
    return TokenEntry(name.strip(), role, unit, digest, str(raw.get("created_at", "")))


def _toml_string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def entry_toml(entry: TokenEntry) -> str:
    lines = ["[[tokens]]", f"name = {_toml_string(entry.name)}",
             f"role = {_toml_string(entry.role)}"]
    if entry.unit is not None:
        lines.append(f"unit = {_toml_string(entry.unit)}")
    lines += [f"sha256 = {_toml_string(entry.sha256)}",
              f"created_at = {_toml_string(entry.created_at)}"]
    return "\n".join(lines) + "\n"


def add_token(path: Path, *, name: str, role: Role, unit: str | None,
              catalog: Catalog | None = None) -> str:
    """Make a token, append its hash to the file (created 0600 if missing); return the token."""
    entries = load_entries(path, catalog)
    token = new_token()
    entry = TokenEntry(name.strip(), role, unit, hash_token(token), now_text())
    try:
        _entry({"name": entry.name, "role": role, "unit": unit, "sha256": entry.sha256},
               catalog)
    except ValueError as exc:
        raise TokenFileError(f"token not added: {exc}") from exc
    if any(e.name == entry.name for e in entries):
        raise TokenFileError(f"{path}: a token named {entry.name!r} exists already")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        if handle.tell() > 0:
            handle.write("\n")
        handle.write(entry_toml(entry))
    return token


def revoke_token(path: Path, name: str) -> bool:
    """Remove the token called `name`; False when there is none."""
    entries = load_entries(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        return False
    write_entries(path, kept)
    return True


def write_entries(path: Path, entries: Iterable[TokenEntry]) -> None:
    text = "\n".join(entry_toml(e) for e in entries)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


class TokenStore:
    """Token hash -> entry, re-read when the file's modification time or size changes."""

    def __init__(self, path: Path, catalog: Catalog | None = None) -> None:
        self.path = path
        self.catalog = catalog
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, TokenEntry] = {}
        self.reload()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def reload(self) -> None:
        """Read the file; raises TokenFileError (and keeps the old tokens) when it is invalid."""
        with self._lock:
            stamp = self._file_stamp()
            entries = load_entries(self.path, self.catalog)
            self._by_hash = {e.sha256: e for e in entries}
            self._stamp = stamp

    def __len__(self) -> int:
        return len(self._by_hash)

    def find(self, token: str) -> TokenEntry | None:
        if self._file_stamp() != self._stamp:
            try:
                self.reload()
            except TokenFileError as exc:  # keep serving the tokens we had
                log.warning("tokens file not reloaded: %s", exc)
        if not token:
            return None
        return self._by_hash.get(hash_token(token))
