"""`mailgw policy lint|show|test` through click's CliRunner."""

import json
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import root

OFFICIAL = "\n".join([
    "UBND TỈNH PHÚ THỌ", "SỞ TƯ PHÁP", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc", "Số: 901/STP-VP", "Phú Thọ, ngày 3 tháng 11 năm 2026",
    "V/v rà soát văn bản", "Nơi nhận:", "- Như trên;", "KT. GIÁM ĐỐC", "PHÓ GIÁM ĐỐC",
])


def message(body: str = OFFICIAL, to: str = "x@phutho.gov.vn") -> bytes:
    m = EmailMessage()
    m["From"] = "vanthu.stp@phutho.gov.vn"
    m["To"] = to
    m["Return-Path"] = "<vanthu.stp@phutho.gov.vn>"
    m["Subject"] = "Công văn"
    m.set_content(body)
    return m.as_bytes()


def run(*args: str):
    return CliRunner().invoke(root, list(args), catch_exceptions=False)


@pytest.fixture
def eml(tmp_path: Path) -> Path:
    path = tmp_path / "cv.eml"
    path.write_bytes(message())
    return path


def test_test_json_is_exactly_the_contract(eml: Path) -> None:
    r = run("policy", "test", str(eml), "--mail-from", "vanthu.stp@phutho.gov.vn",
            "--rcpt", "a@gmail.com", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert list(out) == ["action", "reasons", "rules", "evidence", "policy_version"]
    assert out["action"] == "reject"
    assert out["reasons"] == ["official_document_to_webmail"]
    assert out["rules"] == ["official-document-to-webmail"]
    assert all(set(e) == {"part", "signal", "text"} for e in out["evidence"])
    assert {"part": "body", "signal": "document_number", "text": "Số: 901/STP-VP"} \
        in out["evidence"]
    assert len(out["policy_version"]) == 64


def test_test_human_output(eml: Path) -> None:
    r = run("policy", "test", str(eml), "--mail-from", "vanthu.stp@phutho.gov.vn",
            "--rcpt", "a@phutho.gov.vn")
    assert r.exit_code == 0 and r.output.startswith("action:   allow")


def test_unit_monitor_via_extra_policy(eml: Path, tmp_path: Path) -> None:
    local = tmp_path / "local.toml"
    local.write_text('[[unit]]\nname = "stp"\nmonitor = true\n', encoding="utf-8")
    r = run("policy", "test", str(eml), "--mail-from", "vanthu.stp@phutho.gov.vn",
            "--rcpt", "a@gmail.com", "--unit", "stp", "--policy", "policies/phutho.toml",
            "--policy", str(local), "--json")
    assert json.loads(r.output)["action"] == "flag"


def test_folder_with_headers_as_envelope(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(message(to="a@gmail.com"))
    (tmp_path / "b.eml").write_bytes(message("Xin chào", to="a@gmail.com"))
    r = run("policy", "test", str(tmp_path))
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("a.eml\treject\tofficial_document_to_webmail")
    assert lines[1].startswith("b.eml\tallow")


def test_folder_with_labels(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(message())
    labels = [{"file": "a.eml", "mail_from": "vanthu.stp@phutho.gov.vn",
               "rcpt_to": ["x@yahoo.com"], "expected": "block",
               "reasons": ["official_document_to_webmail"]}]
    (tmp_path / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
    r = run("policy", "test", str(tmp_path))
    assert r.output.splitlines()[-1] == "1/1 agree with labels.json"


def test_mbox(tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "box"))
    box.add(message(to="a@gmail.com"))
    box.add(message("Lịch họp", to="a@gmail.com"))
    box.close()
    r = run("policy", "test", str(tmp_path / "box"), "--mail-from", "a@phutho.gov.vn",
            "--rcpt", "b@gmail.com", "--json")
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [(x["file"], x["action"]) for x in rows] == [("box#1", "reject"), ("box#2", "allow")]


def test_lint_ok_and_bad(tmp_path: Path) -> None:
    r = run("policy", "lint")
    assert r.exit_code == 0 and r.output.startswith("ok: policies/phutho.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "x"\naction = "block"\nreason = "x"\nwhen = {}\n',
                   encoding="utf-8")
    r = CliRunner().invoke(root, ["policy", "lint", str(bad)])
    assert r.exit_code == 1
    assert r.stderr.strip() == (f"mailgw: {bad}:3: action: 'block' is not one of allow, flag, "
                                "quarantine, reject")


def test_show_lists_rules_in_order() -> None:
    r = run("policy", "show", "--json")
    data = json.loads(r.output)
    assert [x["id"] for x in data["rules"]][:3] == [
        "secret-marking", "auto-forward-to-webmail", "official-document-to-webmail"]
    r = run("policy", "show")
    assert "1. secret-marking: reject" in r.output


def test_user_errors_exit_1(tmp_path: Path) -> None:
    r = CliRunner().invoke(root, ["policy", "test", str(tmp_path / "nope.eml")])
    assert r.exit_code == 1
    r = CliRunner().invoke(root, ["policy", "test", str(tmp_path / "nope.eml"), "--date", "x"])
    assert r.exit_code == 1


def test_show_for_a_unit_in_monitor_mode(tmp_path: Path) -> None:
    local = tmp_path / "local.toml"
    local.write_text('[[unit]]\nname = "sgddt"\nmonitor = true\n'
                     'disable = ["webmail-attachment"]\n', encoding="utf-8")
    r = run("policy", "show", "--policy", "policies/phutho.toml", "--policy", str(local),
            "--unit", "sgddt", "--json")
    rules = {x["id"]: x for x in json.loads(r.output)["rules"]}
    assert rules["official-document-to-webmail"]["effective_action"] == "flag"
    assert rules["webmail-attachment"]["enabled"] is False
    assert rules["secret-marking"]["action"] == "reject"
