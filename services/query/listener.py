"""The query service's listening socket and, when a certificate is configured, its TLS.

The socket is bound before anything else starts, so a taken port ends the command with one
line instead of a traceback after the service has connected to Kafka. With
CREDITBUS_QUERY_TLS_CERT and CREDITBUS_QUERY_TLS_KEY the service speaks HTTPS only (TLS 1.2 or
newer, the `ssl` module's secure defaults) and every answer carries HSTS; without them it
speaks plain HTTP, meant for loopback or behind a TLS-terminating reverse proxy
(docs/query.md).
"""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

from creditbus.errors import ConfigError
from creditbus.security.secretfile import SecretFileError, tls_pair

HSTS = "max-age=31536000"
"""Strict-Transport-Security of every HTTPS answer: browsers keep to HTTPS for a year."""


class ListenerError(ConfigError):
    """The service cannot listen as configured; the message is one line for the operator."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or ListenerError (e.g. address in use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenerError(f"cannot listen on {host}:{port}: {reason.lower()}") from None


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context, None when no certificate is configured."""
    try:
        pair = tls_pair(cert, key, "CREDITBUS_QUERY_TLS")
    except SecretFileError as exc:
        raise ListenerError(str(exc)) from None
    if pair is None:
        return None
    cert, key = pair
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ListenerError(f"cannot use the certificate {cert} with the key {key}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    return context
