"""File type by content, and when the content contradicts the name or the declared type."""

from __future__ import annotations

import pytest

from policies.extract.sniff import mismatch, sniff

from .docgen import make_7z, make_docx, make_message, make_odf, make_tnef, make_xlsx, make_zip

SNIFF_CASES = [
    ("pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "pdf"),
    ("pdf after junk", lambda: b"\x00" * 100 + b"%PDF-1.4", "pdf"),
    ("docx", lambda: make_docx(["x"]), "docx"),
    ("xlsx", lambda: make_xlsx({"A": [["x"]]}), "xlsx"),
    ("odt", lambda: make_odf(["x"]), "odt"),
    ("ods", lambda: make_odf([], cells=[["x"]]), "ods"),
    ("zip", lambda: make_zip({"a.txt": b"x"}), "zip"),
    ("damaged docx", lambda: make_docx(["x"])[:3000], "docx"),
    ("7z", lambda: make_7z({"a.txt": b"x"}), "7z"),
    ("rar", lambda: b"Rar!\x1a\x07\x01\x00" + b"\x00" * 20, "rar"),
    ("legacy doc", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500
     + "WordDocument".encode("utf-16-le"), "doc"),
    ("legacy xls", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500
     + "Workbook".encode("utf-16-le"), "xls"),
    ("tnef", lambda: make_tnef({"a.txt": b"x" * 40}), "tnef"),
    ("rtf", lambda: b"{\\rtf1\\ansi x}", "rtf"),
    ("gzip", lambda: b"\x1f\x8b\x08\x00" + b"\x00" * 20, "gzip"),
    ("html", lambda: b"\xef\xbb\xbf  <!DOCTYPE html><html><body>x</body></html>", "html"),
    ("message", lambda: make_message("x"), "eml"),
    ("jpeg", lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 100, "jpg"),
    ("png", lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "png"),
    ("vietnamese text", lambda: "Số: 12/QĐ-UBND\nKính gửi".encode(), "text"),
    ("empty", lambda: b"", "empty"),
    ("random binary", lambda: bytes(range(0, 32)) * 50, "unknown"),
]


@pytest.mark.parametrize(("case", "build", "kind"), SNIFF_CASES, ids=[c[0] for c in SNIFF_CASES])
def test_sniff(case, build, kind):
    assert sniff(build()) == kind


MISMATCH_CASES = [
    # (sniffed kind, file name, declared type, contradiction expected)
    ("pdf", "QD-2445.pdf", "application/pdf", False),
    ("pdf", "HUONG DAN.PDF", "application/octet-stream", False),
    ("docx", "x.docx", "application/octet-stream", False),
    ("rtf", "cong-van.doc", "application/msword", False),
    ("docx", "anh.jpg", "image/jpeg", True),
    ("pdf", "bang.xlsx", "", True),
    ("zip", "", "application/pdf", True),
    ("pdf", "ghi-chu.txt", "text/plain", True),
    ("text", "ghi-chu.pdf", "application/pdf", False),  # text content is never a mismatch
    ("jpg", "IMG_2043.jpg", "image/jpeg", False),
    ("7z", "ho-so.zip", "application/zip", True),
    ("eml", "thu.eml", "message/rfc822", False),
    ("png", "so-lieu.dat", "application/octet-stream", False),
]


@pytest.mark.parametrize(("kind", "name", "declared", "expected"), MISMATCH_CASES,
                         ids=[f"{c[0]} as {c[1] or c[2]}" for c in MISMATCH_CASES])
def test_mismatch(kind, name, declared, expected):
    assert bool(mismatch(kind, name, declared)) is expected
