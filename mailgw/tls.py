"""Server TLS for the listeners: the configured certificate, or a self-signed one made once.

`server_ssl_context(config)` is called at start-up (before or outside the event loop: it reads
files and may generate a key). With `tls.cert`/`tls.key` set it loads them and names the key in
any error. With both empty it uses `<data_dir>/tls/cert.pem` and `key.pem`, creating them on
first start: EC P-256, valid ten years, SAN = the gateway host name, localhost, 127.0.0.1 and ::1,
key file mode 0600. Several gateway processes may start at once; the pair is written into a
temporary directory that is renamed into place, so they never end up with a certificate and a key
from two different runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import os
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailgw.config import ConfigError

if TYPE_CHECKING:
    from mailgw.config import Config

log = logging.getLogger(__name__)

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
VALIDITY = dt.timedelta(days=3650)


def server_ssl_context(config: Config) -> ssl.SSLContext:
    """A TLS 1.2+ server context with the configured or the self-signed certificate."""
    if config.tls.cert:
        cert, key = Path(config.tls.cert), Path(config.tls.key)
    else:
        cert, key = ensure_self_signed(config.data_dir / "tls", config.hostname)
    return make_server_context(cert, key)


def make_server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Load `cert` (PEM chain) and `key`; ConfigError naming tls.cert or tls.key if unusable."""
    _check_cert_file(cert)
    _check_key_file(key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise ConfigError(f"tls.cert and tls.key: {cert} and {key} do not belong together "
                          f"({exc.reason or exc})") from None
    return ctx


def ensure_self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """The self-signed pair in `directory`, made now if it does not exist yet."""
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    if directory.exists():
        if not (cert.exists() and key.exists()):
            raise ConfigError(f"tls: {directory} exists but lacks {CERT_NAME} or {KEY_NAME}; "
                              "remove the directory to have a new certificate made, "
                              "or set tls.cert and tls.key")
        _warn_if_open(key)
        return cert, key
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tls-", dir=directory.parent))
    try:
        cert_pem, key_pem = make_self_signed(hostname)
        _write(tmp / KEY_NAME, key_pem, 0o600)
        _write(tmp / CERT_NAME, cert_pem, 0o644)
        try:
            tmp.rename(directory)
            log.info("made a self-signed TLS certificate for %s in %s", hostname, directory)
        except OSError:
            # Another process made the directory first: use its pair, drop ours.
            if not (cert.exists() and key.exists()):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return cert, key


def make_self_signed(hostname: str) -> tuple[bytes, bytes]:
    """A new self-signed certificate and its private key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname or "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A day of slack for clients whose clock is a little behind.
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_san(hostname)), critical=False)
        # An end-entity certificate (browsers and some mail clients refuse a CA as a server).
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        # Strict verifiers (Python 3.13's default context, OpenSSL X509_STRICT) want both ids.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _san(hostname: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    dns = [hostname, "localhost"] if hostname and hostname != "localhost" else ["localhost"]
    for n in dns:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            names.append(x509.DNSName(n))
    for ip in ("127.0.0.1", "::1"):
        entry = x509.IPAddress(ipaddress.ip_address(ip))
        if entry not in names:
            names.append(entry)
    return names


def _write(path: Path, data: bytes, mode: int) -> None:
    # Created with its final mode: the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _check_cert_file(path: Path) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"tls.cert: cannot read {path}: {exc.strerror}") from None
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"tls.cert: {path} is not a PEM certificate") from None


def _check_key_file(path: Path) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"tls.key: cannot read {path}: {exc.strerror}") from None
    try:
        serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(f"tls.key: {path} is encrypted; give an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"tls.key: {path} is not a PEM private key") from None


def _warn_if_open(key: Path) -> None:
    with contextlib.suppress(OSError):
        if key.stat().st_mode & 0o077:
            log.warning("%s is readable by other users; chmod 600 it", key)
