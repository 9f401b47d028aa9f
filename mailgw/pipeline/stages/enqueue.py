"""Stage `enqueue`: the header lines added at acceptance, then the durable commit.

Added here, because they describe the acceptance itself: our Received line, and (as an MSA does,
RFC 6409 section 8) a Message-ID and a Date when the client sent none. The commit goes through the
store writer (group commit); the 250 is given only after it returns.
"""

from __future__ import annotations

import functools
from datetime import datetime
from email.utils import format_datetime, make_msgid

from mailgw.pipeline.mail import Mail

_WITH = {(False, False): "ESMTP", (True, False): "ESMTPS", (False, True): "ESMTPA",
         (True, True): "ESMTPSA"}


def date_field(when: datetime) -> str:
    """`when` as an RFC 5322 date (to the second)."""
    return _date_field(when.replace(microsecond=0))


@functools.lru_cache(maxsize=8)
def _date_field(when: datetime) -> str:
    # Remembered: every message accepted in the same second has the same date (formatting it
    # was about 1 % of the gateway's CPU per message).
    return format_datetime(when)


def received_line(mail: Mail, hostname: str) -> bytes:
    s = mail.session
    protocol = _WITH[(s.tls, s.auth_user is not None)]
    rcpt = f"\r\n\tfor <{mail.rcpt_tos[0]}>" if len(mail.rcpt_tos) == 1 else ""
    helo = "".join(c for c in s.helo if 32 < ord(c) < 127)[:64] or "unknown"
    text = (f"Received: from {helo} ([{s.peer_ip}])\r\n\tby {hostname} (mailgw) "
            f"with {protocol} id {mail.queue_id}{rcpt};\r\n\t"
            f"{date_field(mail.received_at)}\r\n")
    return text.encode("utf-8", "replace")


def run(mail: Mail, hostname: str) -> None:
    mail.prepend.append(received_line(mail, hostname))
    if mail.session.listener == "submission":
        if not mail.message_id:
            mail.message_id = make_msgid(domain=hostname)
            mail.prepend.append(f"Message-ID: {mail.message_id}\r\n".encode("ascii"))
        if not mail.has_date:
            mail.prepend.append(f"Date: {date_field(mail.received_at)}\r\n".encode("ascii"))
    mail.note("enqueue", "prepared")
