"""What `mailgw quarantine list|show|release|delete` does (sync, in the caller's transaction).

A quarantined message is a stored Message with status "quarantined" whose queue entries have
status "quarantined": no delivery worker claims it and `mailgw queue retry` leaves it alone.
Releasing makes its entries due at once; deleting makes them final ("deleted"). Either decision
is a new register record referring to the violation, with who decided and why.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from mailgw.queue.store import finish_if_final
from mailgw.store.models import Message, QueueEntry, Violation, utcnow
from mailgw.violations import register

HELD = "quarantined"


class QuarantineError(Exception):
    """Unknown id, or a message that is not (any more) in quarantine."""


def _find(session: Session, ident: str) -> Message:
    """A message by queue id or by the reference of its violation."""
    queue_id = ident
    if ident.upper().startswith("V-"):
        v = session.scalars(select(Violation).where(Violation.reference == ident.upper())
                            ).one_or_none()
        if v is None:
            raise QuarantineError(f"no violation record {ident}")
        queue_id = v.queue_id
    m = session.scalars(select(Message).options(selectinload(Message.entries))
                        .where(Message.queue_id == queue_id)).one_or_none()
    if m is None:
        raise QuarantineError(f"no message {ident}")
    return m


def _summary(m: Message) -> dict[str, Any]:
    d = m.verdict_detail or {}
    evidence = d.get("evidence", [])
    return {
        "queue_id": m.queue_id, "reference": d.get("reference", ""),
        "received_at": m.received_at.isoformat(timespec="seconds"), "status": m.status,
        "sender": m.mail_from, "recipients": list(m.recipients), "size": m.size,
        "subject": d.get("subject", ""), "unit": d.get("unit", ""),
        "reasons": d.get("reasons", []), "rules": d.get("rules", []),
        "evidence_summary": "; ".join(f"{e.get('signal')}: {e.get('text')}"
                                      for e in evidence[:3]) + (" …" if len(evidence) > 3 else ""),
    }


def list_held(session: Session, limit: int = 1000) -> list[dict[str, Any]]:
    """Messages in quarantine, oldest first, with a summary of the evidence."""
    q = select(Message).where(Message.status == HELD).order_by(Message.id).limit(limit)
    return [_summary(m) for m in session.scalars(q)]


def show(session: Session, ident: str) -> dict[str, Any]:
    """Everything about one quarantined (or formerly quarantined) message: full evidence and
    the header fields as stored."""
    m = _find(session, ident)
    d = m.verdict_detail or {}
    out = _summary(m)
    end = m.content.find(b"\r\n\r\n")
    head = m.content if end < 0 else m.content[: end + 2]
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(head)
    out.update({
        "message_id": m.message_id, "auth_user": m.auth_user, "client_ip": m.client_ip,
        "evidence": d.get("evidence", []), "policy_version": d.get("policy_version", ""),
        "headers": [[k, str(v)] for k, v in parsed.items()],
        "entries": [{"recipient": e.recipient, "status": e.status} for e in m.entries],
    })
    return out


def _decide(session: Session, ident: str, kind: str, by: str, reason: str) -> tuple[Message, str]:
    if not reason.strip():
        raise QuarantineError("a reason is required (it goes into the register)")
    m = _find(session, ident)
    if m.status != HELD:
        raise QuarantineError(f"message {m.queue_id} is not in quarantine (status {m.status})")
    d = m.verdict_detail or {}
    rec = register.append(
        session, kind=kind, refers_to=d.get("reference") or None, direction=m.direction,
        sender=m.mail_from, auth_user=m.auth_user, unit=d.get("unit", ""),
        recipients=list(m.recipients), action="release" if kind == "quarantine_release"
        else "delete", reasons=list(d.get("reasons", [])), rules=list(d.get("rules", [])),
        policy_version=d.get("policy_version", ""), queue_id=m.queue_id,
        message_id=m.message_id, actor=by, note=reason.strip())
    return m, rec.reference


def release(session: Session, ident: str, by: str, reason: str) -> str:
    """Deliver a quarantined message (due at once); returns the decision's reference."""
    m, ref = _decide(session, ident, "quarantine_release", by, reason)
    now = utcnow()
    session.execute(update(QueueEntry).where(QueueEntry.message_pk == m.id,
                                             QueueEntry.status == HELD)
                    .values(status="queued", next_attempt_at=now)
                    .execution_options(synchronize_session=False))
    session.execute(update(Message).where(Message.id == m.id).values(status="accepted")
                    .execution_options(synchronize_session=False))
    return ref


def delete(session: Session, ident: str, by: str, reason: str) -> str:
    """Never deliver a quarantined message; returns the decision's reference."""
    m, ref = _decide(session, ident, "quarantine_delete", by, reason)
    now = utcnow()
    session.execute(update(QueueEntry).where(QueueEntry.message_pk == m.id,
                                             QueueEntry.status == HELD)
                    .values(status="deleted", final_at=now,
                            last_reply=f"deleted from quarantine by {by} ({ref})"[:2000])
                    .execution_options(synchronize_session=False))
    session.execute(update(Message).where(Message.id == m.id).values(status="accepted")
                    .execution_options(synchronize_session=False))
    session.flush()
    finish_if_final(session, m.id)
    return ref
