"""Delivery test kit: a real SMTP sink on 127.0.0.1 that answers what it is told, test configs,
queue rows written with `enqueue_rows`, and a bounded wait on store state."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailgw.config import Config, load
from mailgw.queue.enqueue import enqueue_rows
from mailgw.store.db import session_factory
from mailgw.store.models import Message, QueueEntry

SENDER = "chuyenvien@phutho.gov.vn"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class SinkHandler:
    """Answers RCPT per recipient (a reply, or a list of replies used in turn) and DATA."""

    rcpt_replies: dict[str, Any] = field(default_factory=dict)
    data_reply: str = "250 2.0.0 Ok: queued"
    received: list[Received] = field(default_factory=list)
    rcpt_seen: list[str] = field(default_factory=list)
    tls_seen: list[bool] = field(default_factory=list)  # per accepted DATA: was it over TLS?
    data_delay: float = 0.0
    rsets: int = 0  # RSET commands received

    def reply_for(self, address: str) -> str:
        r = self.rcpt_replies.get(address, "250 2.1.5 Ok")
        if isinstance(r, list):
            return r.pop(0) if len(r) > 1 else r[0]
        return str(r)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        self.rcpt_seen.append(address)
        reply = self.reply_for(address)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.rsets += 1
        return "250 2.0.0 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)  # a slow next hop
        if self.data_reply.startswith("250"):
            # aiosmtpd reports the null sender as "<>".
            mail_from = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
            self.tls_seen.append(session.ssl is not None)
            self.received.append(Received(mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content or b"")))
        return self.data_reply


class Sink:
    """An SMTP server on 127.0.0.1 (aiosmtpd) in the test's event loop; can go down and up."""

    def __init__(self, port: int = 0, tls_context: Any = None) -> None:
        self.handler = SinkHandler()
        self.port = port
        self.tls_context = tls_context
        self.server: asyncio.Server | None = None
        self.connections: list[SMTP] = []  # one per TCP connection accepted

    def _protocol(self) -> SMTP:
        proto = SMTP(self.handler, hostname="sink.test", tls_context=self.tls_context,
                     require_starttls=False, decode_data=False)
        self.connections.append(proto)
        return proto

    def drop_connections(self) -> None:
        """Close every open connection from the server side (as an idle timeout would)."""
        for proto in self.connections:
            if proto.transport is not None:
                proto.transport.close()

    async def start(self) -> Sink:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._protocol, "127.0.0.1", self.port,
                                               reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.drop_connections()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    @property
    def hop(self) -> str:
        return f"smtp:[127.0.0.1]:{self.port}"

    def copies_for(self, rcpt: str) -> int:
        return sum(r.rcpt_tos.count(rcpt) for r in self.handler.received)


def free_port() -> int:
    """A port nothing listens on (yet): connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def sink():
    s = await Sink().start()
    yield s
    await s.stop()


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml(k)} = {_toml(x)}" for k, x in v.items()) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_config(tmp_path: Path, *, dkim: bool = True, **delivery: Any) -> Config:
    """A Config read from a TOML file in tmp_path, with [delivery] keys as given.

    `dkim=False` turns signing off (the tests here are about getting mail through; signing has
    its own tests, which use this function with signing on).
    """
    lines = ["[gateway]", 'hostname = "gw.phutho.test"', f"data_dir = {_toml(str(tmp_path))}",
             "[dkim]", f"enabled = {_toml(dkim)}", "[delivery]"]
    # Short retries keep the tests fast; generous timeouts keep them steady on a loaded machine.
    keys = {"retry_initial": 0.2, "retry_max": 1.0, "connect_timeout": 5.0,
            "command_timeout": 10.0, "dns_timeout": 5.0, **delivery}
    lines += [f"{k} = {_toml(v)}" for k, v in keys.items()]
    path = tmp_path / "mailgw.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load(path, environ={})


def message_bytes(subject: str = "Test", body: str = "Noi dung thu.") -> bytes:
    return (f"From: <{SENDER}>\r\nTo: <x@example.org>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@phutho.gov.vn>\r\n\r\n{body}\r\n").encode()


def enqueue(engine, recipients: list[str], mail_from: str = SENDER,
            content: bytes | None = None, **fields: Any) -> str:
    """Commit one accepted message the way the listener does; return its queue id."""
    with session_factory(engine).begin() as s:
        m = enqueue_rows(s, mail_from, recipients, content or message_bytes(), "outbound",
                         **fields)
        s.flush()
        return m.queue_id


def entries(engine, queue_id: str) -> dict[str, QueueEntry]:
    from sqlalchemy import select

    with session_factory(engine)() as s:
        rows = s.scalars(select(QueueEntry).join(Message)
                         .where(Message.queue_id == queue_id)).all()
        return {e.recipient: e for e in rows}


def message(engine, queue_id: str) -> Message:
    from sqlalchemy import select

    with session_factory(engine)() as s:
        return s.scalars(select(Message).where(Message.queue_id == queue_id)).one()


def bounces(engine) -> list[Message]:
    from sqlalchemy import select

    with session_factory(engine)() as s:
        return list(s.scalars(select(Message).where(Message.mail_from == "")
                              .order_by(Message.id)).all())


async def wait_for(check: Callable[[], Any], timeout: float = 20.0,
                   what: str | Callable[[], Any] = "") -> Any:
    """Poll `check` (run in a thread, it reads the store) until it is truthy; fail after timeout.

    `what` names the awaited state, or is a callable whose result (the state seen) is reported.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            seen = await asyncio.to_thread(what) if callable(what) else (what or check)
            raise AssertionError(f"timed out after {timeout}s waiting for {seen}")
        await asyncio.sleep(0.05)


def plain_config(tmp_path: Path, **delivery: Any) -> Config:
    """make_config without DKIM signing."""
    return make_config(tmp_path, dkim=False, **delivery)
