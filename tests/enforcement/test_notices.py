"""Notices written by the enforcement hook into a real store: who gets one, what it says, the
template override, and that they are queued as local mail with the null sender."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

from sqlalchemy import select

from mailgw.config import load
from mailgw.directory import import_csv
from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.queue.enqueue import enqueue_rows
from mailgw.store.db import session_factory
from mailgw.store.models import Message
from mailgw.violations.enforce import Enforcement
from tests.enforcement.gateway import DIRECTORY_CSV

EVIDENCE = [{"part": "attachment qd.pdf", "signal": "document_number",
             "text": "Số: 2445/QĐ-UBND"}]


def enforce(engine, tmp_path, mail_from: str, rcpts: list[str], verdict: str, rule: str,
            notify: list[str], unit: str = "unknown", **extra_env: str) -> dict[str, Message]:
    env = {"MAILGW_STORE__URL": '"sqlite://"', "MAILGW_GATEWAY__DATA_DIR": f'"{tmp_path}"',
           "MAILGW_NOTICES__ADMINS": '["antoan@phutho.gov.vn"]',
           "MAILGW_NOTICES__SENDER": '"canhbao@phutho.gov.vn"', **extra_env}
    sessions = session_factory(engine)
    with sessions.begin() as s:
        import_csv(s, DIRECTORY_CSV)
    enf = Enforcement.build(load(None, environ=env), sessions)
    raw = (f"From: <{mail_from}>\r\nSubject: =?utf-8?q?Quy=E1=BA=BFt_=C4=91=E1=BB=8Bnh?=\r\n"
           "\r\nx\r\n").encode()
    mail = Mail(session=SessionInfo("submission"), mail_from=mail_from, rcpt_tos=rcpts, raw=raw)
    mail.verdict = verdict
    mail.verdict_detail = {"reasons": [rule.replace("-", "_")], "rules": [rule],
                           "evidence": EVIDENCE, "unit": unit, "notify": notify,
                           "subject": "Quyết định", "notice_vi": "Ghi chú của quy định.",
                           "notice_en": "Rule note."}
    with sessions.begin() as s:
        row = None if verdict == "reject" else enqueue_rows(
            s, mail_from, rcpts, raw, "inbound", queue_id=mail.queue_id, verdict=verdict,
            verdict_detail=mail.verdict_detail)
        enf.record(s, mail, row)
    with sessions() as s:
        notices = s.scalars(select(Message).where(Message.direction == "local")).all()
        return {m.recipients[0]: m for m in notices}


def test_inbound_flag_tells_the_receiving_units_admins_not_the_outside_sender(
        engine, tmp_path) -> None:
    got = enforce(engine, tmp_path, "ubndxa@gmail.com",
                  ["levanc@lamthao.phutho.gov.vn", "ai.do@example.org"], "flag",
                  "inbound-official-via-webmail", ["admins"])
    assert set(got) == {"vanphong@lamthao.phutho.gov.vn", "antoan@phutho.gov.vn"}
    m = got["vanphong@lamthao.phutho.gov.vn"]
    assert m.mail_from == "" and m.verdict == "allow"
    msg = message_from_bytes(m.content, policy=default_policy)
    assert msg["From"].addresses[0].addr_spec == "canhbao@phutho.gov.vn"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "UBND huyện Lâm Thao" in body and "số, ký hiệu văn bản" in body
    assert "Số: 2445/QĐ-UBND" in body and "Quyết định" in body
    assert "số, ký hiệu văn bản (tệp đính kèm qd.pdf): Số: 2445/QĐ-UBND" in body


def test_sender_template_can_be_overridden(engine, tmp_path) -> None:
    override = tmp_path / "tpl"
    override.mkdir()
    (override / "sender.txt.j2").write_text(
        "Đơn vị tự soạn: {{ reference }} / {{ sender_name }}\n", encoding="utf-8")
    got = enforce(engine, tmp_path, "nguyenvana.stc@phutho.gov.vn", ["x@gmail.com"], "flag",
                  "webmail-attachment", ["admins"], unit="stc",
                  MAILGW_NOTICES__TEMPLATES=f'"{override}"')
    sender = message_from_bytes(got["nguyenvana.stc@phutho.gov.vn"].content,
                                policy=default_policy)
    assert sender.get_content().startswith("Đơn vị tự soạn: V-")
    assert "Nguyễn Văn A" in sender.get_content()
    # The packaged template still serves the others.
    admin = message_from_bytes(got["it.stc@phutho.gov.vn"].content, policy=default_policy)
    assert "Kính gửi Quản trị viên" in admin.get_content()
    assert str(admin["Subject"]).startswith("[V-") and "Sở Tài chính" in str(admin["Subject"])


def test_reject_without_sender_in_notify_tells_no_sender(engine, tmp_path) -> None:
    got = enforce(engine, tmp_path, "nguyenvana.stc@phutho.gov.vn", ["x@gmail.com"], "reject",
                  "official-document-to-webmail", ["unit_head"], unit="stc")
    assert set(got) == {"giamdoc.stc@phutho.gov.vn"}
