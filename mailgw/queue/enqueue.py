"""Writing accepted mail into the store: one `Message` row and one `QueueEntry` per recipient.

Called by the listener's group-commit writer (and by the DSN generator) inside an open session;
the caller commits, and only after that commit is the message acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from mailgw.pipeline.mail import new_queue_id
from mailgw.store.models import Message, QueueEntry, utcnow


def recipient_domain(address: str) -> str:
    """The lower-case domain of `address` (empty if it has none)."""
    return address.rpartition("@")[2].lower().rstrip(".")


def enqueue_rows(session: Session, mail_from: str, recipients: Sequence[str], content: bytes,
                 direction: str, **fields: Any) -> Message:
    """Add a message and its queue entries to `session` (no commit); return the Message.

    `fields` are further Message columns (queue_id, message_id, auth_user, client_ip, verdict…).
    Every entry is due now.
    """
    now = utcnow()
    fields.setdefault("queue_id", new_queue_id())
    fields.setdefault("received_at", now)
    msg = Message(mail_from=mail_from, recipients=list(recipients), content=content,
                  size=len(content), direction=direction, **fields)
    for rcpt in recipients:
        msg.entries.append(QueueEntry(recipient=rcpt, domain=recipient_domain(rcpt),
                                      status="queued", next_attempt_at=now))
    session.add(msg)
    return msg
