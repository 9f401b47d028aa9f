"""What a transport reports for one recipient: delivered, temporary or permanent failure.

Transports (smtp, mx, maildir) return one `Result` per recipient; the worker records them in the
store (delivered / deferred / bounced / expired) and logs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DELIVERED = "delivered"
TEMPORARY = "temporary"
PERMANENT = "permanent"

_ENHANCED = re.compile(r"^\s*\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class Result:
    """The outcome for one recipient; `reply` is the next hop's reply or our own explanation."""

    kind: str   # delivered | temporary | permanent
    reply: str
    remote: str = ""  # the host that answered, e.g. "mx1.example.org[192.0.2.1]:25"

    @property
    def status_code(self) -> str:
        """The RFC 3463 enhanced status code: from the reply if it has one, else by class."""
        m = _ENHANCED.match(self.reply)
        if m:
            return m.group(1)
        return {DELIVERED: "2.0.0", TEMPORARY: "4.0.0"}.get(self.kind, "5.0.0")


def from_reply(code: int, message: str, remote: str = "") -> Result:
    """A Result for an SMTP reply code and text: 2xx delivered, 4xx temporary, else permanent."""
    text = f"{code} {' '.join(message.split())}".strip()
    if 200 <= code < 300:
        return Result(DELIVERED, text, remote)
    if 400 <= code < 500 or code < 200:
        # Codes below 200 are not SMTP replies (aiosmtplib uses -1 for "no reply"): retry.
        return Result(TEMPORARY, text, remote)
    return Result(PERMANENT, text, remote)


def temporary(reason: str, remote: str = "") -> Result:
    return Result(TEMPORARY, reason, remote)


def permanent(reason: str, remote: str = "") -> Result:
    return Result(PERMANENT, reason, remote)
