"""Writing accepted mail into the store: one `Message` row and one `QueueEntry` per recipient.

Called by the listener's group-commit writer (and by the DSN generator) inside an open session;
the caller commits, and only after that commit is the message acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from mailgw.pipeline.mail import new_queue_id
from mailgw.store.direct import Direct
from mailgw.store.models import MESSAGES, QUEUE_ENTRIES, Message, QueueEntry, utcnow


def recipient_domain(address: str) -> str:
    """The lower-case domain of `address` (empty if it has none)."""
    return address.rpartition("@")[2].lower().rstrip(".")


def enqueue_rows(session: Session, mail_from: str, recipients: Sequence[str], content: bytes,
                 direction: str, **fields: Any) -> Message:
    """Add a message and its queue entries to `session` (no commit); return the Message.

    `fields` are further Message columns (queue_id, message_id, auth_user, client_ip, verdict…;
    a spooled message gives `spool` and its `size`, with empty content). Every entry is due now.
    """
    now = utcnow()
    fields.setdefault("queue_id", new_queue_id())
    fields.setdefault("received_at", now)
    fields.setdefault("size", len(content))
    msg = Message(mail_from=mail_from, recipients=list(recipients), content=content,
                  direction=direction, **fields)
    for rcpt in recipients:
        msg.entries.append(QueueEntry(recipient=rcpt, domain=recipient_domain(rcpt),
                                      status="queued", next_attempt_at=now))
    session.add(msg)
    return msg


# Every accepted message takes these two (straight on the driver on SQLite: mailgw.store.direct).
_INSERT_MESSAGES = Direct(insert(MESSAGES))
_INSERT_ENTRIES = Direct(insert(QUEUE_ENTRIES))


def insert_many(session: Session, messages: Sequence[dict[str, Any]], now: datetime,
                leases: Sequence[tuple[str, datetime] | None] | None = None,
                ) -> list[tuple[int, list[int]]]:
    """`enqueue_rows` for many messages at once, with Core statements (no ORM objects).

    Each dict holds Message columns (content, mail_from, direction, queue_id…) and
    "recipients"; `size` is filled in unless given (a spooled message has empty content).
    `leases`, one per message: (node id, until) inserts that message's entries leased.
    Returns (message id, [entry ids in recipient order]) per message, in order.
    """
    rows = [{"size": len(m["content"]), **m} for m in messages]
    pks = _INSERT_MESSAGES.insert(session, rows)
    entries = []
    for pk, m, lease in zip(pks, messages, leases or [None] * len(messages), strict=True):
        locked_by, locked_until = lease if lease else (None, None)
        entries += [{"message_pk": pk, "recipient": r, "domain": recipient_domain(r),
                     "status": "queued", "next_attempt_at": now, "locked_by": locked_by,
                     "locked_until": locked_until} for r in m["recipients"]]
    ids = iter(_INSERT_ENTRIES.insert(session, entries))
    return [(pk, [next(ids) for _ in m["recipients"]])
            for pk, m in zip(pks, messages, strict=True)]
