"""Every listener binds to loopback unless told otherwise, speaks HTTPS when given a
certificate, and a taken port is one clear error (real sockets, real TLS handshakes)."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from creditbus.services.query.listener import ListenerError, bind, tls_context

from creditbus import metrics
from creditbus.devtools.kafka.ports import free_port
from creditbus.errors import ConfigError
from creditbus.settings import SettingsError, environment_variables
from tests.tls_certs import CertAuthority, ServerCert, issue_server_cert, make_ca


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for s in environment_variables():
        monkeypatch.delenv(s.env, raising=False)
    monkeypatch.setenv("CREDITBUS_HOME", str(tmp_path))
    return monkeypatch


@pytest.fixture()
def certs(tmp_path: Path) -> tuple[CertAuthority, ServerCert]:
    ca = make_ca(tmp_path / "ca")
    return ca, issue_server_cert(ca, tmp_path / "server")


@pytest.fixture()
def servers() -> Iterator[list[object]]:
    started: list[object] = []
    yield started
    for server in started:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]


def test_metrics_listen_on_loopback_by_default(clean_env: pytest.MonkeyPatch,
                                               servers: list[object]) -> None:
    port = free_port()
    server = metrics.serve(port, "test")
    servers.append(server)
    assert server is not None and server.server_address[0] == "127.0.0.1"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert b"creditbus_process_up" in answer.read()
    with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}: "):
        metrics.serve(port, "test")

    clean_env.setenv("CREDITBUS_METRICS_HOST", "0.0.0.0")
    everywhere = metrics.serve(free_port(), "test")
    servers.append(everywhere)
    assert everywhere is not None and everywhere.server_address[0] == "0.0.0.0"


def test_metrics_over_https(clean_env: pytest.MonkeyPatch, servers: list[object],
                            certs: tuple[CertAuthority, ServerCert]) -> None:
    ca, server_cert = certs
    clean_env.setenv("CREDITBUS_METRICS_TLS_CERT", str(server_cert.cert_path))
    clean_env.setenv("CREDITBUS_METRICS_TLS_KEY", str(server_cert.key_path))
    port = free_port()
    servers.append(metrics.serve(port, "test"))
    trusted = ssl.create_default_context(cafile=str(ca.cert_path))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=10,
                                context=trusted) as answer:
        assert b"creditbus_process_up" in answer.read()
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=10,
                               context=ssl.create_default_context())


def test_metrics_tls_settings_are_checked(clean_env: pytest.MonkeyPatch,
                                          certs: tuple[CertAuthority, ServerCert]) -> None:
    _, server_cert = certs
    clean_env.setenv("CREDITBUS_METRICS_TLS_CERT", str(server_cert.cert_path))
    clean_env.delenv("CREDITBUS_METRICS_TLS_KEY", raising=False)
    with pytest.raises(SettingsError, match="set both or neither"):
        metrics.serve(free_port(), "test")
    clean_env.setenv("CREDITBUS_METRICS_TLS_KEY", str(server_cert.key_path))
    server_cert.key_path.chmod(0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        metrics.serve(free_port(), "test")


def test_query_listener_bind_and_tls(certs: tuple[CertAuthority, ServerCert]) -> None:
    ca, server_cert = certs
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with pytest.raises(ListenerError) as caught:
            bind("127.0.0.1", port)
        assert str(caught.value) == f"cannot listen on 127.0.0.1:{port}: address already in use"
    finally:
        sock.close()
    assert tls_context(None, None) is None
    context = tls_context(server_cert.cert_path, server_cert.key_path)
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ListenerError, match="set both or neither"):
        tls_context(server_cert.cert_path, None)
    with pytest.raises(ListenerError, match="cannot use the certificate"):
        tls_context(ca.cert_path, server_cert.key_path)  # a key that is not the cert's
    server_cert.key_path.chmod(0o640)
    with pytest.raises(ListenerError, match="0640"):
        tls_context(server_cert.cert_path, server_cert.key_path)


def test_bind_on_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        sock = bind("::1", 0)
    except ListenerError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    sock.close()
