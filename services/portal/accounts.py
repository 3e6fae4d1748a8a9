"""Portal accounts: Argon2id password hashes (argon2-cffi), the login check and its throttle.

A unit account (单位账号) is bound to one unit code; the office account (信用办) sees every unit.
There is no public account: the public role stays with the query service's API.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from creditbus.services.portal.store import Account, PortalStore

from creditbus.errors import ConfigError

HASHER = PasswordHasher()  # Argon2id, the library's RFC 9106 low-memory profile
MIN_PASSWORD_CHARS = 10
_DUMMY_HASH = HASHER.hash("not a password of anyone")


class AccountError(ConfigError, ValueError):
    """An account cannot be created as asked."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return HASHER.hash(password)


def check_password(store: PortalStore, username: str, password: str) -> Account | None:
    """The account when the password is right (rehashing an outdated hash), else None.

    An unknown user costs the same hash check, so timing does not tell which names exist."""
    account = store.account(username)
    if account is None or account.disabled:
        try:
            HASHER.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        HASHER.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if HASHER.check_needs_rehash(account.password_hash):
        store.set_password_hash(username, HASHER.hash(password))
    return account


@dataclass
class LoginThrottle:
    """At most `limit` failed logins per user name and per client address within `window_s`;
    beyond that, logins of that name or from that address are refused until the window
    passes (the password is not even checked)."""

    limit: int = 5
    window_s: float = 300.0

    def __post_init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        entries = self._failures.setdefault(key, deque())
        while entries and entries[0] <= now - self.window_s:
            entries.popleft()
        return entries

    def blocked(self, username: str, remote: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.limit
                       for k in (f"user:{username}", f"addr:{remote}"))

    def failed(self, username: str, remote: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"user:{username}", f"addr:{remote}"):
                self._recent(key, now).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username}", None)
