"""Document and message generators for the extraction tests (docx, xlsx, pdf, odt, zip, 7z, MIME).

Every file the tests examine is built here from text, so a test states its input in full and no
binary fixture hides what it checks.
"""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _textbox_run(text: str) -> str:
    """A w:r holding a DrawingML text box with a VML fallback, as Word writes it."""
    para = f'<w:p><w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'
    return (
        f'<w:r xmlns:w="{_W}" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
        'xmlns:v="urn:schemas-microsoft-com:vml">'
        "<mc:AlternateContent><mc:Choice Requires=\"wps\"><w:drawing><wps:wsp><wps:txbx>"
        f"<w:txbxContent>{para}</w:txbxContent></wps:txbx></wps:wsp></w:drawing></mc:Choice>"
        "<mc:Fallback><w:pict><v:shape><v:textbox>"
        f"<w:txbxContent>{para}</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback>"
        "</mc:AlternateContent></w:r>"
    )


def make_docx(
    paragraphs: list[str] = (),  # type: ignore[assignment]
    *,
    table: list[list[str]] | None = None,
    header: str | None = None,
    footer: str | None = None,
    textbox: str | None = None,
    split_runs: list[list[str]] | None = None,
    footnote: str | None = None,
) -> bytes:
    """A .docx with the given body paragraphs and optional table, header, footer, text box,
    paragraphs split into several runs, and a footnote."""
    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    for runs in split_runs or []:
        paragraph = document.add_paragraph()
        for piece in runs:
            paragraph.add_run(piece)
    if textbox:
        paragraph = document.add_paragraph("Nội dung có hộp văn bản")
        paragraph._p.append(parse_xml(_textbox_run(textbox)))
    section = document.sections[0]
    if header:
        section.header.paragraphs[0].text = header
    if footer:
        section.footer.paragraphs[0].text = footer
    out = io.BytesIO()
    document.save(out)
    data = out.getvalue()
    if footnote:
        notes = (
            f'<w:footnotes xmlns:w="{_W}"><w:footnote w:id="1"><w:p><w:r>'
            f"<w:t>{footnote}</w:t></w:r></w:p></w:footnote></w:footnotes>"
        )
        data = add_zip_member(data, "word/footnotes.xml", notes.encode())
    return data


def add_zip_member(data: bytes, name: str, content: bytes) -> bytes:
    """A copy of a zip (or office file) with one more member."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(name, content)
    return out.getvalue()


def make_xlsx(sheets: dict[str, list[list[object]]], hidden: str | None = None) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        if name == hidden:
            sheet.sheet_state = "hidden"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def make_pdf(lines: list[str], password: str | None = None) -> bytes:
    """A PDF with one text line per given line, in DejaVu Sans (Vietnamese needs a TTF font)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("DejaVu", fname=str(DEJAVU))
    pdf.set_font("DejaVu", size=12)
    for line in lines:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    data = bytes(pdf.output())
    if password:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer.encrypt(user_password=password, owner_password=password + "-owner")
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    return data


def make_odf(paragraphs: list[str], *, header: str | None = None,
             cells: list[list[str]] | None = None) -> bytes:
    """An .odt (or an .ods when `cells` is given) built with odfpy."""
    from odf.opendocument import OpenDocumentSpreadsheet, OpenDocumentText
    from odf.style import Footer, Header, MasterPage, PageLayout
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    if cells is not None:
        doc = OpenDocumentSpreadsheet()
        table = Table(name="Sheet1")
        for row in cells:
            tr = TableRow()
            for value in row:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=value))
                tr.addElement(cell)
            table.addElement(tr)
        doc.spreadsheet.addElement(table)
    else:
        doc = OpenDocumentText()
        for text in paragraphs:
            doc.text.addElement(P(text=text))
    if header:
        layout = PageLayout(name="pm1")
        doc.automaticstyles.addElement(layout)
        master = MasterPage(name="Standard", pagelayoutname=layout)
        head = Header()
        head.addElement(P(text=header))
        master.addElement(head)
        master.addElement(Footer())
        doc.masterstyles.addElement(master)
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def make_zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return out.getvalue()


def make_7z(members: dict[str, bytes], password: str | None = None,
            header_encryption: bool = True) -> bytes:
    import py7zr

    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password,
                            header_encryption=bool(password) and header_encryption) as archive:
        for name, content in members.items():
            archive.writestr(content, name)
    return out.getvalue()


def make_message(
    body: str = "Kính gửi anh chị,",
    *,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    headers: dict[str, str] | None = None,
) -> bytes:
    """A MIME message with a text body, optional HTML alternative, and (name, type, data) files."""
    msg = EmailMessage()
    msg["From"] = "a@phutho.gov.vn"
    msg["To"] = "b@gmail.com"
    msg["Subject"] = "Gửi tài liệu"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/", 1)
        if maintype == "message":
            from email import message_from_bytes, policy

            msg.add_attachment(message_from_bytes(data, policy=policy.default),
                               filename=filename)
        else:
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def cp1258(text: str) -> bytes:
    """Encode Vietnamese in windows-1258, which spells most toned letters as letter + tone mark."""
    import unicodedata

    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        try:
            out += char.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        base, *marks = unicodedata.normalize("NFD", char)
        if marks:
            composed = unicodedata.normalize("NFC", base + marks[0])
            try:
                out += composed.encode("cp1258")
                marks = marks[1:]
            except UnicodeEncodeError:
                out += base.encode("cp1258")
        else:
            out += base.encode("cp1258")
        for mark in marks:
            out += mark.encode("cp1258")
    return bytes(out)


def make_tnef(files: dict[str, bytes], body: str = "", rtf: bytes = b"") -> bytes:
    """A minimal TNEF (winmail.dat) blob: an optional attBody and one attachment per file.

    Layout per MS-OXTNEF: signature, key, then attributes (level, id, type, length, data,
    checksum); each attachment starts with attAttachRendData, then attAttachTitle and
    attAttachData.
    """
    import struct

    def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack(
            "<H", checksum)

    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x10000))  # attTnefVersion
    if body:
        out += attribute(1, 0x800C, 0x0002, body.encode())  # attBody
    for name, data in files.items():
        out += attribute(2, 0x9002, 0x0006, b"\x01\x00" + b"\xff" * 12)  # attAttachRendData
        out += attribute(2, 0x8010, 0x0001, name.encode() + b"\x00")  # attAttachTitle
        out += attribute(2, 0x800F, 0x0006, data)  # attAttachData
    if rtf:
        # attMAPIProps holding PR_RTF_COMPRESSED (0x1009, binary), as Outlook sends the body.
        import compressed_rtf

        packed = compressed_rtf.compress(rtf)
        props = struct.pack("<IHHII", 1, 0x0102, 0x1009, 1, len(packed)) + packed
        props += b"\x00" * (-len(packed) % 4)
        out += attribute(1, 0x9003, 0x0006, props)
    return out


def set_zip_encrypted(data: bytes) -> bytes:
    """Mark every member of a zip as encrypted (general-purpose flag bit 0), as a traditional
    PKWARE-encrypted archive is; Python's zipfile cannot write real encryption."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (pos := out.find(signature, start)) != -1:
            out[pos + offset] |= 0x01
            start = pos + 4
    return bytes(out)


def zeros_zip(name: str, size: int) -> bytes:
    """A zip with one member of `size` zero bytes, written in chunks: a small-on-disk bomb."""
    out = io.BytesIO()
    chunk = b"\x00" * (1024 * 1024)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf, \
            zf.open(name, "w", force_zip64=True) as member:
        left = size
        while left > 0:
            member.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return out.getvalue()
