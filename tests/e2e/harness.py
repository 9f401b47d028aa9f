"""A real gateway on 127.0.0.1 for end-to-end tests, and a real SMTP sink as its next hop.

The gateway `Node` runs its own event loop in a background thread, so that tests can use blocking
clients (smtplib, swaks) as well as aiosmtplib. Everything binds to port 0 on loopback and stops
when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as AioSMTP
from aiosmtpd.smtp import Envelope, Session

from mailgw.config import Config, load
from mailgw.loops import new_event_loop
from mailgw.server import Listener, Node
from mailgw.store.db import make_engine, upgrade

PASSWORD = "Mat-khau-rat-dai-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    """An SMTP next hop that stores what it gets and answers with the code it is told."""

    reply: str = "250 2.0.0 Ok"
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: AioSMTP, session: Session, envelope: Envelope) -> str:
        if self.reply.startswith("250"):
            with self.lock:
                self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos),
                                      bytes(envelope.original_content or b"")))
        return self.reply

    def wait_for(self, count: int, timeout: float = 15.0) -> list[tuple[str, list[str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"sink got {len(self.messages)} messages, expected {count}")


@contextlib.contextmanager
def running_sink(port: int = 0) -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = port or free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def make_config(tmp: Path, db_url: str, sink_port: int, **extra: str) -> Config:
    env = {
        "MAILGW_GATEWAY__DATA_DIR": f'"{tmp / "var"}"',
        "MAILGW_GATEWAY__HOSTNAME": '"gw.test.phutho.gov.vn"',
        "MAILGW_GATEWAY__MIN_FREE_DISK_MB": "0",
        "MAILGW_STORE__URL": f'"{db_url}"',
        "MAILGW_STORE__SQLITE_SYNCHRONOUS": '"NORMAL"',
        "MAILGW_SUBMISSION__LISTEN": '["127.0.0.1:0"]',
        "MAILGW_SUBMISSION__LISTEN_TLS": '["127.0.0.1:0"]',
        "MAILGW_MX__LISTEN": '["127.0.0.1:0"]',
        "MAILGW_SUBMISSION__AUTH_DELAY_BASE": "0.05",
        "MAILGW_DELIVERY__DEFAULT": f'"smtp:[127.0.0.1]:{sink_port}"',
        "MAILGW_DELIVERY__RETRY_INITIAL": "0.3",
        "MAILGW_DELIVERY__RETRY_MAX": "1.0",
        "MAILGW_DELIVERY__CONNECT_TIMEOUT": "2.0",
    }
    env.update(extra)
    return load(None, environ=env)


class Gateway:
    """A started Node plus what tests need to talk to it."""

    def __init__(self, config: Config) -> None:
        from mailgw.server import bind_listeners

        self.config = config
        self.engine = make_engine(config.store_url, config.store.sqlite_synchronous)
        upgrade(self.engine)
        self.listeners: list[Listener] = bind_listeners(config)
        # The loop the gateway's processes run on (gateway.event_loop), as in production.
        self.loop = new_event_loop(config.gateway.event_loop)
        self.node: Node | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._port("submission")

    @property
    def tls_port(self) -> int:
        return self._port("submission_tls")

    @property
    def mx_port(self) -> int:
        return self._port("mx")

    def _port(self, kind: str) -> int:
        return next(int(x.sock.getsockname()[1]) for x in self.listeners if x.kind == kind)

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> Gateway:
        self.thread.start()

        async def _start() -> None:
            self.node = Node(self.config, self.engine)
            await self.node.start(self.listeners)

        self.run(_start())
        return self

    def stop(self) -> None:
        if self.node is not None:
            self.run(self.node.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        for listener in self.listeners:
            listener.sock.close()

    def client_tls(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the gateway's self-signed test certificate
        return ctx


def parse(raw: bytes) -> Any:
    return message_from_bytes(raw)
