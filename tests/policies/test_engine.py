"""The engine: first match wins, monitor mode, per-unit overrides, exemptions with expiry."""

from datetime import date
from pathlib import Path

import pytest

from policies import AddressClassifier, Policy, build_facts, load_policy
from policies.extraction import Attachment, Document, Extraction

AC = AddressClassifier(["phutho.gov.vn"])
OFFICIAL = Document("attachment qd.pdf", "pdf", (
    "UBND TỈNH PHÚ THỌ", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Số: 2445/QĐ-UBND",
    "Phú Thọ, ngày 16 tháng 10 năm 2018", "QUYẾT ĐỊNH", "Nơi nhận:", "KT. CHỦ TỊCH"))
PDF = Attachment("attachment qd.pdf", "qd.pdf", "application/pdf", "pdf", 100)
SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "phutho.toml"

EXTRA = """
[[unit]]
name = "sgddt"
monitor = true

[[unit]]
name = "stttt"
actions = { "official-document-to-webmail" = "quarantine" }
disable = ["webmail-attachment"]

[[exemption]]
id = "dvc-portal"
justification = "Cổng dịch vụ công trả kết quả cho công dân"
rules = ["official-document-to-webmail", "webmail-attachment"]
senders = ["ketqua.dvc@phutho.gov.vn"]
expires = 2027-06-30

[[exemption]]
id = "partner-box"
justification = "Hộp thư được phép của chuyên gia tư vấn, theo Quyết định 12/QĐ-STTTT"
rules = ["official-document-to-webmail"]
recipients = ["chuyengia@gmail.com"]
"""


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    extra = tmp_path_factory.mktemp("p") / "local.toml"
    extra.write_text(EXTRA, encoding="utf-8")
    return load_policy([SHIPPED, extra])


def facts(mail_from: str, rcpts: list[str], docs=(OFFICIAL,), atts=(PDF,), unit=None,
          headers=()):
    ex = Extraction(documents=list(docs), attachments=list(atts), headers=list(headers))
    return build_facts(ex, mail_from, rcpts, addresses=AC, sender_unit=unit)


@pytest.mark.parametrize(
    ("mail_from", "rcpts", "docs", "atts", "headers", "action", "reasons"),
    [
        ("a@phutho.gov.vn", ["b@gmail.com"], (OFFICIAL,), (PDF,), (), "reject",
         ["official_document_to_webmail"]),
        ("a@phutho.gov.vn", ["c@phutho.gov.vn", "b@gmail.com"], (OFFICIAL,), (PDF,), (),
         "reject", ["official_document_to_webmail"]),
        ("a@phutho.gov.vn", ["b@gmail.com"], (), (PDF,), (), "flag", ["webmail_attachment"]),
        ("a@phutho.gov.vn", ["b@vnpt.vn"], (OFFICIAL,), (PDF,), (), "allow", []),
        ("a@phutho.gov.vn", ["b@gmail.com"], (), (), [("Resent-To", "b@gmail.com")], "reject",
         ["auto_forward"]),
        ("a@phutho.gov.vn", ["c@phutho.gov.vn"], (), (), [("Resent-To", "x")], "allow", []),
        ("x@gmail.com", ["a@phutho.gov.vn"], (OFFICIAL,), (PDF,), (), "flag",
         ["inbound_official_via_webmail"]),
        ("a@phutho.gov.vn", ["c@phutho.gov.vn"],
         (Document("body", "text", ("TỐI MẬT",)),), (), (), "reject", ["secret_marking"]),
    ],
)
def test_shipped_rules(policy: Policy, mail_from, rcpts, docs, atts, headers, action,
                       reasons) -> None:
    v = policy.evaluate(facts(mail_from, rcpts, docs, atts, headers=headers),
                        today=date(2026, 11, 1))
    assert (v.action, list(v.reasons)) == (action, reasons)


def test_first_match_wins_and_trail_lists_all(policy: Policy) -> None:
    v = policy.evaluate(facts("a@phutho.gov.vn", ["b@gmail.com"]))
    assert v.rules == ("official-document-to-webmail", "webmail-attachment")
    assert v.reasons == ("official_document_to_webmail",)
    assert v.smtp_text.startswith("Khong gui van ban") and v.smtp_text.isascii()
    assert "văn bản" in v.notice_vi
    assert v.evidence[0].signal == "issuing_body"
    assert v.evidence[-1].text == "b@gmail.com"
    assert v.as_json()["policy_version"] == policy.version and len(policy.version) == 64


def test_monitor_mode_per_unit(policy: Policy) -> None:
    v = policy.evaluate(facts("a@phutho.gov.vn", ["b@gmail.com"], unit="SGDDT"))
    assert (v.action, v.monitored, v.intended_action) == ("flag", True, "reject")
    assert v.reasons == ("official_document_to_webmail",)


def test_monitor_mode_global(tmp_path: Path) -> None:
    local = tmp_path / "monitor.toml"
    local.write_text("[policy]\nmonitor = true\n", encoding="utf-8")
    p = load_policy([SHIPPED, local])
    v = p.evaluate(facts("a@phutho.gov.vn", ["b@gmail.com"]))
    assert v.action == "flag" and v.monitored


def test_unit_override_action_and_disable(policy: Policy) -> None:
    v = policy.evaluate(facts("a@phutho.gov.vn", ["b@gmail.com"], unit="stttt"))
    assert v.action == "quarantine"
    v = policy.evaluate(facts("a@phutho.gov.vn", ["b@gmail.com"], docs=(), unit="stttt"))
    assert v.action == "allow"  # webmail-attachment switched off for this unit


def test_system_sender_exemption_until_expiry(policy: Policy) -> None:
    f = facts("ketqua.dvc@phutho.gov.vn", ["congdan@gmail.com"])
    v = policy.evaluate(f, today=date(2027, 6, 30))
    assert v.action == "allow" and v.exemptions == ("dvc-portal",)
    assert policy.evaluate(f, today=date(2027, 7, 1)).action == "reject"
    # No date given: an expiring exemption cannot be checked, so it does not apply.
    assert policy.evaluate(f).action == "reject"


def test_recipient_allow_list_only_removes_that_recipient(policy: Policy) -> None:
    v = policy.evaluate(facts("a@phutho.gov.vn", ["chuyengia+x@gmail.com"]))
    assert v.action == "flag" and v.reasons == ("webmail_attachment",)
    assert "partner-box" in v.exemptions
    v = policy.evaluate(facts("a@phutho.gov.vn", ["chuyengia@gmail.com", "other@gmail.com"]))
    assert v.action == "reject"


def test_secret_marking_is_not_exempted(policy: Policy) -> None:
    f = facts("ketqua.dvc@phutho.gov.vn", ["congdan@gmail.com"],
              docs=(Document("body", "text", ("MẬT",)),))
    assert policy.evaluate(f, today=date(2027, 1, 1)).action == "reject"


def test_fail_closed_rule_after_corpus_rules(policy: Policy) -> None:
    from policies.extraction import Defect

    ex = Extraction(defects=[Defect("message", "duplicate_content_type", ambiguous=True)])
    f = build_facts(ex, "a@phutho.gov.vn", ["b@gmail.com"], addresses=AC)
    v = policy.evaluate(f)
    assert (v.action, v.reasons) == ("quarantine", ("unreadable_to_webmail",))
    # An encrypted zip is a document-type attachment: rule 4 (flag) comes first.
    ex = Extraction(attachments=[Attachment("attachment a.zip", "a.zip", "application/zip",
                                            "zip", 9, encrypted=True)])
    f = build_facts(ex, "a@phutho.gov.vn", ["b@gmail.com"], addresses=AC)
    assert policy.evaluate(f).reasons == ("webmail_attachment",)
    # Internal mail with ambiguous MIME is not held.
    ex = Extraction(defects=[Defect("message", "duplicate_content_type", ambiguous=True)])
    f = build_facts(ex, "a@phutho.gov.vn", ["c@phutho.gov.vn"], addresses=AC)
    assert policy.evaluate(f).action == "allow"


def test_lookalike_rule_is_shipped_disabled(policy: Policy) -> None:
    f = facts("a@phutho.gov.vn", ["b@phutho-gov.vn"], docs=(), atts=())
    assert f.lookalike_domain and policy.evaluate(f).action == "allow"


@pytest.mark.parametrize(("mail_from", "rcpts", "official_needed"), [
    ("a@phutho.gov.vn", ["b@gmail.com"], True),
    ("a@phutho.gov.vn", ["b@vnpt.vn", "b@gmail.com"], True),
    ("x@gmail.com", ["a@phutho.gov.vn"], True),      # inbound official via webmail
    ("a@phutho.gov.vn", ["b@vnpt.vn"], False),
    ("a@phutho.gov.vn", ["c@phutho.gov.vn"], False),
    ("x@vnpt.vn", ["a@phutho.gov.vn"], False),
])
def test_only_needed_facts_keep_the_verdict(policy: Policy, mail_from, rcpts,
                                            official_needed) -> None:
    # The gateway's shortcut: content facts no rule could use for this envelope are not
    # computed. The secret-marking rule looks at every envelope, so it is always needed.
    ex = Extraction(documents=[OFFICIAL, Document("body", "text", ("TỐI MẬT",))],
                    attachments=[PDF])
    full = build_facts(ex, mail_from, rcpts, addresses=AC)
    needed = policy.needed_facts(full)
    assert ("official_document" in needed) is official_needed
    assert "secret_marking" in needed
    lazy = build_facts(ex, mail_from, rcpts, addresses=AC, needed=policy.needed_facts)
    assert lazy.official_document is (full.official_document and official_needed)
    assert lazy.secret_marking and full.secret_marking
    day = date(2026, 11, 1)
    assert policy.evaluate(lazy, today=day) == policy.evaluate(full, today=day)
    # Without the marking, the verdicts still agree (the official-document rules decide).
    ex2 = Extraction(documents=[OFFICIAL], attachments=[PDF])
    assert policy.evaluate(
        build_facts(ex2, mail_from, rcpts, addresses=AC, needed=policy.needed_facts),
        today=day) == policy.evaluate(build_facts(ex2, mail_from, rcpts, addresses=AC),
                                      today=day)
