"""A real gateway with the shipped policy and the example directory, a real sink behind it,
and helpers to send through the submission listener with smtplib."""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path

from mailgw.directory import import_csv
from mailgw.store.db import session_factory
from mailgw.users import add_user
from tests.e2e.harness import PASSWORD, Gateway, Sink, make_config, running_sink

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY_CSV = ROOT / "config" / "directory.example.csv"
USER = "nguyenvana.stc@phutho.gov.vn"         # Sở Tài chính in the example directory
HEAD = "giamdoc.stc@phutho.gov.vn"
UNIT_ADMIN = "it.stc@phutho.gov.vn"
GLOBAL_ADMIN = "antoan.thongtin@phutho.gov.vn"


@contextlib.contextmanager
def enforcing_gateway(tmp_path: Path, db_url: str, aliases: list[str] = (),  # type: ignore[assignment]
                      setup: bool = True, **extra: str) -> Iterator[tuple[Gateway, Sink]]:
    """`setup=False`: the store already has the user and the directory (a second node)."""
    with running_sink() as (sink, port):
        env = {"MAILGW_NOTICES__ADMINS": f'["{GLOBAL_ADMIN}"]'}
        env.update(extra)
        gw = Gateway(make_config(tmp_path, db_url, port, **env))
        if setup:
            with session_factory(gw.engine).begin() as s:
                add_user(s, USER, PASSWORD, display_name="Nguyễn Văn A", aliases=list(aliases))
                import_csv(s, DIRECTORY_CSV)
        gw.start()
        try:
            yield gw, sink
        finally:
            gw.stop()


def send(gw: Gateway, raw: bytes, mail_from: str, rcpts: list[str]) -> tuple[int, str]:
    """Submit with STARTTLS and AUTH; the reply to DATA (code, text)."""
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as c:
        c.ehlo("client.test")
        c.starttls(context=gw.client_tls())
        c.ehlo("client.test")
        c.login(USER, PASSWORD)
        code, msg = c.mail(mail_from)
        if code != 250:
            return code, f"MAIL: {msg.decode()}"
        for r in rcpts:
            code, msg = c.rcpt(r)
            if code != 250:
                return code, f"RCPT {r}: {msg.decode()}"
        code, msg = c.data(raw)
        return code, msg.decode()


def split_sink(sink: Sink) -> tuple[list[tuple[str, list[str], Message]],
                                     list[tuple[str, list[str], Message]]]:
    """(messages, notices) the sink holds; notices carry X-Mailgw-Notice."""
    with sink.lock:
        got = [(f, r, message_from_bytes(b, policy=default_policy))
               for f, r, b in sink.messages]
    notices = [g for g in got if g[2]["X-Mailgw-Notice"]]
    return [g for g in got if not g[2]["X-Mailgw-Notice"]], notices
