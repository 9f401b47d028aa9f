"""Whole messages built here (python-docx, openpyxl, fpdf2, zipfile) through extract + policy.

Golden cases in the spirit of the corpus, with other units, numbers, wordings and formats.
"""

import io
import unicodedata
import zipfile
from email import encoders
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from pathlib import Path

import pytest

from policies import Policy, load_policy

docx = pytest.importorskip("docx")
openpyxl = pytest.importorskip("openpyxl")

SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "phutho.toml"

# A draft from another unit: blank number and day, old tone placement, en dashes.
DRAFT = [
    "UỶ BAN NHÂN DÂN HUYỆN CẨM KHÊ", "PHÒNG TÀI NGUYÊN VÀ MÔI TRƯỜNG",
    "CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập – Tự do – Hạnh phúc",
    "Số:        /TNMT-ĐĐ", "Cẩm Khê, ngày      tháng 11 năm 2026",
    "V/v rà soát hồ sơ cấp giấy chứng nhận", "Kính gửi: UBND các xã, thị trấn",
    "Nơi nhận:", "- Như trên;", "- Lưu: VT.", "TRƯỞNG PHÒNG",
]
PLAIN = ["Danh sách cán bộ tham gia tập huấn", "Sở Tài chính đề nghị các đơn vị gửi danh sách",
         "UBND huyện đã có ý kiến", "Số: 5"]


def make_docx(lines: list[str], table_lines: tuple[str, ...] = ()) -> bytes:
    d = docx.Document()
    if table_lines:
        t = d.add_table(rows=1, cols=1)
        t.cell(0, 0).text = table_lines[0]
        for line in table_lines[1:]:
            t.cell(0, 0).add_paragraph(line)
    for line in lines:
        d.add_paragraph(line)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def make_xlsx(rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def message(body: str = "Kính gửi anh, em gửi tài liệu.",
            files: tuple[tuple[str, bytes, str], ...] = (), headers: dict | None = None,
            attach_message: bytes | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = "Văn thư <vanthu.tnmt@camkhe.phutho.gov.vn>"
    m["To"] = "dongnghiep@camkhe.phutho.gov.vn"
    m["Subject"] = "Tài liệu"
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    for name, blob, ctype in files:
        main, sub = ctype.split("/")
        m.add_attachment(blob, maintype=main, subtype=sub, filename=name)
    if attach_message is not None:
        from email import message_from_bytes, policy

        m.add_attachment(message_from_bytes(attach_message, policy=policy.default))
    return m.as_bytes()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(SHIPPED)


def verdict(policy: Policy, raw: bytes, rcpts: list[str],
            mail_from: str = "vanthu.tnmt@camkhe.phutho.gov.vn") -> tuple[str, list[str]]:
    v = policy.evaluate(policy.classify(raw, mail_from, rcpts, domains=["phutho.gov.vn"]))
    return v.action, list(v.reasons)


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_draft_docx_to_webmail_is_rejected(policy: Policy) -> None:
    raw = message(files=(("du-thao.docx", make_docx(DRAFT), "application/octet-stream"),))
    assert verdict(policy, raw, ["canbo.tnmt@gmail.com"]) == (
        "reject", ["official_document_to_webmail"])


def test_nfd_body_to_webmail_is_rejected(policy: Policy) -> None:
    body = unicodedata.normalize("NFD", "\n".join(DRAFT))
    assert verdict(policy, message(body), ["x@yahoo.com"]) == (
        "reject", ["official_document_to_webmail"])


def test_official_docx_in_nested_zip(policy: Policy) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("cv.docx", make_docx(DRAFT))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("ho-so/inner.zip", inner.getvalue())
    raw = message(files=(("ho so.zip", outer.getvalue(), "application/zip"),))
    assert verdict(policy, raw, ["a@outlook.com"]) == ("reject", ["official_document_to_webmail"])


def test_plain_list_docx_is_only_a_flag(policy: Policy) -> None:
    raw = message(files=(("ds.docx", make_docx(PLAIN), DOCX),))
    assert verdict(policy, raw, ["a@gmail.com"]) == ("flag", ["webmail_attachment"])


def test_stamp_in_a_table_cell_blocks_internal_mail(policy: Policy) -> None:
    raw = message(files=(("bc.docx", make_docx(["Nội dung báo cáo"], ("Số: 12/BC-CA", "MẬT")),
                          DOCX),))
    assert verdict(policy, raw, ["b@phutho.gov.vn"]) == ("reject", ["secret_marking"])


def test_honey_and_password_are_not_markings(policy: Policy) -> None:
    sheet = make_xlsx([["Sản phẩm", "Giá"], ["MẬT ONG RỪNG", 250000], ["Mật độ nuôi", 3],
                       ["Độ mật: Thường", ""], ["mật khẩu wifi", "abc"]])
    raw = message(files=(("gia.xlsx", sheet, "application/octet-stream"),))
    assert verdict(policy, raw, ["b@phutho.gov.vn"]) == ("allow", [])


def test_official_pasted_in_attached_message(policy: Policy) -> None:
    inner = message("\n".join(DRAFT))
    raw = message("Chuyển tiếp", attach_message=inner, headers={"X-Note": "Fwd"})
    assert verdict(policy, raw, ["a@icloud.com"]) == ("reject", ["official_document_to_webmail"])


def test_auto_forward_header_only_at_top_level(policy: Policy) -> None:
    inner = message("Lịch công tác", headers={"Auto-Submitted": "auto-forwarded"})
    raw = message("Gửi kèm thư", attach_message=inner)
    assert verdict(policy, raw, ["a@gmail.com"]) == ("allow", [])
    raw = message("Lịch công tác", headers={"Resent-From": "vanthu@phutho.gov.vn"})
    assert verdict(policy, raw, ["a@gmail.com"]) == ("reject", ["auto_forward"])


def test_bcc_webmail_recipient_counts(policy: Policy) -> None:
    raw = message(files=(("a.pdf.", b"%PDF-1.4\n%%EOF\n", "application/pdf"),))
    rcpts = ["dongnghiep@camkhe.phutho.gov.vn", "an.danh+bcc@GMAIL.COM."]
    assert verdict(policy, raw, rcpts) == ("flag", ["webmail_attachment"])


def test_inbound_official_from_webmail_is_flagged(policy: Policy) -> None:
    raw = message(files=(("to-trinh.docx", make_docx(DRAFT), DOCX),))
    assert verdict(policy, raw, ["vanthu@phutho.gov.vn"], mail_from="truong.thcs@yahoo.com.vn") \
        == ("flag", ["inbound_official_via_webmail"])


def test_lookalike_recipient_is_not_webmail(policy: Policy) -> None:
    raw = message(files=(("du-thao.docx", make_docx(DRAFT), DOCX),))
    assert verdict(policy, raw, ["x@gmaiI.com"]) == ("allow", [])


def _cp1258(text: str) -> bytes:
    """Windows-1258 as Vietnamese mail clients write it: base letters precomposed, tones as
    combining marks."""
    tones = "\u0300\u0301\u0303\u0309\u0323"
    out = []
    for ch in text:
        d = unicodedata.normalize("NFD", ch)
        base = "".join(c for c in d if c not in tones)
        out.append(unicodedata.normalize("NFC", base) + "".join(c for c in d if c in tones))
    return "".join(out).encode("cp1258")


def test_windows_1258_body_with_combining_tones(policy: Policy) -> None:
    part = MIMEBase("text", "plain", charset="windows-1258")
    part.set_payload(_cp1258("\n".join(DRAFT)))
    encoders.encode_base64(part)
    m = MIMEMultipart()
    m["Subject"] = "=?windows-1258?q?Du_thao?="
    m.attach(part)
    assert verdict(policy, m.as_bytes(), ["a@gmail.com"]) == (
        "reject", ["official_document_to_webmail"])
