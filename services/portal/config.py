"""The portal's settings, taken from creditbus.settings (CREDITBUS_PORTAL_*, docs/settings.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from creditbus.settings import Settings

DEFAULT_PORT = 8090


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
    kafka_credentials: Path | None = None
    """A credentials file of `creditbus acl apply`: a unit's upload is published with that
    unit's own principal. Unset: with the configured Kafka login (or none)."""
    receipt_timeout_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PortalConfig:
        return cls(
            host=settings.portal_host, port=settings.portal_port,
            trust_proxy=settings.portal_trust_proxy,
            secure_cookies=settings.portal_secure_cookies,
            max_upload_bytes=int(settings.portal_max_upload_mb * 1024 * 1024),
            session_hours=settings.portal_session_hours,
            kafka_credentials=settings.portal_kafka_credentials,
            receipt_timeout_s=settings.portal_receipt_timeout_s,
        )
