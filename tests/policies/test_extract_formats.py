"""Text extraction per file format: every place a document can hold text gives lines."""

from __future__ import annotations

import pytest

from policies.extract import Limits, extract

from .docgen import (
    DEJAVU,
    add_zip_member,
    cp1258,
    make_docx,
    make_message,
    make_odf,
    make_pdf,
    make_xlsx,
    make_zip,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
needs_font = pytest.mark.skipif(not DEJAVU.exists(), reason="fonts-dejavu-core is not installed")


def _pdf(lines: list[str]) -> bytes:
    if not DEJAVU.exists():
        pytest.skip("fonts-dejavu-core is not installed")
    return make_pdf(lines)


def _only_document(raw: bytes, part: str):
    docs = [d for d in extract(raw).documents if d.part == part]
    assert len(docs) == 1, [d.part for d in extract(raw).documents]
    return docs[0]


FILE_CASES = [
    # (case, builder, declared type, file name, sniffed kind, lines that must be present)
    ("docx paragraphs", lambda: make_docx(["UBND TỈNH PHÚ THỌ", "Số: 12/QĐ-UBND"]), DOCX,
     "qd.docx", "docx", ["UBND TỈNH PHÚ THỌ", "Số: 12/QĐ-UBND"]),
    ("docx table cells", lambda: make_docx(table=[["SỞ TÀI CHÍNH", "CỘNG HÒA XÃ HỘI"],
                                                  ["Số: 5/STC", "MẬT"]]), DOCX,
     "t.docx", "docx", ["SỞ TÀI CHÍNH", "CỘNG HÒA XÃ HỘI", "Số: 5/STC", "MẬT"]),
    ("docx header and footer", lambda: make_docx(["thân"], header="TUYỆT MẬT", footer="Nơi nhận:"),
     DOCX, "h.docx", "docx", ["TUYỆT MẬT", "thân", "Nơi nhận:"]),
    ("docx runs joined",
     lambda: make_docx(split_runs=[["MẬ", "T"], ["Số: 4", "279/UBND", "-KGVX"]]),
     DOCX, "r.docx", "docx", ["MẬT", "Số: 4279/UBND-KGVX"]),
    ("docx footnote", lambda: make_docx(["x"], footnote="Độ mật: Mật"), DOCX, "f.docx", "docx",
     ["x", "Độ mật: Mật"]),
    ("docx declared octet-stream", lambda: make_docx(["KẾ HOẠCH"]), "application/octet-stream",
     "x.docx", "docx", ["KẾ HOẠCH"]),
    ("xlsx every sheet", lambda: make_xlsx({"A": [["STT", "Huyện"], [1, "Lâm Thao"]],
                                            "B": [["TỐI MẬT"]]}, hidden="B"), XLSX,
     "s.xlsx", "xlsx", ["STT", "Huyện", "1", "Lâm Thao", "TỐI MẬT"]),
    ("odt paragraphs and page header", lambda: make_odf(["KẾ HOẠCH", "Số: 98/KH-SGDĐT"],
                                                        header="MẬT"),
     "application/vnd.oasis.opendocument.text", "k.odt", "odt",
     ["MẬT", "KẾ HOẠCH", "Số: 98/KH-SGDĐT"]),
    ("ods cells", lambda: make_odf([], cells=[["Huyện", "Số hộ"], ["Thanh Ba", "120"]]),
     "application/vnd.oasis.opendocument.spreadsheet", "s.ods", "ods",
     ["Huyện", "Số hộ", "Thanh Ba", "120"]),
    ("pdf lines", lambda: _pdf(["ỦY BAN NHÂN DÂN", "Số: 2445/QĐ-UBND", "QUYẾT ĐỊNH"]),
     "application/pdf", "qd.pdf", "pdf", ["ỦY BAN NHÂN DÂN", "Số: 2445/QĐ-UBND", "QUYẾT ĐỊNH"]),
    ("plain text attachment", lambda: "Độ mật: Tối mật\nnội dung".encode(), "text/plain",
     "ghi-chu.txt", "text", ["Độ mật: Tối mật", "nội dung"]),
]


@pytest.mark.parametrize(("case", "build", "ctype", "name", "kind", "lines"), FILE_CASES,
                         ids=[c[0] for c in FILE_CASES])
def test_file_text_is_extracted(case, build, ctype, name, kind, lines):
    raw = make_message(attachments=[(name, ctype, build())])
    result = extract(raw)
    doc = _only_document(raw, f"attachment {name}")
    assert doc.kind == kind
    for line in lines:
        assert line in doc.lines, (line, doc.lines)
    attachment = next(a for a in result.attachments if a.part == f"attachment {name}")
    assert attachment.filename == name
    assert attachment.sniffed_type == kind
    assert not attachment.unreadable


def test_docx_text_box_is_read_once():
    raw = make_message(attachments=[("tb.docx", DOCX, make_docx(["x"], textbox="MẬT"))])
    doc = _only_document(raw, "attachment tb.docx")
    assert doc.lines.count("MẬT") == 1
    assert "Nội dung có hộp văn bản" in doc.lines


def test_body_text_and_html_are_documents():
    html = ("<html><head><style>p{color:red}</style><title>t</title></head><body>"
            "<p>UBND TỈNH <b>PHÚ</b> THỌ</p><table><tr><td>Số: 1/UBND-VP</td><td>MẬT</td></tr>"
            "</table><div>Nơi nhận:<br>- Như trên;</div><script>var x='ẩn';</script></body></html>")
    raw = make_message("Dòng một\nDòng hai", html=html)
    result = extract(raw)
    text = _only_document(raw, "body")
    assert text.kind == "text"
    assert text.lines == ("Dòng một", "Dòng hai")
    page = next(d for d in result.documents if d.part == "body (html)")
    assert page.kind == "html"
    for line in ("UBND TỈNH PHÚ THỌ", "Số: 1/UBND-VP", "MẬT", "Nơi nhận:", "- Như trên;"):
        assert line in page.lines
    assert not any("color" in line or "ẩn" in line for line in page.lines)


CHARSET_CASES = [
    # (case, charset header value, transfer encoding, body bytes)
    ("utf-8 base64", "utf-8", "base64", "Số: 12/QĐ-UBND".encode()),
    ("utf-8 QP upper case", "UTF-8", "Quoted-Printable", "Số: 12/QĐ-UBND".encode()),
    ("windows-1258", "windows-1258", "8bit", cp1258("Số: 12/QĐ-UBND")),
    ("wrong charset label", "us-ascii", "8bit", "Số: 12/QĐ-UBND".encode()),
    ("no charset, cp1258 bytes", None, "8bit", cp1258("Số: 12/QĐ-UBND")),
]


def _encode(data: bytes, cte: str) -> bytes:
    import base64
    import quopri

    if cte.lower() == "base64":
        return base64.encodebytes(data)
    if cte.lower() == "quoted-printable":
        return quopri.encodestring(data)
    return data


@pytest.mark.parametrize(("case", "charset", "cte", "body"), CHARSET_CASES,
                         ids=[c[0] for c in CHARSET_CASES])
def test_charsets(case, charset, cte, body):
    import unicodedata

    ctype = "text/plain" + (f"; charset={charset}" if charset else "")
    raw = (f"From: a@x.vn\r\nMIME-Version: 1.0\r\nContent-Type: {ctype}\r\n"
           f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + _encode(body, cte)
    doc = _only_document(raw, "body")
    # windows-1258 spells some tones with combining marks; the classifiers normalise (NFC).
    assert [unicodedata.normalize("NFC", line) for line in doc.lines] == ["Số: 12/QĐ-UBND"]


def test_control_characters_are_removed():
    raw = "From: a@x.vn\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nM\x00Ậ\u200bT\x07\r\n"
    doc = _only_document(raw.encode(), "body")
    assert doc.lines == ("MẬT",)


def test_headers_are_decoded_in_order():
    raw = (b"Received: from a\r\nFrom: =?UTF-8?B?VsSDbiB0aMawIFVCTkQ=?= <vt@phutho.gov.vn>\r\n"
           b"Subject: =?utf-8?Q?K=E1=BA=BF_ho=E1=BA=A1ch?=\r\n part two\r\n"
           b"X-Forwarded-To: b@gmail.com\r\n\r\nbody\r\n")
    assert extract(raw).headers == [
        ("Received", "from a"),
        ("From", "Văn thư UBND <vt@phutho.gov.vn>"),
        ("Subject", "Kế hoạch part two"),
        ("X-Forwarded-To", "b@gmail.com"),
    ]


@needs_font
def test_encrypted_pdf_is_marked():
    data = make_pdf(["MẬT"], password="bimat")
    result = extract(make_message(attachments=[("a.pdf", "application/pdf", data)]))
    attachment = next(a for a in result.attachments if a.part == "attachment a.pdf")
    assert attachment.encrypted
    assert any(d.kind == "encrypted_document" for d in result.defects)
    assert not [d for d in result.documents if d.part == "attachment a.pdf"]


CORRUPT_CASES = [
    ("truncated docx", "x.docx", DOCX, lambda: make_docx(["Số: 1/UBND"])[:900]),
    ("docx with garbage document.xml", "y.docx", DOCX,
     lambda: make_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"\x00\x01"})),
    ("pdf garbage", "z.pdf", "application/pdf", lambda: b"%PDF-1.7\n" + b"\x00garbage" * 50),
    ("xlsx with broken xml", "w.xlsx", XLSX, lambda: make_zip(
        {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook><sheets",
         "xl/worksheets/sheet1.xml": b"\xff\xfe<<<"})),
]


@pytest.mark.parametrize(("case", "name", "ctype", "build"), CORRUPT_CASES,
                         ids=[c[0] for c in CORRUPT_CASES])
def test_corrupt_files_become_unreadable_facts(case, name, ctype, build):
    result = extract(make_message(attachments=[(name, ctype, build())]))
    attachment = next(a for a in result.attachments if a.part == f"attachment {name}")
    assert attachment.unreadable or any(
        d.kind == "unreadable" and d.part.startswith(f"attachment {name}") for d in result.defects
    )


def test_files_embedded_in_a_docx_are_examined():
    inner = make_docx(["TỐI MẬT", "Số: 3/KH-CAT"])
    outer = add_zip_member(make_docx(["Xem tài liệu nhúng"]),
                           "word/embeddings/Microsoft_Word_Document1.docx", inner)
    result = extract(make_message(attachments=[("bao-cao.docx", DOCX, outer)]))
    label = "attachment bao-cao.docx > Microsoft_Word_Document1.docx"
    doc = next(d for d in result.documents if d.part == label)
    assert doc.kind == "docx"
    assert "TỐI MẬT" in doc.lines
    assert any(d.kind == "embedded_file" and d.part == label for d in result.defects)


@needs_font
def test_files_embedded_in_a_pdf_are_examined():
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Tài liệu"]))))
    writer.add_attachment("phu-luc.docx", make_docx(["Độ mật: Mật"]))
    out = io.BytesIO()
    writer.write(out)
    result = extract(make_message(attachments=[("tl.pdf", "application/pdf", out.getvalue())]))
    doc = next(d for d in result.documents if d.part == "attachment tl.pdf > phu-luc.docx")
    assert "Độ mật: Mật" in doc.lines
    assert "Tài liệu" in next(d for d in result.documents if d.part == "attachment tl.pdf").lines


def test_password_protected_office_file_is_encrypted():
    # What Office writes for a protected .docx: an OLE compound file whose directory names an
    # "EncryptedPackage" stream (the real package is AES-encrypted inside it).
    data = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1016
            + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 50
            + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 2000)
    result = extract(make_message(attachments=[("qd.docx", DOCX, data)]))
    attachment = next(a for a in result.attachments if a.part == "attachment qd.docx")
    assert attachment.sniffed_type == "encrypted_office"
    assert attachment.encrypted
    assert any(d.kind == "encrypted_document" for d in result.defects)
    assert not any(d.kind == "type_mismatch" for d in result.defects)


@needs_font
def test_pdf_with_only_an_owner_password_is_read():
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["Độ mật: Mật"]))))
    writer.encrypt(user_password="", owner_password="chu-so-huu")
    out = io.BytesIO()
    writer.write(out)
    result = extract(make_message(attachments=[("o.pdf", "application/pdf", out.getvalue())]))
    assert not next(a for a in result.attachments if a.part == "attachment o.pdf").encrypted
    assert "Độ mật: Mật" in next(d for d in result.documents if d.part == "attachment o.pdf").lines


XML_ATTACKS = [
    ("external entity", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
     b"<w:body><w:p><w:r><w:t>A&x;B</w:t></w:r></w:p></w:body></w:document>"),
    ("billion laughs", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "haha">'
     + b"".join(b'<!ENTITY %c "' % (98 + i) + b"&%c;" % (97 + i) * 10 + b'">' for i in range(9))
     + b']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
     b"<w:body><w:p><w:r><w:t>A&j;B</w:t></w:r></w:p></w:body></w:document>"),
]


@pytest.mark.parametrize(("case", "xml"), XML_ATTACKS, ids=[c[0] for c in XML_ATTACKS])
def test_xml_entities_are_never_expanded(case, xml):
    data = make_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": xml})
    result = extract(make_message(attachments=[("e.docx", DOCX, data)]))
    lines = [line for d in result.documents if d.part == "attachment e.docx" for line in d.lines]
    assert not any("root:" in line or "haha" in line for line in lines)
    assert sum(len(line) for line in lines) < 100


def test_byte_order_mark_decides_the_encoding():
    body = "Độ mật: Mật".encode("utf-16")
    raw = b"From: a@x.vn\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    import base64

    doc = _only_document(raw + base64.encodebytes(body), "body")
    assert doc.lines == ("Độ mật: Mật",)


@needs_font
def test_pdf_page_limit():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("DejaVu", fname=str(DEJAVU))
    pdf.set_font("DejaVu", size=12)
    for number in range(5):
        pdf.add_page()
        pdf.cell(0, 8, f"Trang {number + 1}")
    raw = make_message(attachments=[("dai.pdf", "application/pdf", bytes(pdf.output()))])
    result = extract(raw, Limits(max_pdf_pages=2))
    doc = _only_document(raw, "attachment dai.pdf")
    assert len(doc.lines) == 5  # the default limits read every page
    limited = next(d for d in result.documents if d.part == "attachment dai.pdf")
    assert limited.lines == ("Trang 1", "Trang 2")
    assert any(d.kind == "size_limit" for d in result.defects)


_SML = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def test_xlsx_cell_kinds_read_as_a_spreadsheet_shows_them():
    """Shared strings (plain, rich runs, phonetic runs left out), inline strings, values as
    written, only a cell's own first <v>, broken indexes, header and footer codes removed."""
    shared = (f'<sst {_SML}><si><t>Sở Tài chính</t></si>'
              '<si><r><rPr><b/></rPr><t>TỐI </t></r><r><t>MẬT</t></r></si>'
              '<si><t>東京</t><rPh sb="0" eb="2"><t>トウキョウ</t></rPh></si>'
              '<si><t>a<t>b</t></t></si><si/></sst>').encode()
    sheet = (f'<worksheet {_SML}><sheetData><row r="1">'
             '<c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
             '<c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c>'
             '<c r="E1" t="s"><v>4</v></c><c r="F1" t="s"><v>99</v></c>'
             '<c r="G1" t="s"><v>x</v></c></row><row r="2">'
             '<c r="A2"><v>12.5</v></c><c r="B2" t="n"><f>A2*2</f><v>25</v></c>'
             '<c r="C2" t="str"><v>Số: 5/STC</v><v>second</v></c><c r="D2" t="b"><v>1</v></c>'
             '<c r="E2" t="inlineStr"><is><r><t>Độ mật: </t></r><r><t>Mật</t></r>'
             '</is><v>ignored</v></c>'
             '<c r="F2"><is><t>not inline</t></is></c><c r="G2" s="1"/>'
             '<c r="H2"><x><v>deep</v></x></c><c r="I2"><v/></c></row></sheetData>'
             '<headerFooter><oddHeader>&amp;L&amp;"Arial,Bold"MẬT&amp;CTrang &amp;P&amp;R&amp;12 '
             'UBND</oddHeader><oddFooter>Nơi nhận:</oddFooter></headerFooter></worksheet>').encode()
    workbook = (f'<workbook {_SML} xmlns:r="http://schemas.openxmlformats.org/officeDocument/'
                '2006/relationships"><sheets><sheet name="A" sheetId="1" r:id="rId1"/></sheets>'
                '</workbook>').encode()
    rels = (b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b'<Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>')
    data = make_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": workbook,
                     "xl/_rels/workbook.xml.rels": rels, "xl/sharedStrings.xml": shared,
                     "xl/worksheets/sheet1.xml": sheet})
    doc = _only_document(make_message(attachments=[("c.xlsx", XLSX, data)]), "attachment c.xlsx")
    assert doc.kind == "xlsx"
    assert list(doc.lines) == [
        "Sở Tài chính", "TỐI MẬT", "東京", "ab", "12.5", "25", "Số: 5/STC", "1",
        "Độ mật: Mật", "MẬT", "Trang", " UBND", "Nơi nhận:",
    ]
