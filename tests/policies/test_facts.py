"""Facts from extraction data and the envelope: one flat record with evidence."""

from email.message import EmailMessage

import pytest

from policies import AddressClassifier, build_facts, classify
from policies.extraction import Attachment, Defect, Document, Extraction

AC = AddressClassifier(["phutho.gov.vn"])
OFFICIAL = ("UBND TỈNH PHÚ THỌ", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Số: 12/KH-UBND",
            "Phú Thọ, ngày 1 tháng 2 năm 2026", "KẾ HOẠCH", "Nơi nhận:", "TM. ỦY BAN NHÂN DÂN")


def facts(ex: Extraction, mail_from: str = "a@phutho.gov.vn", rcpts=("b@gmail.com",), **kw):
    return build_facts(ex, mail_from, list(rcpts), addresses=AC, **kw)


def test_official_document_with_evidence() -> None:
    f = facts(Extraction(documents=[Document("attachment kh.pdf", "pdf", OFFICIAL)]))
    assert f.official_document and not f.secret_marking
    ev = f.evidence_for("official_document")
    assert ev[0].part == "attachment kh.pdf" and len(ev) == 7


def test_signals_in_two_documents_do_not_add_up() -> None:
    ex = Extraction(documents=[Document("body", "text", OFFICIAL[:3]),
                               Document("attachment x.pdf", "pdf", OFFICIAL[3:6])])
    assert not facts(ex).official_document


def test_every_fact_from_extraction() -> None:
    ex = Extraction(
        documents=[Document("body", "text", ("xin gửi", "MẬT"))],
        attachments=[Attachment("attachment a.zip", "a.zip", "application/zip", "zip", 9,
                                encrypted=True)],
        defects=[Defect("message", "missing_boundary", ambiguous=True)],
        headers=[("Auto-Submitted", "auto-forwarded")],
    )
    f = facts(ex)
    assert (f.secret_marking, f.auto_forward, f.document_attachment, f.encrypted,
            f.ambiguous, f.unreadable, f.unreadable_content) == (
        True, True, True, True, True, False, True)


def test_direction_defaults_from_sender_and_can_be_given() -> None:
    assert facts(Extraction()).direction == "outbound"
    assert facts(Extraction(), mail_from="x@gmail.com").direction == "inbound"
    assert facts(Extraction(), direction="inbound").direction == "inbound"
    with pytest.raises(ValueError):
        facts(Extraction(), direction="sideways")


def test_lookalike_fact() -> None:
    f = facts(Extraction(), rcpts=("b@phutho-gov.vn",))
    assert f.lookalike_domain
    assert "phutho.gov.vn" in f.evidence_for("lookalike_domain")[0].text


def _message(to: str, cc: str = "") -> bytes:
    m = EmailMessage()
    m["From"] = '"vanthu@phutho.gov.vn" <x@gmail.com>'
    m["To"] = to
    if cc:
        m["Cc"] = cc
    m["Subject"] = "Kế hoạch"
    m.set_content("\n".join(OFFICIAL))
    return m.as_bytes()


def test_envelope_decides_not_headers() -> None:
    # The To header names only internal addresses; the Bcc recipient exists only in the envelope.
    raw = _message("syt@phutho.gov.vn")
    f = classify(raw, "vanthu@phutho.gov.vn", ["syt@phutho.gov.vn", "bcc.person@gmail.com"],
                 domains=["phutho.gov.vn"])
    assert [sorted(r.classes) for r in f.recipients] == [["government", "internal"],
                                                        ["free_webmail"]]
    assert f.official_document and f.size == len(raw)


def test_display_name_that_looks_like_an_address_is_only_a_name() -> None:
    f = classify(_message("a@b.vn"), '"boss@phutho.gov.vn" <x@gmail.com>',
                 ['"ubnd@phutho.gov.vn" <y@yahoo.com>'], domains=["phutho.gov.vn"])
    assert f.sender.classes == {"free_webmail"} and f.recipients[0].classes == {"free_webmail"}
    assert f.direction == "inbound"
