"""Enforcement end to end: real SMTP clients, a real gateway with the shipped policy, a real sink.

Each action: the reply (code, text, reference), delivery or not, the X-Mailgw-Policy header on the
internal copy only, the violation row, the notices arriving; quarantine release delivering; a
timeout and a failing store during classification giving 451; a bad policy stopping the node.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from sqlalchemy import select, text

from mailgw.config import ConfigError
from mailgw.store.db import session_factory
from mailgw.store.models import Message, QueueEntry, Violation
from mailgw.violations import quarantine, register
from tests.e2e.harness import Gateway, make_config
from tests.enforcement.gateway import (
    GLOBAL_ADMIN,
    HEAD,
    UNIT_ADMIN,
    USER,
    enforcing_gateway,
    send,
    split_sink,
)
from tests.policies.docgen import make_docx, make_zip, set_zip_encrypted

pytestmark = pytest.mark.timeout(120)

OFFICIAL = ["UBND TỈNH PHÚ THỌ", "SỞ TÀI CHÍNH", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "Độc lập - Tự do - Hạnh phúc", "Số: 2156/STC-QLNS",
            "Phú Thọ, ngày 14 tháng 10 năm 2026", "V/v hướng dẫn lập dự toán ngân sách năm 2027",
            "Nơi nhận:", "- Như trên;", "KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC", "Nguyễn Văn B"]
REF = re.compile(r"\(ref (V-\d{4}-\d{6})\)")


def mail(subject: str, attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
         body: str = "Kính gửi anh chị,\nXin gửi tài liệu.\n", to: str = "x@gmail.com") -> bytes:
    msg = EmailMessage(policy=default_policy)
    msg["From"] = f"Nguyễn Văn A <{USER}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash(subject))}@client.test>"
    msg.set_content(body)
    for name, ctype, data in attachments:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes(policy=default_policy.clone(linesep="\r\n"))


def locked_archive() -> bytes:
    """An encrypted zip without document-type names: only the fail-closed rule 6 matches
    (a .zip name or a .docx member would make it a document attachment, rule 4: flag)."""
    return set_zip_encrypted(make_zip({"anh.jpg": b"\xff\xd8\xff\xe0" + b"x" * 300}))


def violations(gw: Gateway) -> list[Violation]:
    with session_factory(gw.engine)() as s:
        return list(s.scalars(select(Violation).order_by(Violation.seq)))


def wait_until(cond, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_reject_official_document_to_webmail(tmp_path, db_url) -> None:
    with enforcing_gateway(tmp_path, db_url) as (gw, sink):
        raw = mail("Dự toán 2027", [("du-toan.docx", "application/vnd.openxmlformats-"
                                     "officedocument.wordprocessingml.document",
                                     make_docx(OFFICIAL))])
        code, reply = send(gw, raw, USER, ["nguoinhan@gmail.com", "ketoan@stc.phutho.gov.vn"])
        assert code == 550, reply
        assert reply.startswith("5.7.1 Khong gui van ban cong vu toi hop thu mien phi / "
                                "Official documents may not be sent to free webmail (ref V-")
        ref = REF.search(reply).group(1)  # type: ignore[union-attr]
        [v] = violations(gw)
        assert (v.reference, v.action, v.reasons, v.unit, v.sender, v.auth_user) == (
            ref, "reject", ["official_document_to_webmail"], "stc", USER, USER)
        assert v.recipients == ["nguoinhan@gmail.com", "ketoan@stc.phutho.gov.vn"]
        assert any(e["signal"] == "document_number" for e in v.evidence)
        # The rule notifies sender, unit head and admins (unit's and global): 4 notices.
        wait_until(lambda: len(split_sink(sink)[1]) >= 4)
        time.sleep(0.5)
        delivered, notices = split_sink(sink)
        assert delivered == []  # the message itself went nowhere
        to = sorted(r[0] for _, r, _ in notices)
        assert to == sorted([USER, HEAD, UNIT_ADMIN, GLOBAL_ADMIN])
        for mail_from, _, n in notices:
            assert mail_from in ("", "<>")  # null sender: a failed notice bounces to nobody
            assert ref in str(n["Subject"])
        sender_notice = next(n for _, r, n in notices if r == [USER])
        body = sender_notice.get_payload(decode=True).decode("utf-8")
        assert ref in body and "hộp thư công vụ" in body and "Hệ thống quản lý văn bản" in body
        assert "Số: 2156/STC-QLNS" in body and "English" in body
        with session_factory(gw.engine)() as s:
            assert s.scalar(select(Message).where(Message.queue_id == v.queue_id)) is None
            assert register.verify(s).ok


def test_flag_delivers_with_header_for_internal_recipients_only(tmp_path, db_url) -> None:
    with enforcing_gateway(tmp_path, db_url) as (gw, sink):
        raw = mail("Bảng số liệu", [("so-lieu.pdf", "application/pdf",
                                      b"%PDF-1.4\n" + bytes(range(256)) * 20)])
        internal, external = "ketoan@stc.phutho.gov.vn", "doitac@gmail.com"
        code, reply = send(gw, raw, USER, [external, internal])
        assert code == 250 and reply.startswith("2.0.0 Ok: queued as"), reply
        [v] = violations(gw)
        assert (v.action, v.reasons) == ("flag", ["webmail_attachment"])
        wait_until(lambda: len(split_sink(sink)[0]) >= 2)
        delivered, _ = split_sink(sink)
        by_rcpt = {tuple(r): m for _, r, m in delivered}
        assert set(by_rcpt) == {(external,), (internal,)}
        assert by_rcpt[(external,)]["X-Mailgw-Policy"] is None
        header = by_rcpt[(internal,)]["X-Mailgw-Policy"]
        assert header == f"flag; reason=webmail_attachment; rule=webmail-attachment; " \
                         f"ref={v.reference}"
        # Rule 4 notifies admins; a flag always tells an internal sender.
        wait_until(lambda: len(split_sink(sink)[1]) >= 3)
        notices = split_sink(sink)[1]
        assert sorted(r[0] for _, r, _ in notices) == sorted([USER, UNIT_ADMIN, GLOBAL_ADMIN])


def test_a_large_flagged_message_is_spooled_and_its_internal_copy_has_the_header(
        tmp_path, db_url) -> None:
    # Over 1 MiB and flagged: on SQLite its bytes go to the spool (not through the database
    # lock); the copy for the internal recipient carries the header and its own bytes.
    import os

    from mailgw.store.spool import content_of, for_engine

    pdf = b"%PDF-1.4\n" + os.urandom(1_300_000)
    with enforcing_gateway(tmp_path, db_url) as (gw, sink):
        raw = mail("Ban scan ho so", [("ho-so-scan.pdf", "application/pdf", pdf)])
        internal, external = "ketoan@stc.phutho.gov.vn", "doitac@gmail.com"
        code, reply = send(gw, raw, USER, [external, internal])
        assert code == 250, reply
        [v] = violations(gw)
        assert (v.action, v.reasons) == ("flag", ["webmail_attachment"])
        wait_until(lambda: len(split_sink(sink)[0]) >= 2)
        delivered, _ = split_sink(sink)
        by_rcpt = {tuple(r): m for _, r, m in delivered}
        assert by_rcpt[(external,)]["X-Mailgw-Policy"] is None
        assert by_rcpt[(internal,)]["X-Mailgw-Policy"].endswith(f"ref={v.reference}")
        for m in by_rcpt.values():
            [part] = [p for p in m.iter_attachments()]
            assert part.get_payload(decode=True) == pdf
        with session_factory(gw.engine)() as s:
            rows = {m.queue_id: m for m in s.scalars(
                select(Message).where(Message.queue_id.startswith(v.queue_id)))}
        original, copy = rows[v.queue_id], rows[f"{v.queue_id}-int"]
        sp = for_engine(gw.engine)
        assert copy.spool is None and content_of(copy, sp).startswith(b"X-Mailgw-Policy: flag")
        if db_url.startswith("sqlite"):
            assert original.spool is not None and original.content == b""
        else:
            assert original.spool is None and len(original.content) > 1_300_000


def test_allow_delivers_and_records_nothing(tmp_path, db_url) -> None:
    with enforcing_gateway(tmp_path, db_url) as (gw, sink):
        raw = mail("Báo cáo", [("bao-cao.pdf", "application/pdf", b"%PDF-1.4\n" + b"x" * 500)],
                   to="doitac@vnpt.vn")
        code, _ = send(gw, raw, USER, ["doitac@vnpt.vn"])
        assert code == 250
        wait_until(lambda: split_sink(sink)[0])
        assert violations(gw) == []
        [(_, rcpts, m)] = split_sink(sink)[0]
        assert rcpts == ["doitac@vnpt.vn"] and m["X-Mailgw-Policy"] is None


def test_quarantine_holds_then_release_delivers(tmp_path, db_url) -> None:
    with enforcing_gateway(tmp_path, db_url) as (gw, sink):
        raw = mail("Hồ sơ", [("ho-so.dat", "application/octet-stream", locked_archive())])
        code, reply = send(gw, raw, USER, ["canhan@yahoo.com"])
        assert code == 250, reply
        queue_id = reply.rsplit(" ", 1)[1]
        [v] = violations(gw)
        assert (v.action, v.reasons, v.queue_id) == (
            "quarantine", ["unreadable_to_webmail"], queue_id)
        # Sender and admins are told; the message itself waits.
        wait_until(lambda: len(split_sink(sink)[1]) >= 3)
        time.sleep(1.5)  # more than a delivery poll
        assert split_sink(sink)[0] == []
        with session_factory(gw.engine).begin() as s:
            [held] = quarantine.list_held(s)
            assert held["reference"] == v.reference and "encrypted" in held["evidence_summary"]
            shown = quarantine.show(s, v.reference)
            assert ["Subject", "Hồ sơ"] in shown["headers"]
            with pytest.raises(quarantine.QuarantineError):
                quarantine.release(s, queue_id, "tester", "  ")
            decision = quarantine.release(s, queue_id, "tester",
                                          "Người nhận đã xác nhận, mật khẩu gửi riêng")
        gw.node.delivery.wake()  # type: ignore[union-attr]
        [(_, rcpts, m)] = wait_until(lambda: split_sink(sink)[0])
        assert rcpts == ["canhan@yahoo.com"] and str(m["Subject"]) == "Hồ sơ"
        records = violations(gw)
        assert [(r.kind, r.refers_to, r.actor) for r in records] == [
            ("violation", None, ""), ("quarantine_release", v.reference, "tester")]
        assert records[1].reference == decision
        with session_factory(gw.engine)() as s:
            assert register.verify(s).ok
            with pytest.raises(quarantine.QuarantineError):
                quarantine.delete(s, queue_id, "tester", "again")


def test_quarantine_delete_is_recorded_and_never_delivers(tmp_path, db_url) -> None:
    with enforcing_gateway(tmp_path, db_url) as (gw, sink):
        code, reply = send(gw, mail("A", [("a.dat", "application/octet-stream",
                                            locked_archive())]), USER,
                           ["b@gmail.com"])
        assert code == 250
        queue_id = reply.rsplit(" ", 1)[1]
        with session_factory(gw.engine).begin() as s:
            quarantine.delete(s, queue_id, "tester", "Gửi nhầm")
        gw.node.delivery.wake()  # type: ignore[union-attr]
        time.sleep(1.5)
        assert split_sink(sink)[0] == []
        # Not only "not yet": nothing is left that a worker could ever deliver.
        with session_factory(gw.engine)() as s:
            statuses = {e.status for e in s.scalars(
                select(QueueEntry).join(Message).where(Message.queue_id == queue_id))}
        assert statuses == {"deleted"}
        assert [r.kind for r in violations(gw)] == ["violation", "quarantine_delete"]


def test_secret_marking_between_internal_addresses_is_rejected(tmp_path, db_url) -> None:
    with enforcing_gateway(tmp_path, db_url) as (gw, sink):
        raw = mail("Kế hoạch", [("kh.docx", "application/vnd.openxmlformats-officedocument."
                                 "wordprocessingml.document", make_docx(["MẬT", "Kế hoạch"]))],
                   to="giamdoc.stc@phutho.gov.vn")
        code, reply = send(gw, raw, USER, ["giamdoc.stc@phutho.gov.vn"])
        assert code == 550 and "Khong gui tai lieu mat qua thu dien tu" in reply
        assert violations(gw)[0].reasons == ["secret_marking"]
        # The notices quote the marking, yet arrive: they never pass the policy themselves.
        notices = wait_until(lambda: (n := split_sink(sink)[1]) and len(n) >= 4 and n)
        assert sorted(r[0] for _, r, _ in notices) == sorted(
            [USER, HEAD, UNIT_ADMIN, GLOBAL_ADMIN])
        body = next(m for _, r, m in notices if r == [USER]).get_content()
        assert "dấu chỉ độ mật (tệp đính kèm kh.docx): MẬT" in body
        assert split_sink(sink)[0] == [] and len(violations(gw)) == 1


def test_two_nodes_rejecting_at_once_keep_one_chain(tmp_path, db_url) -> None:
    # Two gateway nodes (own event loop, engine, store writer each) share one store.
    raw = mail("Dự toán", [("dt.docx", "application/vnd.openxmlformats-officedocument."
                            "wordprocessingml.document", make_docx(OFFICIAL))])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with enforcing_gateway(tmp_path / "a", db_url) as (gw1, _), \
            enforcing_gateway(tmp_path / "b", db_url, setup=False) as (gw2, _):
        def burst(gw: Gateway) -> list[str]:
            return [send(gw, raw, USER, ["x@gmail.com"])[1] for _ in range(8)]

        with ThreadPoolExecutor(4) as pool:
            replies = [r for f in [pool.submit(burst, g) for g in (gw1, gw2, gw1, gw2)]
                       for r in f.result()]
        refs = [REF.search(r).group(1) for r in replies]  # type: ignore[union-attr]
        assert len(set(refs)) == 32
        with session_factory(gw1.engine)() as s:
            result = register.verify(s)
        assert result.ok and result.records == 32, result.broken


def test_classification_timeout_gives_451(tmp_path, db_url) -> None:
    # A real 4 MB text attachment takes far longer than 5 ms to extract on any machine.
    big = ("Dòng số liệu thống kê của đơn vị, không có gì đặc biệt.\n" * 80000).encode()
    with enforcing_gateway(tmp_path, db_url, MAILGW_POLICY__TIMEOUT="0.005") as (gw, sink):
        code, reply = send(gw, mail("Số liệu", [("so-lieu.txt", "text/plain", big)]), USER,
                           ["doitac@gmail.com"])
        assert code == 451 and reply.startswith("4.3.0 "), reply
        assert "timed out" in reply
        time.sleep(1.0)
        assert sink.messages == [] and violations(gw) == []


def test_store_failure_during_classification_gives_451(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    # directory.refresh 0: the classify stage reads the store for every message.
    with enforcing_gateway(tmp_path, url, MAILGW_DIRECTORY__REFRESH="0") as (gw, sink):
        # The directory look-up of the classify stage meets a broken store.
        with gw.engine.begin() as conn:
            conn.execute(text("DROP TABLE directory_users"))
        code, reply = send(gw, mail("Hello", to="doitac@vnpt.vn"), USER, ["doitac@vnpt.vn"])
        assert code == 451 and reply.startswith("4.3.0 "), reply
        time.sleep(1.0)
        assert sink.messages == []


def test_bad_policy_stops_the_node_with_file_and_line(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\nname = "x"\n\n[[rule]]\nid = "a"\naction = "block"\n',
                   encoding="utf-8")
    from mailgw.pipeline.runner import load_configured_policy

    config = make_config(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}", 1,
                         MAILGW_POLICY__FILES=f'["{bad}"]')
    with pytest.raises(ConfigError, match=r"bad.toml:6"):
        load_configured_policy(config)
    with pytest.raises(ConfigError, match=r"bad.toml:6"):
        Gateway(config).start()
