"""End to end through the MX listener: mail from the internet for internal domains only."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from tests.e2e.harness import Gateway, make_config, running_sink

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def gateway(tmp_path):
    with running_sink() as (sink, port):
        config = make_config(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", 1,
                             MAILGW_DELIVERY__ROUTES=f'{{"phutho.gov.vn" = '
                                                     f'"smtp:[127.0.0.1]:{port}"}}')
        gw = Gateway(config).start()
        try:
            yield gw, sink
        finally:
            gw.stop()


def inbound(to: str = "vanthu@phutho.gov.vn", sender: str = "doitac@example.org") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Công văn đến"
    msg.set_content("Kính gửi Văn phòng UBND tỉnh.\n")
    return msg.as_bytes(policy=SMTP)


def test_mx_offers_starttls_but_no_auth(gateway) -> None:
    gw, _ = gateway
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=10) as c:
        c.ehlo("mx.example.org")
        assert "starttls" in c.esmtp_features
        assert "auth" not in c.esmtp_features
        c.starttls(context=gw.client_tls())
        c.ehlo("mx.example.org")
        assert "auth" not in c.esmtp_features


def test_mx_accepts_internal_domains_and_subdomains_and_delivers_by_route(gateway) -> None:
    gw, sink = gateway
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=10) as c:
        c.sendmail("doitac@example.org",
                   ["vanthu@phutho.gov.vn", "ubnd@LamThao.Phutho.gov.vn"], inbound())
    mail_from, rcpts, raw = sink.wait_for(1)[0]
    assert mail_from == "doitac@example.org"
    assert sorted(rcpts) == ["ubnd@lamthao.phutho.gov.vn", "vanthu@phutho.gov.vn"]
    assert b"with ESMTP id" in raw  # our Received line: no TLS, no AUTH


@pytest.mark.parametrize("rcpt", ["victim@example.org", "x@xphutho.gov.vn",
                                  "x@phutho.gov.vn.evil.com", "x%example.org@phutho.gov.vn"])
def test_mx_never_relays(gateway, rcpt) -> None:
    gw, sink = gateway
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=10) as c:
        c.ehlo("mx.example.org")
        c.mail("spammer@example.net")
        code, reply = c.rcpt(rcpt)
    assert code in (550, 553)
    if code == 550:
        assert reply.startswith(b"5.7.1")
    assert sink.messages == []


def test_mx_accepts_the_null_sender_of_a_bounce(gateway) -> None:
    gw, sink = gateway
    with smtplib.SMTP("127.0.0.1", gw.mx_port, timeout=10) as c:
        c.ehlo("mx.example.org")
        assert c.docmd("MAIL FROM:<>")[0] == 250
        assert c.rcpt("vanthu@phutho.gov.vn")[0] == 250
        code, _ = c.data(inbound(sender="MAILER-DAEMON@example.org"))
        assert code == 250
    mail_from, _, _ = sink.wait_for(1)[0]
    assert mail_from == "<>"  # aiosmtpd's spelling of the null sender the gateway relayed
