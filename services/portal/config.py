"""The portal's settings, read from the environment (docs/portal.md lists them).

Kept here until they join creditbus/settings.py; every name starts with CREDITBUS_PORTAL_.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 8090


def _flag(name: str, default: str) -> str:
    return os.environ.get(name, default).strip().lower()


@dataclass(frozen=True)
class PortalConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    trust_proxy: bool = False
    """Behind a reverse proxy: take the client address and scheme from X-Forwarded-For and
    X-Forwarded-Proto (only the proxy can reach the portal then)."""
    secure_cookies: str = "auto"
    """`always`, `never` (plain-HTTP development only) or `auto` (Secure over HTTPS)."""
    max_upload_bytes: int = 20 * 1024 * 1024
    session_hours: float = 8.0
    purpose_minutes: float = 30.0
    kafka_credentials: Path | None = None
    """A credentials file of `creditbus acl apply`: a unit's upload is published with that
    unit's own principal. Unset: with the configured Kafka login (or none)."""
    receipt_timeout_s: float = 60.0
    upload_workers: int = 2

    @classmethod
    def from_env(cls) -> PortalConfig:
        creds = os.environ.get("CREDITBUS_PORTAL_KAFKA_CREDENTIALS", "").strip()
        return cls(
            host=os.environ.get("CREDITBUS_PORTAL_HOST", "127.0.0.1").strip(),
            port=int(os.environ.get("CREDITBUS_PORTAL_PORT", str(DEFAULT_PORT))),
            trust_proxy=_flag("CREDITBUS_PORTAL_TRUST_PROXY", "false") in ("1", "true", "yes"),
            secure_cookies=_flag("CREDITBUS_PORTAL_SECURE_COOKIES", "auto"),
            max_upload_bytes=int(float(os.environ.get("CREDITBUS_PORTAL_MAX_UPLOAD_MB", "20"))
                                 * 1024 * 1024),
            session_hours=float(os.environ.get("CREDITBUS_PORTAL_SESSION_HOURS", "8")),
            kafka_credentials=Path(creds) if creds else None,
            receipt_timeout_s=float(os.environ.get("CREDITBUS_PORTAL_RECEIPT_TIMEOUT_S", "60")),
        )
