"""Delivery status notifications (bounces): RFC 3464 multipart/report to the original sender.

Built with the stdlib email package: a human-readable part (Vietnamese with diacritics, then
English), a message/delivery-status part (Reporting-MTA, per recipient Final-Recipient, Action,
Status, Diagnostic-Code) and the original headers as text/rfc822-headers. A bounce has the null
sender `<>`, comes from `delivery.bounce_from`, and is queued through the store like any other
message (direction "local"), in the same transaction that records the failure. A message with the
null sender is itself a bounce and never gets one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.charset import QP, Charset
from email.message import Message as EmailMessage
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid

from sqlalchemy.orm import Session

from mailgw.delivery.result import Result
from mailgw.queue.enqueue import enqueue_rows
from mailgw.store import spool
from mailgw.store.models import Message, utcnow

log = logging.getLogger("mailgw.delivery")

_SMTP = policy.SMTP


def _utf8_qp() -> Charset:
    # Quoted-printable keeps the report readable in a raw mail view (base64 would not).
    cs = Charset("utf-8")
    cs.body_encoding = QP
    return cs


@dataclass(frozen=True)
class Failure:
    """One recipient the report is about."""

    recipient: str
    status: str             # RFC 3463 code, e.g. "5.1.1" or "4.4.7" (expired)
    diagnostic: str         # the next hop's reply, or our own reason
    remote: str = ""
    last_attempt: datetime | None = None
    expired: bool = False


def original_headers(content: bytes) -> str:
    """The header block of a stored message, as text (undecodable bytes replaced)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, _ = content.partition(sep)
        if found:
            break
    else:
        head = content
    return head.decode("utf-8", "replace").replace("\r\n", "\n") + "\n"


def _human_text(reporting_mta: str, arrival: datetime, failures: Sequence[Failure],
                max_age_days: float) -> str:
    when = arrival.strftime("%d/%m/%Y %H:%M UTC")
    lines_vi = [f"  <{f.recipient}>: {f.diagnostic}" for f in failures]
    lines_en = lines_vi
    expired = any(f.expired for f in failures)
    vi = [
        f"Đây là thư thông báo tự động của hệ thống thư điện tử {reporting_mta}.",
        "",
        f"Thư của quý vị gửi lúc {when} không chuyển được tới người nhận dưới đây:",
        "",
        *lines_vi,
        "",
    ]
    if expired:
        vi += [f"Hệ thống đã thử gửi lại nhiều lần trong {max_age_days:g} ngày nhưng không "
               "thành công nên đã dừng gửi.", ""]
    vi += ["Vui lòng kiểm tra lại địa chỉ người nhận hoặc liên hệ bộ phận quản trị thư điện tử "
           "của đơn vị. Phần đầu của thư gốc được đính kèm bên dưới.", ""]
    en = [
        f"This is an automatically generated message from the mail system at {reporting_mta}.",
        "",
        f"Your message sent at {when} could not be delivered to the following recipient(s):",
        "",
        *lines_en,
        "",
    ]
    if expired:
        en += [f"The mail system kept retrying for {max_age_days:g} days without success and "
               "has given up.", ""]
    en += ["Please check the recipient address or contact your mail administrator. The headers "
           "of the original message are attached below.", ""]
    return "\n".join([*vi, "-" * 60, "", *en])


def build_dsn(*, reporting_mta: str, bounce_from: str, to: str, queue_id: str,
              arrival: datetime, content: bytes, failures: Sequence[Failure],
              max_age_days: float = 5.0) -> bytes:
    """The bounce message as bytes (CRLF line endings)."""
    report = MIMEMultipart("report", report_type="delivery-status", policy=_SMTP)
    del report["MIME-Version"]
    report["From"] = f"Mail Delivery System <{bounce_from}>"
    report["To"] = f"<{to}>"
    report["Subject"] = "Thư không gửi được / Undelivered Mail Returned to Sender"
    report["Date"] = format_datetime(utcnow())
    report["Message-ID"] = make_msgid("dsn", domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"
    report["MIME-Version"] = "1.0"

    human = MIMEText(_human_text(reporting_mta, arrival, failures, max_age_days), "plain",
                     _utf8_qp(), policy=_SMTP)  # type: ignore[arg-type]
    del human["MIME-Version"]
    human["Content-Description"] = "Notification"
    report.attach(human)

    per_message = EmailMessage(policy=_SMTP)
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["X-Mailgw-Queue-ID"] = queue_id
    per_message["Arrival-Date"] = format_datetime(arrival)
    blocks = [per_message]
    for f in failures:
        block = EmailMessage(policy=_SMTP)
        block["Final-Recipient"] = f"rfc822; {f.recipient}"
        block["Action"] = "failed"
        block["Status"] = f.status
        if f.remote:
            block["Remote-MTA"] = f"dns; {f.remote}"
        block["Diagnostic-Code"] = f"smtp; {f.diagnostic}"
        if f.last_attempt is not None:
            block["Last-Attempt-Date"] = format_datetime(f.last_attempt)
        blocks.append(block)
    status = MIMEBase("message", "delivery-status", policy=_SMTP)
    del status["MIME-Version"]
    status["Content-Description"] = "Delivery report"
    status.set_payload(blocks)  # type: ignore[arg-type]
    report.attach(status)

    headers_text = original_headers(content)
    charset = "us-ascii" if headers_text.isascii() else _utf8_qp()
    headers = MIMEText(headers_text, "rfc822-headers", charset, policy=_SMTP)  # type: ignore[arg-type]
    del headers["MIME-Version"]
    headers["Content-Description"] = "Undelivered Message Headers"
    report.attach(headers)
    return report.as_bytes(policy=_SMTP)


def failure_status(entry_status: str, reply: str) -> str:
    """The Status field for a failed entry: the reply's own code, or 4.4.7 for expiry."""
    code = Result("permanent", reply).status_code
    if entry_status == "expired":
        # The last attempt was a temporary failure: report the expiry, not the 4xx.
        return "4.4.7"
    return code if code.startswith("5.") else "5.0.0"


def queue_bounce(session: Session, message_pk: int, *, reporting_mta: str, bounce_from: str,
                 max_age: float) -> Message | None:
    """Queue one DSN for the message's failed entries that have none yet (no commit).

    Returns the bounce's Message row, or None when there is nothing to report or the original
    has the null sender.
    """
    m = session.get(Message, message_pk)
    if m is None or not m.mail_from:
        return None
    pending = [e for e in m.entries
               if e.status in ("bounced", "expired") and not e.bounce_sent]
    if not pending:
        return None
    failures = [Failure(e.recipient, failure_status(e.status, e.last_reply),
                        e.last_reply or "delivery failed", _remote_of(e.next_hop),
                        e.last_attempt_at, e.status == "expired")
                for e in pending]
    try:
        head = spool.head_of(m, spool.for_bind(session.get_bind()))
    except spool.SpoolError as exc:
        # The sender still hears that delivery failed, without the original's headers.
        log.warning("%s: bounce without the original headers: %s", m.queue_id, exc)
        head = b""
    data = build_dsn(reporting_mta=reporting_mta, bounce_from=bounce_from, to=m.mail_from,
                     queue_id=m.queue_id, arrival=m.received_at, content=head,
                     failures=failures, max_age_days=max_age / 86400)
    for e in pending:
        e.bounce_sent = True
    return enqueue_rows(session, "", [m.mail_from], data, "local",
                        verdict_detail={"bounce_of": m.queue_id})


def _remote_of(next_hop: str) -> str:
    # Only SMTP next hops are MTAs worth naming in Remote-MTA.
    if next_hop.startswith("smtp:["):
        return next_hop[len("smtp:["):].partition("]")[0]
    return ""
