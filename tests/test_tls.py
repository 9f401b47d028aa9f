"""Server TLS: self-signed certificate made once (0600 key, SANs), reused, real handshake."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from mailgw.config import ConfigError, load
from mailgw.tls import ensure_self_signed, server_ssl_context


def _config(tmp_path: Path, **extra: str):
    env = {"MAILGW_GATEWAY__DATA_DIR": str(tmp_path / "var"),
           "MAILGW_GATEWAY__HOSTNAME": "mail.phutho.gov.vn"}
    env.update(extra)
    return load(environ=env)


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
               server_hostname: str = "127.0.0.1") -> str:
    """One TLS handshake on 127.0.0.1; returns the negotiated protocol version."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"220 ok\r\n")
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            assert tls.recv(100) == b"220 ok\r\n"
            version = tls.version()
    finally:
        t.join(10)
        listener.close()
    assert not errors
    assert version is not None
    return version


def test_self_signed_made_once_with_private_key(tmp_path):
    cfg = _config(tmp_path)
    ctx = server_ssl_context(cfg)
    tls_dir = tmp_path / "var" / "tls"
    cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
    assert cert.exists() and key.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2

    first = cert.read_bytes(), key.read_bytes()
    server_ssl_context(cfg)
    assert (cert.read_bytes(), key.read_bytes()) == first  # reused, not remade
    assert [p.name for p in tls_dir.parent.iterdir()] == ["tls"]  # no temp dirs left


def test_self_signed_names_and_validity(tmp_path):
    server_ssl_context(_config(tmp_path))
    cert = x509.load_pem_x509_certificate((tmp_path / "var/tls/cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"mail.phutho.gov.vn", "localhost"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1"}
    years = (cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365
    assert 9.9 < years < 10.1


def test_handshake_with_generated_certificate(tmp_path):
    server_ctx = server_ssl_context(_config(tmp_path))
    client = ssl.create_default_context(cafile=str(tmp_path / "var/tls/cert.pem"))
    assert _handshake(server_ctx, client, "127.0.0.1") in ("TLSv1.2", "TLSv1.3")
    assert _handshake(server_ctx, client, "mail.phutho.gov.vn") in ("TLSv1.2", "TLSv1.3")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_1_1_refused(tmp_path):
    server_ctx = server_ssl_context(_config(tmp_path))
    client = ssl.create_default_context(cafile=str(tmp_path / "var/tls/cert.pem"))
    try:
        client.minimum_version = ssl.TLSVersion.TLSv1
        client.maximum_version = ssl.TLSVersion.TLSv1_1
        # OpenSSL 3's default security level would stop the client from offering TLS 1.1 at
        # all, and the test would pass whatever the server does: lower it on the client side.
        client.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL"):
        _handshake(server_ctx, client)


def test_configured_certificate(tmp_path):
    ca = trustme.CA()
    leaf = ca.issue_cert("mail.phutho.gov.vn", "127.0.0.1")
    cert, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    cfg = _config(tmp_path, MAILGW_TLS__CERT=str(cert), MAILGW_TLS__KEY=str(key))
    server_ctx = server_ssl_context(cfg)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    _handshake(server_ctx, client)
    assert not (tmp_path / "var" / "tls").exists()  # nothing self-signed made


@pytest.mark.parametrize(("which", "content", "message"), [
    ("cert", None, "tls.cert: cannot read"),
    ("key", None, "tls.key: cannot read"),
    ("cert", b"not a certificate", "tls.cert: .* is not a PEM certificate"),
    ("key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
     "tls.key: .* is not a PEM private key"),
])
def test_configured_files_unusable(tmp_path, which, content, message):
    ca = trustme.CA()
    leaf = ca.issue_cert("mail.phutho.gov.vn")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    target = cert if which == "cert" else key
    target.unlink()
    if content is not None:
        target.write_bytes(content)
    cfg = _config(tmp_path, MAILGW_TLS__CERT=str(cert), MAILGW_TLS__KEY=str(key))
    with pytest.raises(ConfigError, match=message):
        server_ssl_context(cfg)


def test_key_not_matching_certificate(tmp_path):
    ca = trustme.CA()
    a, b = ca.issue_cert("a.example"), ca.issue_cert("b.example")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    a.cert_chain_pems[0].write_to_path(str(cert))
    b.private_key_pem.write_to_path(str(key))
    cfg = _config(tmp_path, MAILGW_TLS__CERT=str(cert), MAILGW_TLS__KEY=str(key))
    with pytest.raises(ConfigError, match="do not belong together"):
        server_ssl_context(cfg)


def test_half_made_directory_is_reported(tmp_path):
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "cert.pem").write_text("x")
    with pytest.raises(ConfigError, match="lacks"):
        ensure_self_signed(tmp_path / "tls", "localhost")


def test_concurrent_first_start_yields_one_pair(tmp_path):
    results: list[tuple[bytes, bytes]] = []

    def start() -> None:
        cert, key = ensure_self_signed(tmp_path / "tls", "localhost")
        results.append((cert.read_bytes(), key.read_bytes()))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(tmp_path / "tls/cert.pem"), str(tmp_path / "tls/key.pem"))


def test_handshake_with_strict_verification(tmp_path):
    server_ctx = server_ssl_context(_config(tmp_path))
    client = ssl.create_default_context(cafile=str(tmp_path / "var/tls/cert.pem"))
    client.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 clients do by default
    _handshake(server_ctx, client, "localhost")
