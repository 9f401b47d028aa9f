"""What the `mailgw queue` commands do: list, show, retry, delete (sync, in the caller's session).

The CLI (cli/queue.py) only parses and prints; these functions read and change the store and
return plain data (dicts ready for --json).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from mailgw.queue.store import finish_if_final
from mailgw.store.models import FINAL_STATUSES, Message, QueueEntry, utcnow

# Not "held": quarantined mail is released by `mailgw quarantine release`, never by a retry.
RETRYABLE = ("queued", "deferred")


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") if t is not None else None


def _entry(e: QueueEntry) -> dict[str, Any]:
    return {
        "recipient": e.recipient, "status": e.status, "attempts": e.attempts,
        "last_attempt": _iso(e.last_attempt_at), "last_reply": e.last_reply,
        "next_attempt": None if e.status in FINAL_STATUSES else _iso(e.next_attempt_at),
        "next_hop": e.next_hop, "locked_by": e.locked_by, "locked_until": _iso(e.locked_until),
        "bounce_sent": e.bounce_sent,
    }


def _summary(m: Message) -> dict[str, Any]:
    return {
        "queue_id": m.queue_id, "received_at": _iso(m.received_at), "status": m.status,
        "direction": m.direction, "mail_from": m.mail_from, "size": m.size,
        "recipients": [{"recipient": e.recipient, "status": e.status} for e in m.entries],
    }


def list_messages(session: Session, status: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
    """Messages in the queue, oldest first.

    Without `status`: every message not done. With it: messages whose own status (accepted,
    parked, done) or one of whose recipients' status (queued, deferred, delivered…) is `status`.
    """
    q = select(Message).options(selectinload(Message.entries)).order_by(Message.id).limit(limit)
    if status is None:
        q = q.where(Message.status != "done")
    else:
        has_entry = select(QueueEntry.id).where(QueueEntry.message_pk == Message.id,
                                                QueueEntry.status == status).exists()
        q = q.where((Message.status == status) | has_entry)
    return [_summary(m) for m in session.scalars(q)]


def _get(session: Session, queue_id: str) -> Message | None:
    return session.scalars(select(Message).options(selectinload(Message.entries))
                           .where(Message.queue_id == queue_id)).one_or_none()


def show(session: Session, queue_id: str) -> dict[str, Any] | None:
    """Everything about one message (None if the id is unknown)."""
    m = _get(session, queue_id)
    if m is None:
        return None
    out = _summary(m)
    out.update({
        "message_id": m.message_id, "auth_user": m.auth_user, "client_ip": m.client_ip,
        "verdict": m.verdict, "processed_at": _iso(m.processed_at),
        "parked_stage": m.parked_stage, "parked_error": m.parked_error,
        "recipients": [_entry(e) for e in m.entries],
    })
    return out


def retry(session: Session, queue_id: str | None = None) -> int:
    """Make deferred (and parked) mail due now; `queue_id` None means every message.

    A parked message goes back to "accepted" so the post-acceptance stages run again. Returns the
    number of recipients made due. Entries a worker holds a lease on keep it.
    """
    now = utcnow()
    msgs = update(Message).where(Message.status == "parked")
    ents = update(QueueEntry).where(QueueEntry.status.in_(RETRYABLE))
    if queue_id is not None:
        m = session.scalars(select(Message).where(Message.queue_id == queue_id)).one_or_none()
        if m is None:
            raise LookupError(queue_id)
        msgs = msgs.where(Message.id == m.id)
        ents = ents.where(QueueEntry.message_pk == m.id)
    session.execute(msgs.values(status="accepted", parked_stage=None, parked_error=None)
                    .execution_options(synchronize_session=False))
    res = session.execute(ents.values(status="queued", next_attempt_at=now)
                          .execution_options(synchronize_session=False))
    return int(res.rowcount)  # type: ignore[attr-defined]


class HeldError(ValueError):
    """The operator asked the queue to do what only the quarantine commands may do."""


def delete(session: Session, queue_id: str, by: str = "operator") -> int:
    """Stop delivering a message: its open recipients become "deleted" (recorded, no bounce).

    Returns the number of recipients deleted; LookupError if the id is unknown, HeldError for a
    quarantined message (its fate belongs in the violation register: `mailgw quarantine delete`).
    """
    m = session.scalars(select(Message).where(Message.queue_id == queue_id)).one_or_none()
    if m is None:
        raise LookupError(queue_id)
    if m.status == "quarantined":
        raise HeldError(f"{queue_id} is held in quarantine; use `mailgw quarantine delete` "
                        "(it records who and why in the violation register)")
    now = utcnow()
    res = session.execute(
        update(QueueEntry)
        .where(QueueEntry.message_pk == m.id, QueueEntry.status.not_in(FINAL_STATUSES))
        .values(status="deleted", final_at=now, locked_by=None, locked_until=None,
                last_reply=f"deleted by {by} (mailgw queue delete) at {_iso(now)}")
        .execution_options(synchronize_session=False))
    session.flush()
    finish_if_final(session, m.id)
    return int(res.rowcount)  # type: ignore[attr-defined]
