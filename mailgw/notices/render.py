"""Rendering notices: the template context, the Jinja2 environment and the MIME message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import jinja2

from mailgw.store.models import utcnow

PACKAGE_TEMPLATES = Path(__file__).with_name("templates")

# Evidence signals in plain words (Vietnamese, English) for people who never read a policy file.
SIGNALS: dict[str, tuple[str, str]] = {
    "secret_marking": ("dấu chỉ độ mật", "state-secret marking"),
    "issuing_body": ("tên cơ quan ban hành", "issuing body"),
    "national_motto": ("quốc hiệu, tiêu ngữ", "national motto"),
    "document_number": ("số, ký hiệu văn bản", "document number and symbol"),
    "place_date": ("địa danh, ngày tháng", "place and date"),
    "subject_or_type": ("trích yếu hoặc tên loại văn bản", "subject line or document type"),
    "recipients_block": ("nơi nhận", "recipients block"),
    "signing_authority": ("thẩm quyền ký", "signing authority"),
    "document_attachment": ("tệp tài liệu đính kèm", "document-type attachment"),
    "auto_submitted": ("thư được gửi tự động", "automatically submitted"),
    "resent_from": ("thư được chuyển tiếp tự động", "automatic resend"),
    "resent_to": ("thư được chuyển tiếp tự động", "automatic resend"),
    "x_forwarded_to": ("thư được chuyển tiếp tự động", "automatic forward"),
    "x_forwarded_for": ("thư được chuyển tiếp tự động", "automatic forward"),
    "encrypted": ("tệp được mã hóa", "encrypted file"),
    "unreadable": ("tệp không đọc được", "unreadable file"),
    "ambiguous_mime": ("cấu trúc thư không rõ ràng", "ambiguous message structure"),
    "lookalike_domain": ("tên miền giả mạo", "look-alike domain"),
}


def _where(part: str) -> str:
    if part == "envelope":
        return "phong bì thư / envelope"
    if part == "header":
        return "tiêu đề thư / header"
    if part.startswith("attachment "):
        return "tệp đính kèm " + part[len("attachment "):]
    if part == "body":
        return "nội dung thư"
    return part


def plain_evidence(evidence: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Each evidence item as `where`, `what_vi`, `what_en`, `text` for the templates."""
    out = []
    for e in evidence:
        signal = e.get("signal", "")
        vi, en = SIGNALS.get(signal, (signal.replace("_", " "), signal.replace("_", " ")))
        if signal.startswith("sender_"):
            vi, en = "người gửi", "sender"
        elif signal.startswith("recipient_"):
            vi, en = "người nhận là hộp thư miễn phí" if "webmail" in signal else \
                "người nhận", "recipient" + (" on free webmail" if "webmail" in signal else "")
        out.append({"where": _where(e.get("part", "")), "what_vi": vi, "what_en": en,
                    "text": e.get("text", "")})
    return out


@dataclass(frozen=True)
class Notice:
    """One rendered notice, ready for enqueue_rows."""

    to: str
    audience: str   # sender | unit_head | admins
    subject: str
    content: bytes


class NoticeRenderer:
    """Templates from `override_dir` first (if given), then the package's."""

    def __init__(self, from_address: str, override_dir: str = "", hostname: str = "") -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir:
            loaders.append(jinja2.FileSystemLoader(override_dir))
        loaders.append(jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES)))
        # Plain-text mail: no HTML escaping; undefined names are errors, not empty text.
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True, autoescape=False)  # noqa: S701
        self.from_address = from_address
        self.hostname = hostname or from_address.rpartition("@")[2]

    def render(self, audience: str, to: str, context: dict[str, Any]) -> Notice:
        template = "sender.txt.j2" if audience == "sender" else "officials.txt.j2"
        ctx = dict(context, audience=audience, to=to,
                   evidence_plain=plain_evidence(context.get("evidence", [])))
        body = self.env.get_template(template).render(**ctx)
        subject = self.env.get_template("subject.txt.j2").render(**ctx).strip()
        msg = EmailMessage(policy=SMTP)
        msg["From"] = f"Hệ thống kiểm soát thư công vụ <{self.from_address}>"
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = make_msgid(domain=self.hostname)
        # Marks the notice as machine-made: vacation responders and mailing lists stay quiet.
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Mailgw-Notice"] = f"{audience}; ref={context.get('reference', '')}"
        msg.set_content(body, charset="utf-8", cte="quoted-printable")
        return Notice(to, audience, subject, msg.as_bytes())
