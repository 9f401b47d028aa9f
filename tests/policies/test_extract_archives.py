"""Archives: nested zip and 7z are opened under the limits; bombs and encryption become facts."""

from __future__ import annotations

import time

import pytest

from policies.extract import Limits, extract

from .docgen import (
    add_zip_member,
    make_7z,
    make_docx,
    make_message,
    make_zip,
    set_zip_encrypted,
    zeros_zip,
)

OFFICIAL = ["UBND TỈNH PHÚ THỌ", "Số: 2156/STC-QLNS", "MẬT"]


def _with(name: str, data: bytes, ctype: str = "application/zip", limits: Limits | None = None):
    return extract(make_message(attachments=[(name, ctype, data)]), limits)


def _docx_docs(result):
    return [d for d in result.documents if d.kind == "docx"]


NESTED_CASES = [
    ("zip", lambda d: make_zip({"to-trinh.docx": d}), "attachment ho-so.zip > to-trinh.docx"),
    ("zip in zip", lambda d: make_zip({"inner.zip": make_zip({"thu muc/qd.docx": d})}),
     "attachment ho-so.zip > inner.zip > thu muc/qd.docx"),
    ("stored zip", lambda d: make_zip({"a.docx": d}, compression=0),
     "attachment ho-so.zip > a.docx"),
    ("7z", lambda d: make_7z({"b.docx": d}), "attachment ho-so.zip > b.docx"),
    ("zip in 7z", lambda d: make_7z({"c.zip": make_zip({"c.docx": d})}),
     "attachment ho-so.zip > c.zip > c.docx"),
]


@pytest.mark.parametrize(("case", "wrap", "label"), NESTED_CASES, ids=[c[0] for c in NESTED_CASES])
def test_documents_inside_archives_are_read(case, wrap, label):
    # The archive is called .zip whatever it is: a 7z named .zip is also a type mismatch.
    result = _with("ho-so.zip", wrap(make_docx(OFFICIAL)))
    docs = _docx_docs(result)
    assert [d.part for d in docs] == [label]
    assert "Số: 2156/STC-QLNS" in docs[0].lines
    assert any(a.part == label and a.sniffed_type == "docx" for a in result.attachments)
    if case.startswith("7z") or case == "zip in 7z":
        assert any(d.kind == "type_mismatch" for d in result.defects)


def test_zip_bomb_is_a_defect_and_fast():
    bomb = zeros_zip("data.txt", 300 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    started = time.perf_counter()
    result = _with("bomb.zip", bomb)
    assert time.perf_counter() - started < 2
    assert any(d.kind == "archive_bomb" for d in result.defects)
    assert not [d for d in result.documents if "data.txt" in d.part]


def test_bomb_caught_while_inflating_when_the_header_lies_within_limits():
    # 8 MiB of zeros is within the declared-size checks only if the ratio cap is loose; the
    # streaming check must still stop at the size cap.
    bomb = zeros_zip("x.bin", 8 * 1024 * 1024)
    limits = Limits(max_file_size=2 * 1024 * 1024, max_ratio=10_000)
    result = _with("b.zip", bomb, limits=limits)
    assert any(d.kind == "archive_bomb" for d in result.defects)


def test_total_size_budget_stops_extraction():
    members = {f"f{i}.txt": b"A" * 400_000 for i in range(10)}
    result = _with("many.zip", make_zip(members), limits=Limits(max_total_bytes=1_500_000))
    assert any(d.kind == "size_limit" for d in result.defects)
    assert len([d for d in result.documents if d.part.startswith("attachment many.zip >")]) < 10


def test_too_many_members():
    archive = make_zip({f"{i}.txt": b"x" for i in range(50)})
    result = _with("n.zip", archive, limits=Limits(max_archive_members=10))
    assert any(d.kind == "archive_bomb" and "50 members" in d.detail for d in result.defects)
    assert len([a for a in result.attachments if a.part.startswith("attachment n.zip >")]) == 10


def test_deeply_nested_zips_stop_at_the_depth_limit():
    data = make_docx(["MẬT"])
    for level in range(12):
        data = make_zip({f"level{level}.zip" if level else "doc.docx": data})
    result = _with("deep.zip", data, limits=Limits(max_depth=6))
    assert any(d.kind == "nesting_too_deep" for d in result.defects)
    assert not _docx_docs(result)


def test_encrypted_zip_member():
    archive = set_zip_encrypted(make_zip({"qd.docx": make_docx(OFFICIAL)}))
    result = _with("secret.zip", archive)
    member = next(a for a in result.attachments if a.part == "attachment secret.zip > qd.docx")
    assert member.encrypted
    top = next(a for a in result.attachments if a.part == "attachment secret.zip")
    assert top.encrypted
    assert any(d.kind == "encrypted_archive" for d in result.defects)
    assert not _docx_docs(result)


@pytest.mark.parametrize("header_encryption", [True, False])
def test_encrypted_7z(header_encryption):
    archive = make_7z({"qd.docx": make_docx(OFFICIAL)}, password="bimat",
                      header_encryption=header_encryption)
    result = _with("secret.7z", archive, ctype="application/x-7z-compressed")
    top = next(a for a in result.attachments if a.part == "attachment secret.7z")
    assert top.sniffed_type == "7z"
    assert top.encrypted
    assert any(d.kind == "encrypted_archive" for d in result.defects)
    assert not _docx_docs(result)


def test_7z_bomb_is_refused_from_its_declared_sizes():
    archive = make_7z({"zeros.bin": b"\x00" * (20 * 1024 * 1024)})
    assert len(archive) < 100_000
    result = _with("z.7z", archive, ctype="application/x-7z-compressed")
    assert any(d.kind == "archive_bomb" for d in result.defects)


def test_docx_that_is_a_bomb_stops_at_the_limits():
    docx = add_zip_member(zeros_zip("word/document.xml", 50 * 1024 * 1024),
                          "[Content_Types].xml", b"<Types/>")
    result = _with("bomb.docx", docx,
                   ctype="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    assert any(d.kind == "archive_bomb" for d in result.defects)
    bomb = next(a for a in result.attachments if a.part == "attachment bomb.docx")
    assert bomb.sniffed_type == "docx"
    assert bomb.unreadable


def test_corrupt_zip_is_unreadable():
    data = make_zip({"a.docx": make_docx(OFFICIAL)})
    result = _with("broken.zip", data[:200] + b"\x00" * 50)
    top = next(a for a in result.attachments if a.part == "attachment broken.zip")
    assert top.unreadable or any(d.kind == "unreadable" for d in result.defects)


def test_concatenated_zips_show_the_members_only_some_tools_see():
    # zipfile reads the last archive's directory; other tools read the first archive.
    first = make_zip({"qd.docx": make_docx(OFFICIAL)})
    second = make_zip({"anh.jpg": b"\xff\xd8\xff" + b"\x00" * 100})
    result = _with("anh.zip", first + second)
    kinds = {d.kind: d.ambiguous for d in result.defects}
    assert kinds.get("zip_concatenated") is True
    assert kinds.get("zip_hidden_member") is True
    docs = _docx_docs(result)
    assert [d.part for d in docs] == ["attachment anh.zip > qd.docx (not in the zip directory)"]
    assert "Số: 2156/STC-QLNS" in docs[0].lines


def test_nested_stored_archives_are_not_hidden_members():
    inner = make_zip({"qd.docx": make_docx(OFFICIAL)}, compression=0)
    result = _with("outer.zip", make_zip({"inner.zip": inner}, compression=0))
    assert not [d for d in result.defects if d.kind.startswith("zip_")]
    assert [d.part for d in _docx_docs(result)] == ["attachment outer.zip > inner.zip > qd.docx"]
