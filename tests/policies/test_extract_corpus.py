"""The whole development corpus extracts without an exception, and its documents are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.extract import extract

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

# file -> (sniffed kind, a line that document must contain), checked by content, not by name.
EXPECTED = {
    "002-to-trinh-sua-chua-phong-hoc-yahoo.eml": [("pdf", "TỜ TRÌNH")],
    "003-ke-hoach-dien-tap-khu-vuc-phong-thu.eml": [("pdf", "MẬT")],
    "004-cv-phong-chong-sot-xuat-huyet.eml": [("docx", "Số: 4279/UBND-KGVX")],
    "005-to-trinh-bien-che-octet-stream.eml": [("docx", "TỜ TRÌNH")],
    "006-ke-hoach-thi-hsg-odt.eml": [("odt", "KẾ HOẠCH")],
    "007-so-lieu-dich-vu-cong-thang-9.eml": [("xlsx", "STT")],
    "011-ho-so-xac-minh-to-cao-zip.eml": [("docx", "MẬT")],
    "021-ho-so-nong-thon-moi-zip-gmail.eml": [("docx", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")],
    "022-de-nghi-viettel-phu-song.eml": [("docx", "Nơi nhận:"), ("xlsx", "")],
    "029-tai-lieu-chu-ky-so-zip.eml": [("docx", "Nơi nhận:")],
    "034-ra-soat-ho-ngheo-dan-noi-dung.eml": [("text", "V/v rà soát hộ nghèo"),
                                              ("html", "V/v rà soát hộ nghèo")],
    "037-tb-ket-luan-chuyen-tiep-eml.eml": [("pdf", "THÔNG BÁO")],
}


def _corpus() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus folder {CORPUS} is absent")
    return sorted(CORPUS.glob("*.eml"))


def test_every_corpus_message_extracts():
    files = _corpus()
    assert len(files) >= 40
    for path in files:
        result = extract(path.read_bytes())
        assert result.headers, path.name
        assert result.documents, path.name
        assert not [d for d in result.defects if d.kind == "unreadable"], path.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_documents_are_found_by_content(name):
    _corpus()
    result = extract((CORPUS / name).read_bytes())
    for kind, needle in EXPECTED[name]:
        assert any(
            doc.kind == kind and any(needle in line for line in doc.lines)
            for doc in result.documents
        ), (name, kind, needle, [(d.part, d.kind) for d in result.documents])


def test_corpus_nested_parts_are_labelled():
    _corpus()
    zipped = extract((CORPUS / "011-ho-so-xac-minh-to-cao-zip.eml").read_bytes())
    assert any(d.part.startswith("attachment ") and " > " in d.part and d.kind == "docx"
               for d in zipped.documents)
    forwarded = extract((CORPUS / "037-tb-ket-luan-chuyen-tiep-eml.eml").read_bytes())
    assert any(d.part.startswith("attached message > attachment ") and d.kind == "pdf"
               for d in forwarded.documents)
    encoded = extract((CORPUS / "026-don-kien-nghi-ngap-ung.eml").read_bytes())
    assert "Đơn kiến nghị khu 9.docx" in [a.filename for a in encoded.attachments]
