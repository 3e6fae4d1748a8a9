"""A private certificate authority and broker certificates for Kafka over TLS (`cryptography`).

`ensure_ca` creates (once) an ECDSA P-256 CA; `ensure_broker_certificate` issues a broker a key
and a certificate whose subject alternative names are the host names and addresses clients
reach it by (hostname verification is on in every client). The broker reads them as a PEM
keystore (private key followed by its certificate chain) and the CA certificate as a PEM
truststore (`ssl.keystore.type=PEM`, Kafka 3.9).

Files are written readable by their owner only (in a 0700 directory when this module creates
it), except the CA certificate (`ca.pem`, public: every client needs it), which is 0644.
Existing files are reused; a broker certificate is re-issued when it nears its end, its names
changed or its CA is another.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from creditbus.errors import ConfigError

CA_DAYS = 3650
CERT_DAYS = 825
RENEW_BEFORE_DAYS = 30
CA_CERT = "ca.pem"
CA_KEY = "ca.key.pem"
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")
"""The names of the local broker: clients connect to 127.0.0.1."""


class TlsError(ConfigError, RuntimeError):
    """A certificate could not be read or issued."""


@dataclass(frozen=True)
class BrokerTls:
    ca_file: Path
    """The CA certificate (PEM): the broker's truststore and every client's CA file."""
    keystore: Path
    """The broker's private key and certificate chain (PEM), 0600."""


def ensure_ca(directory: Path, common_name: str = "creditbus Kafka CA") -> tuple[Path, Path]:
    """(CA certificate, CA key) in `directory`, created when missing."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.is_file() and key_path.is_file():
        _load_ca(directory)  # fail early on a damaged pair
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def ensure_broker_certificate(
    directory: Path, name: str, hosts: Iterable[str], *, ca_dir: Path | None = None,
    renew: bool = False,
) -> BrokerTls:
    """The keystore `<name>.keystore.pem` in `directory` for a broker reached as `hosts` (names
    or addresses), signed by the CA in `ca_dir` (default `directory`; created when missing).
    With a separate `ca_dir` the CA certificate is copied to `directory/ca.pem` (its key is
    not)."""
    hosts = tuple(dict.fromkeys(h.strip() for h in hosts if h.strip()))
    if not hosts:
        raise TlsError("a broker certificate needs at least one host name or address")
    ca_dir = ca_dir or directory
    ca_cert_path, _ = ensure_ca(ca_dir)
    ca_cert, ca_key = _load_ca(ca_dir)
    if ca_dir != directory:
        public = directory / CA_CERT
        if not public.is_file() or public.read_bytes() != ca_cert_path.read_bytes():
            _write(public, ca_cert_path.read_bytes(), 0o644)
        ca_cert_path = public
    keystore = directory / f"{name}.keystore.pem"
    if not renew and _still_good(keystore, ca_cert, hosts):
        return BrokerTls(ca_cert_path, keystore)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=CERT_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        # serverAuth for its listeners, clientAuth for its connections to the controllers
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = (_key_pem(key) + cert.public_bytes(serialization.Encoding.PEM)
           + ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(keystore, pem, 0o600)
    return BrokerTls(ca_cert_path, keystore)


def certificate_names(path: Path) -> set[str]:
    """The DNS names and IP addresses of the first certificate in a PEM file."""
    return _names(_first_certificate(path))


def check_ca_file(path: Path) -> None:
    """Raise TlsError unless `path` is a readable PEM file with at least one certificate."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the CA file {path}: {exc.strerror or exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise TlsError(f"{path} holds no PEM certificate (expected the CA that signed the "
                       "brokers' certificates)")


def verification_failure(host: str, port: int, context: ssl.SSLContext,
                         timeout: float = 3.0) -> str | None:
    """Why the TLS server at host:port fails verification with `context` (its chain is not
    signed by the trusted CA, its name is not `host`, ...), or None when it passes, or when
    nothing answers (an unreachable broker is the client's retry business, not a TLS fault)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or exc.reason or exc)
    except (OSError, ssl.SSLError):
        return None


# -- internals --------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8, the form Kafka's PEM keystore reads; protected by the file's permissions.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return x509.DNSName(host)


def _names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName))


def _first_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError, IndexError) as exc:
        raise TlsError(f"{path} holds no readable certificate ({type(exc).__name__})") from None


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = _first_certificate(directory / CA_CERT)
    try:
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsError(f"cannot read the CA key in {directory} ({type(exc).__name__})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or \
            key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise TlsError(f"{directory / CA_KEY} is not the key of {directory / CA_CERT}")
    return cert, key


def _still_good(keystore: Path, ca_cert: x509.Certificate, hosts: tuple[str, ...]) -> bool:
    if not keystore.is_file():
        return False
    try:
        cert = _first_certificate(keystore)
    except TlsError:
        return False
    wanted = {str(_general_name(h).value) for h in hosts}
    fresh = cert.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_BEFORE_DAYS)
    return cert.issuer == ca_cert.subject and fresh and _names(cert) == wanted and \
        _signed_by(cert, ca_cert)


def _signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature and friends
        return False
    return True


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with `mode`; a directory it creates is 0700 (an existing one, e.g. a
    volume shared with the brokers, keeps its mode)."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, mode=0o700)
        os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)  # the umask may have narrowed it
    tmp.replace(path)


__all__ = ["CA_CERT", "LOCAL_NAMES", "BrokerTls", "TlsError", "certificate_names",
           "check_ca_file", "ensure_broker_certificate", "ensure_ca", "verification_failure"]
