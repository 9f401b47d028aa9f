"""`mailgw violations|quarantine|audit|directory` through click's CliRunner, on both engines.

The records come from the real enforcement hook (Enforcement.record) on a real store; the
commands read them back as an operator would.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from cli.main import root
from mailgw.config import load
from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.queue.enqueue import enqueue_rows
from mailgw.store.db import session_factory
from mailgw.store.models import Message, QueueEntry, Violation
from mailgw.violations.enforce import Enforcement
from tests.enforcement.gateway import DIRECTORY_CSV

USER = "nguyenvana.stc@phutho.gov.vn"


def env(db_url: str, tmp_path) -> dict[str, str]:
    return {"MAILGW_STORE__URL": f'"{db_url}"', "MAILGW_GATEWAY__DATA_DIR": f'"{tmp_path}"'}


def run(db_url: str, tmp_path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(root, list(args), env=env(db_url, tmp_path))
    return result.exit_code, result.output


def record(engine, tmp_path, db_url, verdict: str, reasons: list[str], rcpt: str,
           sender: str = USER) -> str:
    """Write one verdict through Enforcement.record in one transaction, as the writer does."""
    config = load(None, environ=env(db_url, tmp_path))
    sessions = session_factory(engine)
    enf = Enforcement.build(config, sessions)
    raw = b"From: <" + sender.encode() + b">\r\nSubject: Thu\r\n\r\nx\r\n"
    mail = Mail(session=SessionInfo("submission", auth_user=sender), mail_from=sender,
                rcpt_tos=[rcpt], raw=raw)
    mail.verdict = verdict
    mail.verdict_detail = {"reasons": reasons, "rules": [reasons[0].replace("_", "-")],
                           "evidence": [{"part": "body", "signal": "secret_marking",
                                         "text": "MẬT"}],
                           "unit": "stc", "policy_version": "v1", "subject": "Thư"}
    with sessions.begin() as s:
        row = None if verdict == "reject" else enqueue_rows(
            s, mail.mail_from, mail.rcpt_tos, mail.stored_bytes(), "outbound",
            queue_id=mail.queue_id, verdict=verdict, verdict_detail=mail.verdict_detail)
        enf.record(s, mail, row)
    return mail.verdict_detail["reference"]


@pytest.fixture
def filled(engine, db_url, tmp_path):
    refs = [record(engine, tmp_path, db_url, "reject", ["secret_marking"], "a@gmail.com"),
            record(engine, tmp_path, db_url, "flag", ["webmail_attachment"], "b@yahoo.com"),
            record(engine, tmp_path, db_url, "quarantine", ["unreadable_to_webmail"],
                   "c@gmail.com", sender="tranthib.stttt@phutho.gov.vn")]
    return engine, refs


def test_violations_list_filters_json_csv(filled, db_url, tmp_path) -> None:
    _, refs = filled
    code, out = run(db_url, tmp_path, "violations", "list", "--json")
    assert code == 0
    assert [r["reference"] for r in json.loads(out)] == refs
    code, out = run(db_url, tmp_path, "violations", "list", "--json", "--action", "flag")
    assert [r["reasons"] for r in json.loads(out)] == [["webmail_attachment"]]
    code, out = run(db_url, tmp_path, "violations", "list", "--json", "--reason",
                    "secret_marking")
    assert [r["reference"] for r in json.loads(out)] == [refs[0]]
    code, out = run(db_url, tmp_path, "violations", "list", "--json", "--sender",
                    "tranthib.stttt@phutho.gov.vn")
    assert [r["reference"] for r in json.loads(out)] == [refs[2]]
    today = datetime.now(UTC).date().isoformat()
    code, out = run(db_url, tmp_path, "violations", "list", "--json", "--since", today,
                    "--until", today, "--unit", "stc")
    assert len(json.loads(out)) == 3
    code, out = run(db_url, tmp_path, "violations", "list", "--json", "--until", "2020-01-01")
    assert json.loads(out) == []
    code, out = run(db_url, tmp_path, "violations", "list", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["reference"] for r in rows] == refs and rows[0]["reasons"] == "secret_marking"
    code, out = run(db_url, tmp_path, "violations", "list", "--since", "yesterday")
    assert code == 1 and "not a date" in out


def test_violations_show(filled, db_url, tmp_path) -> None:
    _, refs = filled
    code, out = run(db_url, tmp_path, "violations", "show", refs[0])
    assert code == 0 and "secret_marking" in out and "MẬT" in out
    code, out = run(db_url, tmp_path, "violations", "show", "V-1999-000999")
    assert code == 1 and "no violation record" in out


def test_quarantine_commands(filled, db_url, tmp_path) -> None:
    engine, refs = filled
    code, out = run(db_url, tmp_path, "quarantine", "list", "--json")
    [held] = json.loads(out)
    assert held["reference"] == refs[2] and "MẬT" in held["evidence_summary"]
    code, out = run(db_url, tmp_path, "quarantine", "show", refs[2])
    assert code == 0 and "Subject: Thu" in out
    # The queue commands must not dispose of held mail behind the register's back.
    code, out = run(db_url, tmp_path, "queue", "delete", held["queue_id"])
    assert code == 1 and "mailgw quarantine delete" in out
    code, out = run(db_url, tmp_path, "quarantine", "release", refs[2])
    assert code != 0 and "--reason" in out  # the reason is required
    code, out = run(db_url, tmp_path, "quarantine", "release", held["queue_id"], "--reason",
                    "Đã xác minh", "--by", "quantri")
    assert code == 0 and "recorded as V-" in out
    with session_factory(engine)() as s:
        entry = s.query(QueueEntry).join(Message).filter(
            Message.queue_id == held["queue_id"]).one()
        assert entry.status == "queued"
    code, out = run(db_url, tmp_path, "quarantine", "delete", held["queue_id"], "--reason", "x")
    assert code == 1 and "not in quarantine" in out
    code, out = run(db_url, tmp_path, "violations", "show", refs[2])
    assert "quarantine_release by quantri: Đã xác minh" in out


def test_audit_verify_and_head(filled, db_url, tmp_path) -> None:
    engine, refs = filled
    code, out = run(db_url, tmp_path, "audit", "verify")
    assert code == 0 and "ok, 3 record(s)" in out
    code, head = run(db_url, tmp_path, "audit", "head")
    seq_hash = head.split()[0]
    assert code == 0 and seq_hash.startswith("3:")
    code, out = run(db_url, tmp_path, "audit", "verify", "--head", seq_hash)
    assert code == 0
    with session_factory(engine).begin() as s:
        s.execute(update(Violation).where(Violation.seq == 2).values(action="allow"))
    code, out = run(db_url, tmp_path, "audit", "verify")
    assert code == 1 and f"seq 2 ({refs[1]})" in out and "edited" in out


def test_directory_import_and_show(engine, db_url, tmp_path) -> None:
    code, out = run(db_url, tmp_path, "directory", "import", str(DIRECTORY_CSV))
    assert code == 0 and "9 unit(s), 6 user(s)" in out
    code, out = run(db_url, tmp_path, "directory", "show")
    assert "stc: Sở Tài chính (thuộc ubnd)" in out and "Nguyễn Văn A" in out
    code, out = run(db_url, tmp_path, "directory", "show", "--json")
    assert {u["id"] for u in json.loads(out)} >= {"stc", "stttt", "vpubnd", "lamthao"}
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,id,name,parent,head_name,head_address,admins,unit,position\n"
                   "unit,x,Đơn vị X,,,,,,\nuser,khongphaidiachi,Ai đó,,,,,x,\n",
                   encoding="utf-8")
    code, out = run(db_url, tmp_path, "directory", "import", str(bad))
    assert code == 1 and "bad.csv:3:" in out


def test_violations_correct_adds_a_record(filled, db_url, tmp_path) -> None:
    _, refs = filled
    code, out = run(db_url, tmp_path, "violations", "correct", refs[1], "--note",
                    "Tệp là tài liệu công khai, không vi phạm", "--by", "it.stc")
    assert code == 0 and "correction recorded as V-" in out
    code, out = run(db_url, tmp_path, "violations", "show", refs[1])
    assert "correction by it.stc: Tệp là tài liệu công khai" in out
    code, out = run(db_url, tmp_path, "violations", "list", "--all-kinds", "--json")
    assert [r["kind"] for r in json.loads(out)][-1] == "correction"
    code, out = run(db_url, tmp_path, "audit", "verify")
    assert code == 0 and "4 record(s)" in out
    code, out = run(db_url, tmp_path, "violations", "correct", "V-2000-000001", "--note", "x")
    assert code == 1 and "no violation record" in out
