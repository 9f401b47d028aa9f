"""MIME structure and evasion: every plausible reading is examined and each doubt is recorded."""

from __future__ import annotations

import base64
import binascii

import pytest

from policies.extract import Limits, extract

from .docgen import DEJAVU, make_docx, make_message, make_pdf, make_tnef

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SECRET = "Số: 87/KH-VP bí mật"


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def _docx_part(name: str = "kh.docx", cte: str = "base64", b64: str | None = None) -> str:
    body = b64 if b64 is not None else _b64(make_docx([SECRET]))
    return (f"Content-Type: {DOCX}; name=\"{name}\"\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n{body}")


def _found(result) -> bool:
    """The docx text is among the documents, whatever part label it got."""
    return any(d.kind == "docx" and SECRET in d.lines for d in result.documents)


def _kinds(result) -> dict[str, bool]:
    return {d.kind: d.ambiguous for d in result.defects}


HEAD = "From: a@phutho.gov.vn\r\nTo: b@gmail.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
TEXT = "Content-Type: text/plain; charset=utf-8\r\n\r\nXem tệp.\r\n"

EVASIONS = [
    # (case, raw message, defect kind expected, must it be ambiguous)
    ("duplicate content-type hides a multipart",
     HEAD + "Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
     f"--b\r\n{TEXT}--b\r\n{_docx_part()}--b--\r\n",
     "duplicate_content_type", True),
    ("missing boundary parameter",
     HEAD + "Content-Type: multipart/mixed\r\n\r\n"
     f"--XYZ\r\n{TEXT}--XYZ\r\n{_docx_part()}--XYZ--\r\n",
     "missing_boundary", True),
    ("body uses another boundary",
     HEAD + "Content-Type: multipart/mixed; boundary=\"AAA\"\r\n\r\n"
     f"--BBB\r\n{TEXT}--BBB\r\n{_docx_part()}--BBB--\r\n",
     "missing_boundary", True),
    ("whole part hidden in the preamble",
     HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
     f"{_docx_part()}\r\n--b\r\n{TEXT}--b--\r\n",
     "content_in_preamble", True),
    ("part hidden in the epilogue",
     HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
     f"--b\r\n{TEXT}--b--\r\n{_docx_part()}\r\n",
     "content_in_epilogue", True),
    ("base64 transfer encoding on a multipart",
     HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\nContent-Transfer-Encoding: base64"
     "\r\n\r\n" + _b64(f"--b\r\n{TEXT}--b\r\n{_docx_part()}--b--\r\n".encode()),
     "multipart_with_transfer_encoding", True),
    ("junk characters in base64",
     HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
     f"--b\r\n{TEXT}--b\r\n"
     + _docx_part(b64="\r\n".join(line[:30] + "!*" + line[30:]
                                  for line in _b64(make_docx([SECRET])).split("\r\n") if line))
     + "\r\n--b--\r\n",
     "base64_junk", True),
    ("upper-case BASE64",
     HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
     f"--b\r\n{TEXT}--b\r\n{_docx_part(cte='BASE64')}--b--\r\n",
     "transfer_encoding_case", False),
]


@pytest.mark.parametrize(("case", "raw", "kind", "ambiguous"), EVASIONS,
                         ids=[c[0] for c in EVASIONS])
def test_evasions_are_recorded_and_content_still_found(case, raw, kind, ambiguous):
    result = extract(raw.encode())
    kinds = _kinds(result)
    assert kind in kinds, kinds
    assert kinds[kind] is ambiguous
    assert _found(result), [(d.part, d.kind) for d in result.documents]


@pytest.mark.parametrize("inner", ["b", "bound"])
def test_colliding_boundaries_are_ambiguous_and_the_attachment_found(inner):
    raw = (HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           f"--b\r\nContent-Type: multipart/alternative; boundary=\"{inner}\"\r\n\r\n"
           f"--{inner}\r\n{TEXT}--{inner}\r\n{_docx_part()}--{inner}--\r\n--b--\r\n")
    result = extract(raw.encode())
    assert _found(result)
    assert any(d.ambiguous for d in result.defects)
    if inner == "bound":
        assert _kinds(result)["boundary_collision"] is True


def test_deep_multipart_nesting_is_cut_with_a_defect():
    raw = HEAD
    for level in range(60):
        raw += f"Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
    raw += TEXT + "".join(f"--b{level}--\r\n" for level in reversed(range(60)))
    result = extract(raw.encode(), Limits(max_depth=20))
    assert "nesting_too_deep" in _kinds(result)


def test_nested_attached_messages_are_labelled():
    inner = make_message("Tin gốc", attachments=[("kh.docx", DOCX, make_docx([SECRET]))])
    middle = make_message("Chuyển tiếp", attachments=[("goc.eml", "message/rfc822", inner)])
    outer = make_message("Chuyển tiếp lần hai",
                         attachments=[("fw.eml", "message/rfc822", middle)])
    result = extract(outer)
    parts = [d.part for d in result.documents]
    assert "attached message > attached message > body" in parts
    assert "attached message > attached message > attachment kh.docx" in parts
    assert _found(result)
    # Only the top-level header counts for the auto-forward rule.
    assert ("Subject", "Gửi tài liệu") in result.headers
    assert len([h for h in result.headers if h[0] == "From"]) == 1


def test_eml_declared_as_octet_stream_is_walked_as_a_message():
    inner = make_message("Tin gốc", attachments=[("kh.docx", DOCX, make_docx([SECRET]))])
    result = extract(make_message(attachments=[("fw.eml", "application/octet-stream", inner)]))
    assert "attachment fw.eml > attachment kh.docx" in [d.part for d in result.documents]
    assert any(a.part == "attachment fw.eml" and a.sniffed_type == "eml"
               for a in result.attachments)


def test_message_rfc822_with_base64_encoding_is_decoded():
    inner = make_message("Tin gốc", attachments=[("kh.docx", DOCX, make_docx([SECRET]))])
    raw = (HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           f"--b\r\n{TEXT}--b\r\nContent-Type: message/rfc822\r\n"
           f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(inner)}--b--\r\n")
    result = extract(raw.encode())
    assert _found(result)
    assert _kinds(result).get("message_with_transfer_encoding") is True


FILENAME_CASES = [
    ("RFC 2231 continuation",
     "Content-Disposition: attachment; filename*0*=UTF-8''T%E1%BB%9D%20tr%C3%ACnh;"
     " filename*1*=%2077.docx", "Tờ trình 77.docx"),
    ("RFC 2047 in name", "Content-Disposition: attachment;"
     " filename=\"=?UTF-8?B?xJDGoW4ga2nhur9uIG5naOG7iy5kb2N4?=\"", "Đơn kiến nghị.docx"),
    ("RFC 2047 Q in Content-Type name", "Content-Disposition: attachment",
     "Kế hoạch.docx"),
    ("raw UTF-8 bytes", "Content-Disposition: attachment; filename=\"Báo cáo.docx\"",
     "Báo cáo.docx"),
]


@pytest.mark.parametrize(("case", "disposition", "expected"), FILENAME_CASES,
                         ids=[c[0] for c in FILENAME_CASES])
def test_encoded_file_names_are_decoded(case, disposition, expected):
    ctype = f"Content-Type: {DOCX}"
    if case.startswith("RFC 2047 Q"):
        ctype += "; name=\"=?utf-8?Q?K=E1=BA=BF_ho=E1=BA=A1ch.docx?=\""
    raw = (HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           f"--b\r\n{TEXT}--b\r\n{ctype}\r\n{disposition}\r\n"
           f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(make_docx([SECRET]))}--b--\r\n")
    result = extract(raw.encode())
    assert expected in [a.filename for a in result.attachments]
    assert f"attachment {expected}" in [d.part for d in result.documents]


def test_uuencoded_file_in_the_body_is_examined():
    data = make_docx([SECRET])
    lines = ["Gửi anh tệp đính kèm:", "begin 644 ke-hoach.docx"]
    lines += [binascii.b2a_uu(data[i:i + 45]).decode().rstrip("\n")
              for i in range(0, len(data), 45)]
    lines += ["`", "end", "Trân trọng."]
    raw = HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + "\r\n".join(lines) + "\r\n"
    result = extract(raw.encode())
    body = next(d for d in result.documents if d.part == "body")
    assert body.lines == ("Gửi anh tệp đính kèm:", "Trân trọng.")
    assert "body > uuencoded ke-hoach.docx" in [d.part for d in result.documents]
    assert _found(result)
    assert "uuencode" in _kinds(result)


def test_tnef_attachments_and_body_are_examined():
    blob = make_tnef({"ke-hoach.docx": make_docx([SECRET])}, body="Nội dung trong TNEF")
    result = extract(make_message(attachments=[("winmail.dat", "application/ms-tnef", blob)]))
    parts = {d.part: d for d in result.documents}
    assert "attachment winmail.dat > ke-hoach.docx" in parts
    assert "Nội dung trong TNEF" in parts["attachment winmail.dat > body"].lines
    assert _found(result)
    tnef = next(a for a in result.attachments if a.part == "attachment winmail.dat")
    assert tnef.sniffed_type == "tnef"


@pytest.mark.skipif(not DEJAVU.exists(), reason="fonts-dejavu-core is not installed")
def test_type_mismatch_is_recorded_and_the_real_type_read():
    pdf = make_pdf(["QUYẾT ĐỊNH", SECRET])
    result = extract(make_message(attachments=[("anh.jpg", "image/jpeg", pdf)]))
    assert "type_mismatch" in _kinds(result)
    doc = next(d for d in result.documents if d.part == "attachment anh.jpg")
    assert doc.kind == "pdf"
    assert SECRET in doc.lines


def test_file_disguised_as_text_body_is_read_as_the_file():
    raw = (HEAD + "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + _b64(make_docx([SECRET])))
    result = extract(raw.encode())
    assert _found(result)
    assert "type_mismatch" in _kinds(result)


def test_bare_lf_message_is_parsed_and_noted():
    raw = make_message("Độ mật: Mật").replace(b"\r\n", b"\n")
    result = extract(raw)
    assert "bare_lf" in _kinds(result)
    assert "Độ mật: Mật" in next(d for d in result.documents if d.part == "body").lines


GARBAGE = [
    # (case, raw bytes, a defect kind that must be recorded, or "" for none)
    ("empty", b"", ""),
    ("binary noise", bytes(range(256)) * 20, "malformed_header"),
    ("headers only", b"From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n",
     "missing_boundary"),
    ("broken base64 everywhere", (HEAD + "Content-Type: application/pdf\r\n"
                                  "Content-Transfer-Encoding: base64\r\n\r\n%%%===\r\n").encode(),
     "base64_junk"),
    ("unknown charset", b"Content-Type: text/plain; charset=x-klingon\r\n\r\nSo\xe1\xbb\x91",
     "charset_mismatch"),
]


@pytest.mark.parametrize(("case", "raw", "kind"), GARBAGE, ids=[c[0] for c in GARBAGE])
def test_garbage_never_raises(case, raw, kind):
    result = extract(raw)
    if kind:
        assert kind in _kinds(result)
    else:
        assert result.defects == []
        assert result.headers == []


def test_header_values_mixing_raw_utf8_and_encoded_words():
    raw = ("From: a@x.vn\r\nSubject: Kế hoạch\r\n =?utf-8?Q?s=E1=BB=91?= =?utf-8?B?MTI=?=\r\n"
           "X-Broken: =?utf-8?B?xJDGoW4\r\n\r\nx").encode()
    assert extract(raw).headers[1:] == [("Subject", "Kế hoạch số12"),
                                        ("X-Broken", "=?utf-8?B?xJDGoW4")]


def test_big_message_fast_path_decodes_bodies_exactly():
    import os

    photo = b"\xff\xd8\xff" + os.urandom(3 * 1024 * 1024)
    docx = make_docx([SECRET] * 2000)
    raw = make_message(attachments=[("anh.jpg", "image/jpeg", photo), ("kh.docx", DOCX, docx)])
    raw = raw.replace(b"\n", b"\r\n")
    # A base64 blob hidden in the epilogue of a big message is restored before it is read.
    hidden = (f"\r\n{_docx_part('an.docx')}").encode()
    result = extract(raw + hidden)
    sizes = {a.part: a.size for a in result.attachments}
    assert sizes["attachment anh.jpg"] == len(photo)
    assert sizes["attachment kh.docx"] == len(docx)
    assert _found(result)
    assert any(d.part.startswith("body (epilogue) >") and d.kind == "docx"
               for d in result.documents)
    assert not [d for d in result.documents if d.part == "attachment anh.jpg"]


@pytest.mark.parametrize(("levels", "found"), [(5, True), (40, False)])
def test_deep_attached_messages(levels, found):
    raw = make_message(SECRET)
    for _ in range(levels):
        raw = make_message("Chuyển tiếp", attachments=[("fw.eml", "message/rfc822", raw)])
    result = extract(raw, Limits(max_depth=24))
    hit = any(SECRET in d.lines and d.part.count("attached message") == levels
              for d in result.documents)
    assert hit is found
    assert ("nesting_too_deep" in _kinds(result)) is not found


def test_part_count_limit():
    raw = make_message(attachments=[(f"{i}.txt", "text/plain", b"x") for i in range(30)])
    result = extract(raw, Limits(max_parts=10))
    assert "too_many_parts" in _kinds(result)
    assert len(result.attachments) < 30


RTF_BODY = (rb"{\rtf1\ansi\ansicpg1258\deff0{\fonttbl{\f0 Times New Roman;}}"
            rb"{\colortbl;\red0\green0\blue0;}{\*\generator Riched20;}\uc1\pard "
            rb"\u7910?Y BAN NH\'c2N D\'c2N\par{\*\htmltag84 <p>}\trowd\intbl M\u7852?T\cell "
            rb"S\u7889?: 5/KH\cell\row\pard"
            rb"{\field{\*\fldinst HYPERLINK x}{\fldrslt li\'ean k\u7871?t}}\par}")


def test_tnef_rtf_body_is_read():
    # compressed_rtf both builds the blob here and lets tnefparse inflate the body at run time.
    pytest.importorskip("compressed_rtf")
    blob = make_tnef({}, rtf=RTF_BODY)
    result = extract(make_message(attachments=[("winmail.dat", "application/ms-tnef", blob)]))
    doc = next(d for d in result.documents if d.part == "attachment winmail.dat > body (rtf)")
    assert doc.kind == "rtf"
    assert list(doc.lines) == ["ỦY BAN NHÂN DÂN", "MẬT", "Số: 5/KH", "liên kết"]


def test_rtf_attachment_is_read():
    result = extract(make_message(attachments=[("cv.rtf", "application/rtf", RTF_BODY)]))
    doc = next(d for d in result.documents if d.part == "attachment cv.rtf")
    assert "MẬT" in doc.lines


def test_message_partial_is_ambiguous():
    raw = (HEAD + "Content-Type: message/partial; id=\"x@y\"; number=1; total=2\r\n\r\n"
           + "From: a@b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMột nửa\r\n")
    result = extract(raw.encode())
    assert _kinds(result).get("partial_message") is True


def test_duplicate_boundary_parameter_reads_both_boundaries():
    raw = (HEAD + "Content-Type: multipart/mixed; boundary=\"AAA\"; boundary=\"BBB\"\r\n\r\n"
           f"--AAA\r\n{TEXT}--AAA--\r\n--BBB\r\n{TEXT}--BBB\r\n{_docx_part()}--BBB--\r\n")
    result = extract(raw.encode())
    assert _kinds(result).get("duplicate_parameter") is True
    assert _found(result)


NAME_CASES = [
    # (case, Content-Type name, Content-Disposition parameters, defect, ambiguous)
    ("two file names", None, 'filename="anh.jpg"; filename="qd.docx"', "duplicate_parameter", True),
    ("name and filename differ in type", "qd.docx", 'filename="anh.jpg"', "filename_conflict",
     True),
    ("name and filename differ in spelling", "QD 1.docx", 'filename="QD_1.docx"',
     "filename_conflict", False),
    ("same name twice encoded differently", "=?UTF-8?B?VOG7nSB0csOsbmguZG9jeA==?=",
     "filename*=UTF-8''T%E1%BB%9D%20tr%C3%ACnh.docx", "", False),
]


@pytest.mark.parametrize(("case", "name", "disposition", "kind", "ambiguous"), NAME_CASES,
                         ids=[c[0] for c in NAME_CASES])
def test_file_name_conflicts(case, name, disposition, kind, ambiguous):
    ctype = f"{DOCX}" + (f'; name="{name}"' if name else "")
    raw = (HEAD + "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           f"--b\r\n{TEXT}--b\r\nContent-Type: {ctype}\r\n"
           f"Content-Disposition: attachment; {disposition}\r\n"
           f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(make_docx([SECRET]))}--b--\r\n")
    result = extract(raw.encode())
    kinds = _kinds(result)
    assert _found(result)
    if kind:
        assert kinds[kind] is ambiguous
    else:
        assert "filename_conflict" not in kinds
        assert "duplicate_parameter" not in kinds


def test_nested_ambiguities_do_not_multiply_the_work():
    import time

    raw = "Content-Type: text/plain; charset=utf-8\r\n\r\nMẬT\r\n"
    for level in range(14):
        # Each level is read twice (two Content-Type fields): 2**14 readings without a cap.
        raw = (f"Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n"
               f"Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n"
               f"--b{level}\r\n{raw}\r\n--b{level}--\r\n")
    started = time.perf_counter()
    result = extract(("From: a@b\r\n" + raw).encode())
    assert time.perf_counter() - started < 5
    assert "too_many_parts" in _kinds(result)
    assert any("MẬT" in d.lines for d in result.documents)
