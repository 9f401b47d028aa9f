"""Inbound-check test kit: the delivery tests' DNS server (tests/delivery/dnsserver.py) run in a
thread of its own, so that the synchronous checks can query it on 127.0.0.1; a DKIM test key
whose public half the zone serves; message builders."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailgw.inbound import make_resolver
from tests.delivery.dnsserver import ZoneServer

AUTHSERV = "mx.phutho.gov.vn"
INTERNAL = ["phutho.gov.vn"]


def txt(text: str) -> str:
    """A TXT record in zone-file form, cut into 255-character strings."""
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace('"', '\\"') + '"' for c in chunks)


class Zone:
    """A ZoneServer in a background event loop; `resolver()` is dnspython pointed at it."""

    def __init__(self, records: dict[tuple[str, str], list[str]],
                 servfail: set[str] | None = None, silent: set[str] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        server = ZoneServer(records, servfail=servfail, silent=silent)
        self.server = asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(5)

    @property
    def queries(self) -> list[tuple[str, str]]:
        return self.server.queries

    def resolver(self, timeout: float = 2.0) -> Any:
        return make_resolver(timeout, nameservers=["127.0.0.1"], port=self.server.port)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def zone_factory() -> Iterator[Any]:
    zones: list[Zone] = []

    def make(records: dict[tuple[str, str], list[str]], **kw: Any) -> Zone:
        zones.append(Zone(records, **kw))
        return zones[-1]

    yield make
    for z in zones:
        z.close()


class Key:
    """An RSA-2048 DKIM key: the PEM private half and the DNS record of the public half."""

    def __init__(self) -> None:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem = private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption())
        der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        self.record = txt("v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())

    def sign(self, raw: bytes, domain: str, selector: str = "sel") -> bytes:
        sig = dkim.sign(raw, selector.encode(), domain.encode(), self.pem,
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        return sig + raw


@pytest.fixture(scope="session")
def key() -> Key:
    return Key()


@pytest.fixture(scope="session")
def other_key() -> Key:
    return Key()


def message(from_: str = "Nguoi gui <a@example.com>", subject: str = "Hop",
            body: str = "Noi dung.\r\n", extra: str = "") -> bytes:
    return (f"{extra}From: {from_}\r\nTo: <b@phutho.gov.vn>\r\nSubject: {subject}\r\n"
            f"Date: Thu, 26 Nov 2026 10:00:00 +0700\r\nMessage-ID: <1@example.com>\r\n"
            f"\r\n{body}").encode()
