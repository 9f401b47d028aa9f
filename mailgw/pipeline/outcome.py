"""What the pipeline tells the protocol edge; the edge maps it to a reply in mailgw.smtp.replies."""

from __future__ import annotations

from dataclasses import dataclass


class StageReject(Exception):
    """A pre-acceptance stage refuses the message with a named reply (see mailgw.smtp.replies).

    `reply` is a complete SMTP reply line, taken from the replies module or built by its helpers.
    """

    def __init__(self, reply: str, reason: str = "") -> None:
        super().__init__(reason or reply)
        self.reply = reply
        self.reason = reason


@dataclass(frozen=True)
class Accepted:
    queue_id: str
