"""Document-type attachments, by decoded file name."""

import pytest

from policies.classifiers.attachments import find_document_attachments, is_document_name
from policies.extraction import Attachment


@pytest.mark.parametrize(
    ("name", "doc"),
    [
        ("QD-2445.pdf", True), ("X.PDF", True), ("to trinh.docx", True), ("a.doc", True),
        ("so lieu.xlsx", True), ("b.xls", True), ("c.odt", True), ("d.ods", True),
        ("e.zip", True), ("f.rar", True), ("g.7z", True), ("x.jpg.pdf", True),
        ("Tờ trình 77.docx", True), ("a.pdf.", True),
        ("anh.jpg", False), ("a.pdf.jpg", False), ("invite.ics", False), ("", False),
        ("pdf", False), ("a.docx.txt", False),
    ],
)
def test_names(name: str, doc: bool) -> None:
    assert is_document_name(name) is doc


def test_evidence_for_each_document_attachment() -> None:
    atts = [Attachment("attachment a.pdf", "a.pdf", "application/pdf", "pdf", 10),
            Attachment("attachment b.jpg", "b.jpg", "image/jpeg", "jpeg", 10),
            Attachment("attached message > attachment c.XLSX", "c.XLSX", "x", "xlsx", 1)]
    found = find_document_attachments(atts)
    assert [e.text for e in found] == ["a.pdf", "c.XLSX"]
