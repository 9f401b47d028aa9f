"""End to end through the submission listener: real clients, a real gateway, a real sink."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import text

from mailgw.smtp import replies
from mailgw.store.db import session_factory
from mailgw.users import add_user
from tests.e2e.harness import PASSWORD, Gateway, make_config, parse, running_sink

pytestmark = pytest.mark.timeout(90)

USER = "nguyenvana.stc@phutho.gov.vn"
ALIAS = "vanthu.stc@phutho.gov.vn"
OTHER = "chutich@phutho.gov.vn"


def message(sender: str = USER, to: str = "doitac@example.org", attach: bool = True,
            body: str = "Kính gửi anh chị,\nXin gửi báo cáo tháng 11.\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Nguyễn Văn A <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Báo cáo tháng 11"
    msg.set_content(body)
    if attach:
        msg.add_attachment(b"%PDF-1.4\n" + bytes(range(256)) * 40, maintype="application",
                           subtype="pdf", filename="bao-cao-thang-11.pdf")
    return msg


@pytest.fixture
def sink():
    with running_sink() as (s, port):
        yield s, port


def start_gateway(tmp_path: Path, db_url: str, sink_port: int, **extra: str) -> Gateway:
    config = make_config(tmp_path, db_url, sink_port, **extra)
    gw = Gateway(config)
    with session_factory(gw.engine).begin() as session:
        add_user(session, USER, PASSWORD, display_name="Nguyễn Văn A", aliases=[ALIAS])
        add_user(session, OTHER, PASSWORD + "x", display_name="Chủ tịch")
    return gw.start()


@pytest.fixture
def gateway(tmp_path, sink):
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", sink[1])
    yield gw
    gw.stop()


def login(gw: Gateway, user: str = USER, password: str = PASSWORD) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
    client.ehlo("client.test")
    client.starttls(context=gw.client_tls())
    client.ehlo("client.test")
    client.login(user, password)
    return client


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_starttls_auth_send_with_attachment_arrives_at_next_hop(tmp_path, sink, db_url,
                                                                event_loop) -> None:
    sink_state, sink_port = sink
    gw = start_gateway(tmp_path, db_url, sink_port,
                       MAILGW_GATEWAY__EVENT_LOOP=f'"{event_loop}"')
    try:
        # gateway.event_loop chose the loop the gateway runs on.
        assert type(gw.loop).__module__.startswith(event_loop)
        client = login(gw)
        reply = client.send_message(message(), from_addr=USER,
                                    to_addrs=["doitac@example.org", "bcc@example.net"])
        assert reply == {}
        code, _ = client.noop()
        assert code == 250
        client.quit()
        got = sink_state.wait_for(1)
        mail_from, rcpts, raw = got[0]
        assert mail_from == USER and sorted(rcpts) == ["bcc@example.net", "doitac@example.org"]
        delivered = parse(raw)
        assert delivered["Received"] and "gw.test.phutho.gov.vn" in delivered["Received"]
        assert delivered["Message-ID"]  # added by the gateway as an MSA
        attachment = next(p for p in delivered.walk() if p.get_filename())
        assert attachment.get_payload(decode=True) == b"%PDF-1.4\n" + bytes(range(256)) * 40
    finally:
        gw.stop()


def test_reply_names_the_queue_id(gateway) -> None:
    client = login(gateway)
    client.mail(USER)
    client.rcpt("doitac@example.org")
    code, reply = client.data(message().as_bytes(policy=SMTP))
    client.quit()
    assert code == 250
    assert reply.decode().startswith("2.0.0 Ok: queued as ")


def test_implicit_tls_listener_authenticates_and_accepts(gateway, sink) -> None:
    client = smtplib.SMTP_SSL("127.0.0.1", gateway.tls_port, timeout=10,
                              context=gateway.client_tls())
    client.ehlo("client.test")
    assert "starttls" not in client.esmtp_features
    client.login(USER, PASSWORD)
    client.send_message(message(attach=False), from_addr=USER, to_addrs=["x@example.org"])
    client.quit()
    assert sink[0].wait_for(1)


def test_no_auth_before_tls_and_no_mail_without_auth(gateway) -> None:
    client = smtplib.SMTP("127.0.0.1", gateway.port, timeout=10)
    client.ehlo("client.test")
    assert "auth" not in client.esmtp_features
    assert "starttls" in client.esmtp_features
    assert "smtputf8" in client.esmtp_features and "8bitmime" in client.esmtp_features
    assert client.esmtp_features["size"] == str(35 * 1024 * 1024)
    code, reply = client.mail(USER)
    assert (code, reply[:5]) == (530, b"5.7.0")
    client.starttls(context=gateway.client_tls())
    client.ehlo("client.test")
    assert "PLAIN" in client.esmtp_features["auth"] and "LOGIN" in client.esmtp_features["auth"]
    code, reply = client.mail(USER)
    assert (code, reply[:5]) == (530, b"5.7.0")
    client.quit()


def _reply(text: str) -> tuple[int, bytes]:
    """A named reply as smtplib returns it: (code, the rest)."""
    return int(text[:3]), text[4:].encode()


def test_protocol_errors_get_the_gateways_wording(gateway) -> None:
    # aiosmtpd's own English-only texts for commands out of order, reworded by the edge.
    client = smtplib.SMTP("127.0.0.1", gateway.port, timeout=10)
    assert client.docmd("MAIL", f"FROM:<{USER}>") == _reply(
        replies.format_reply(replies.HELO_FIRST, helo="HELO"))
    client.quit()
    client = login(gateway)
    assert client.docmd("RCPT", "TO:<doitac@example.org>") == _reply(replies.NEED_MAIL)
    assert client.docmd("DATA") == _reply(replies.NEED_RCPT)
    assert client.docmd("MAIL", f"FROM:<{USER}> BODY=BINARYMIME") == _reply(
        replies.BAD_BODY_PARAM)
    assert client.docmd("MAIL", f"FROM:<{USER}> FOO=BAR") == _reply(
        replies.MAIL_PARAMS_UNKNOWN)
    assert client.docmd("MAIL", f"FROM:<{USER}>")[0] == 250
    assert client.docmd("MAIL", f"FROM:<{USER}>") == _reply(replies.NESTED_MAIL)
    assert client.docmd("RCPT", "TO:<doitac@example.org> FOO=BAR") == _reply(
        replies.RCPT_PARAMS_UNKNOWN)
    assert client.docmd("AUTH", "PLAIN") == _reply(replies.ALREADY_AUTHENTICATED)
    assert client.docmd("XCLIENT", "ADDR=203.0.113.5") == _reply(replies.COMMAND_UNKNOWN)
    # HELP lists and describes the commands from the connection's own command table.
    code, listing = client.docmd("HELP")
    assert code == 250 and {b"MAIL", b"RCPT", b"DATA", b"STARTTLS"} <= set(listing.split())
    assert client.docmd("HELP", "MAIL")[0] == 250
    client.quit()


@pytest.mark.parametrize("who,password", [(USER, "sai-mat-khau"), ("khongco@phutho.gov.vn",
                                                                    "sai-mat-khau")])
def test_bad_login_gets_535_with_the_same_text(gateway, who, password) -> None:
    client = smtplib.SMTP("127.0.0.1", gateway.port, timeout=10)
    client.ehlo("c")
    client.starttls(context=gateway.client_tls())
    client.ehlo("c")
    with pytest.raises(smtplib.SMTPAuthenticationError) as err:
        client.login(who, password)
    assert err.value.smtp_code == 535
    assert err.value.smtp_error == (b"5.7.8 Sai ten dang nhap hoac mat khau / "
                                    b"Authentication credentials invalid")
    client.close()


def test_failed_logins_slow_down_the_next_attempt(gateway) -> None:
    def attempt() -> float:
        client = smtplib.SMTP("127.0.0.1", gateway.port, timeout=30)
        client.ehlo("c")
        client.starttls(context=gateway.client_tls())
        client.ehlo("c")
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(USER, "sai")
        client.close()
        return time.monotonic() - started

    first = attempt()
    attempt()
    third = attempt()
    # base 0.05 s doubling: 0.05, 0.1, 0.2 -> the third waits at least the growth.
    assert third >= first + 0.08


def test_sender_must_be_owned_aliases_allowed(gateway, sink) -> None:
    client = login(gateway)
    code, reply = client.mail(OTHER)
    assert (code, reply[:5]) == (553, b"5.7.1")
    client.rset()
    code, _ = client.mail(ALIAS)
    assert code == 250
    client.rcpt("x@example.org")
    code, _ = client.data(message(sender=ALIAS, attach=False).as_bytes(policy=SMTP))
    assert code == 250
    client.quit()


def test_header_from_must_be_owned_and_single(gateway) -> None:
    client = login(gateway)
    forged = message(sender=OTHER, attach=False)
    client.mail(USER)
    client.rcpt("x@example.org")
    code, reply = client.data(forged.as_bytes(policy=SMTP))
    assert (code, reply[:5]) == (550, b"5.7.1")
    two_from = message(attach=False).as_bytes(policy=SMTP).replace(
        b"From: ", b"From: chutich@phutho.gov.vn\r\nFrom: ", 1)
    client.mail(USER)
    client.rcpt("x@example.org")
    code, reply = client.data(two_from)
    assert (code, reply[:5]) == (550, b"5.7.1")
    client.quit()


def test_size_limit_is_enforced(tmp_path, sink) -> None:
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", sink[1],
                       MAILGW_SUBMISSION__MAX_MESSAGE_SIZE="20000")
    try:
        client = login(gw)
        code, reply = client.mail(USER, ["SIZE=50000"])
        assert (code, reply.decode()) == (552, replies.MESSAGE_TOO_BIG[4:])
        client.rset()
        client.mail(USER)
        client.rcpt("x@example.org")
        big = message(body="x" * 60 + "\n" * 0 + ("dòng dài\n" * 3000)).as_bytes(policy=SMTP)
        code, _ = client.data(big)
        assert code == 552
        client.quit()
        assert sink[0].messages == []
    finally:
        gw.stop()


@pytest.mark.parametrize("rcpt,expect", [
    ("user%gmail.com@phutho.gov.vn", 553),
    ("gmail.com!user@phutho.gov.vn", 553),
    ("user@[203.0.113.5]", 553),
    ("user@example.org.", 553),
    ('"x@gmail.com"@phutho.gov.vn', 553),
    ("<@relay.example:user@example.org>", 553),
])
def test_relay_tricks_are_refused_even_when_authenticated(gateway, rcpt, expect) -> None:
    client = login(gateway)
    client.mail(USER)
    arg = rcpt if rcpt.startswith("<") else f"<{rcpt}>"
    code, _ = client.docmd(f"RCPT TO:{arg}")
    assert code in (expect, 501), f"{rcpt} got {code}"
    client.quit()


def test_unauthenticated_client_cannot_relay(gateway) -> None:
    client = smtplib.SMTP("127.0.0.1", gateway.port, timeout=10)
    client.ehlo("c")
    client.starttls(context=gateway.client_tls())
    client.ehlo("c")
    code, _ = client.docmd("MAIL FROM:<someone@gmail.com>")
    assert code == 530
    code, _ = client.docmd("RCPT TO:<victim@example.org>")
    assert code in (503, 530)
    client.quit()


def test_control_characters_in_arguments_get_501(gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"EHLO a\x00b\r\n")
        f.flush()
        assert f.readline().startswith(b"501 5.5.2")
        f.write(b"EHLO a\rMAIL FROM:<x@y>\r\n")
        f.flush()
        assert f.readline().startswith(b"501 5.5.2")


def _raw_session(gw: Gateway) -> tuple[ssl.SSLSocket, object]:
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    f = sock.makefile("rwb")
    f.readline()
    f.write(b"EHLO c\r\n")
    f.flush()
    while not f.readline().startswith(b"250 "):
        pass
    f.write(b"STARTTLS\r\n")
    f.flush()
    assert f.readline().startswith(b"220")
    tls = gw.client_tls().wrap_socket(sock)
    tf = tls.makefile("rwb")
    tf.write(b"EHLO c\r\n")
    tf.flush()
    while not tf.readline().startswith(b"250 "):
        pass
    import base64

    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    tf.write(f"AUTH PLAIN {token}\r\n".encode())
    tf.flush()
    assert tf.readline().startswith(b"235")
    return tls, tf


@pytest.mark.parametrize("ending", [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\n", b"\r\n.\r"])
def test_smuggling_with_bare_lf_or_cr_does_not_split_the_message(gateway, sink, ending) -> None:
    tls, f = _raw_session(gateway)
    header = (f"From: {USER}\r\nTo: a@example.org\r\nSubject: mot\r\n\r\nphan mot").encode()
    smuggled = (f"MAIL FROM:<{OTHER}>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
                f"From: {OTHER}\r\nSubject: gia mao\r\n\r\nthu gia\r\n").encode()
    f.write(f"MAIL FROM:<{USER}>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n".encode())
    f.flush()
    for _ in range(3):
        f.readline()
    f.write(header + ending + smuggled + b"\r\n.\r\n")
    f.flush()
    assert f.readline().startswith(b"250 2.0.0")
    f.write(b"QUIT\r\n")
    f.flush()
    tls.close()
    got = sink[0].wait_for(1)
    time.sleep(0.5)
    assert len(sink[0].messages) == 1, "the smuggled message must not become a second mail"
    mail_from, rcpts, raw = got[0]
    assert (mail_from, rcpts) == (USER, ["a@example.org"])
    assert b"gia mao" in raw  # it stayed inside the one message, as text
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")


def test_plaintext_pipelined_after_starttls_is_discarded(gateway) -> None:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    f = sock.makefile("rwb")
    f.readline()
    f.write(b"EHLO c\r\n")
    f.flush()
    while not f.readline().startswith(b"250 "):
        pass
    # The injected commands arrive in the same packet as STARTTLS, in plaintext.
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<" + USER.encode() + b">\r\n")
    assert f.readline().startswith(b"220")
    tls = gateway.client_tls().wrap_socket(sock)
    tf = tls.makefile("rwb")
    tf.write(b"NOOP\r\n")
    tf.flush()
    # Had the injected MAIL survived, we would see its reply (530) before NOOP's 250.
    assert tf.readline().startswith(b"250")
    tf.write(b"MAIL FROM:<" + USER.encode() + b">\r\n")
    tf.flush()
    assert tf.readline().startswith(b"503")  # a fresh session: EHLO first
    tls.close()


def test_command_budget_per_session(tmp_path, sink) -> None:
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", sink[1],
                       MAILGW_SUBMISSION__MAX_COMMANDS="12")
    try:
        client = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
        codes = [client.noop()[0] for _ in range(13)]
        assert codes == [250] * 12 + [421]
        client.close()
    finally:
        gw.stop()


def test_trusted_host_may_send_only_its_own_senders_without_auth(tmp_path, sink) -> None:
    hosts = ('[{name = "motcua", networks = ["127.0.0.1/32"], '
             'senders = ["motcua@phutho.gov.vn"]}]')
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", sink[1],
                       MAILGW_SUBMISSION__TRUSTED_HOSTS=hosts)
    try:
        client = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
        client.ehlo("portal")
        code, _ = client.mail(USER)
        assert code == 553
        client.rset()
        msg = message(sender="motcua@phutho.gov.vn", to="congdan@gmail.com", attach=False)
        client.send_message(msg, from_addr="motcua@phutho.gov.vn", to_addrs=["congdan@gmail.com"])
        client.quit()
        assert sink[0].wait_for(1)[0][0] == "motcua@phutho.gov.vn"
    finally:
        gw.stop()


def test_rate_limit_per_user(tmp_path, sink) -> None:
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", sink[1],
                       MAILGW_SUBMISSION__RATE_PER_USER="2")
    try:
        client = login(gw)
        codes = []
        for _ in range(3):
            codes.append(client.mail(USER)[0])
            client.rset()
        client.quit()
        assert codes == [250, 250, 450]
    finally:
        gw.stop()


def test_low_disk_space_gives_452_before_data(tmp_path, sink) -> None:
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", sink[1],
                       MAILGW_GATEWAY__MIN_FREE_DISK_MB="1000000000")
    try:
        client = login(gw)
        code, reply = client.mail(USER)
        assert (code, reply[:5]) == (452, b"4.3.1")
        client.quit()
    finally:
        gw.stop()


def test_store_failure_gives_451_and_nothing_is_acknowledged(gateway, sink) -> None:
    with gateway.engine.begin() as conn:
        conn.execute(text("DROP TABLE queue_entries"))
    client = login(gateway)
    client.mail(USER)
    client.rcpt("x@example.org")
    code, reply = client.data(message(attach=False).as_bytes(policy=SMTP))
    client.quit()
    assert (code, reply[:5]) == (451, b"4.3.0")
    assert b"ref " in reply and b"Traceback" not in reply


async def test_fifty_concurrent_clients(gateway, sink) -> None:
    async def one(i: int) -> str:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=gateway.port, timeout=30,
                                 tls_context=gateway.client_tls(), start_tls=True)
        await client.connect()
        await client.login(USER, PASSWORD)
        msg = message(attach=i % 2 == 0, body=f"Thư số {i}\n")
        _, reply = await client.send_message(msg, sender=USER, recipients=[f"r{i}@example.org"])
        await client.quit()
        return reply

    replies = await asyncio.gather(*(one(i) for i in range(50)))
    assert all(r.startswith("2.0.0 Ok: queued as") for r in replies)
    got = await asyncio.to_thread(sink[0].wait_for, 50, 30)
    assert sorted(r[1][0] for r in got) == sorted(f"r{i}@example.org" for i in range(50))


def test_connections_per_ip_are_limited(tmp_path, sink) -> None:
    gw = start_gateway(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", sink[1],
                       MAILGW_SUBMISSION__MAX_CONNECTIONS_PER_IP="2")
    try:
        first = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
        second = smtplib.SMTP("127.0.0.1", gw.port, timeout=10)
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as third:
            assert third.makefile("rb").readline().startswith(b"421 4.7.0")
        first.quit()
        # A slot is free again once a client leaves.
        deadline = time.monotonic() + 5
        while True:
            with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as again:
                if again.makefile("rb").readline().startswith(b"220"):
                    break
            assert time.monotonic() < deadline, "the freed slot was never given back"
            time.sleep(0.05)
        second.quit()
    finally:
        gw.stop()


@pytest.mark.skipif(shutil.which("swaks") is None,
                    reason="swaks is not installed (apt-get install swaks; .ci/run does)")
def test_swaks_starttls_auth_with_attachment(gateway, sink, tmp_path) -> None:
    attachment = tmp_path / "to-trinh.pdf"
    attachment.write_bytes(b"%PDF-1.4\n" + b"noi dung " * 500)
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{gateway.port}", "--tls",
         "--auth", "LOGIN", "--auth-user", USER, "--auth-password", PASSWORD,
         "--from", USER, "--to", "doitac@example.org", "--header", "Subject: Thu tu swaks",
         "--attach", f"@{attachment}", "--timeout", "20"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Ok: queued as" in result.stdout
    _, _, raw = sink[0].wait_for(1)[0]
    part = next(p for p in parse(raw).walk() if p.get_filename() == "to-trinh.pdf")
    assert part.get_payload(decode=True) == attachment.read_bytes()


def test_lines_longer_than_998_characters_are_refused(gateway, sink) -> None:
    client = login(gateway)
    head = f"From: {USER}\r\nTo: x@example.org\r\nSubject: dong dai\r\n\r\n".encode()
    client.mail(USER)
    client.rcpt("x@example.org")
    assert client.data(head + b"a" * 998 + b"\r\n")[0] == 250
    client.mail(USER)
    client.rcpt("x@example.org")
    assert client.data(head + b"a" * 999 + b"\r\n")[0] == 500
    client.quit()
    assert len(sink[0].wait_for(1)) == 1


def test_client_cannot_forge_the_gateways_own_header_fields(gateway, sink) -> None:
    client = login(gateway)
    forged = message(attach=False).as_bytes(policy=SMTP).replace(
        b"From: ", b"X-Mailgw-Policy: allow\r\nx-mailgw-warning: none\r\nFrom: ", 1)
    client.sendmail(USER, ["x@example.org"], forged)
    client.quit()
    _, _, raw = sink[0].wait_for(1)[0]
    assert b"x-mailgw-" not in raw.lower()


def test_big_messages_are_classified_in_a_worker_process(gateway, sink) -> None:
    # Over LARGE_MESSAGE_BYTES the policy runs in a worker process (mailgw.pipeline.offload):
    # the verdicts are the gateway's as ever, a secret marking is refused, the rest delivered.
    from mailgw.pipeline.mail import LARGE_MESSAGE_BYTES

    # Lines that start with a dot too: dot-stuffed on the way in and on the way out.
    padding = "Nội dung báo cáo chi tiết của đơn vị.\n.dòng bắt đầu bằng dấu chấm\n" * (
        LARGE_MESSAGE_BYTES // 60)
    client = login(gateway)
    ok = message(body=padding).as_bytes(policy=SMTP)
    assert len(ok) > LARGE_MESSAGE_BYTES
    assert client.sendmail(USER, ["doitac@example.org"], ok) == {}
    secret = message(body="TỐI MẬT\n" + padding).as_bytes(policy=SMTP)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(USER, ["doitac@example.org"], secret)
    assert refused.value.smtp_code == 550
    client.quit()
    # The refusal also sends notices (to the sender, via the same next hop): look for the
    # message to the partner, which is the big one, and only one.
    deadline = time.monotonic() + 15
    while True:
        to_partner = [raw for _, rcpts, raw in sink[0].wait_for(1)
                      if rcpts == ["doitac@example.org"]]
        if to_partner or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(to_partner) == 1 and len(to_partner[0]) > LARGE_MESSAGE_BYTES
    # Byte for byte what was sent, after the header fields the gateway adds on top.
    assert to_partner[0].endswith(ok)
    # Signed, and by the same worker processes (the gateway hands them to its delivery).
    assert to_partner[0].startswith(b"DKIM-Signature:")
    node = gateway.node
    assert dict(node.delivery.stages)["transform"].keywords["processes"] is node.pipeline.offload
