"""Reading the register for `mailgw violations list|show` (filters in, plain data out), and
adding a correction (`mailgw violations correct`): a new record referring to the old one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgw.store.models import Violation
from mailgw.violations import register

CSV_FIELDS = ("reference", "time", "kind", "refers_to", "action", "reasons", "rules", "unit",
              "direction", "sender", "auth_user", "recipients", "queue_id", "message_id",
              "policy_version", "actor", "note")


def as_dict(v: Violation, evidence: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "seq": v.seq, "reference": v.reference,
        "time": v.created_at.isoformat(timespec="seconds"), "kind": v.kind,
        "refers_to": v.refers_to, "action": v.action, "reasons": list(v.reasons or []),
        "rules": list(v.rules or []), "unit": v.unit, "direction": v.direction,
        "sender": v.sender, "auth_user": v.auth_user, "recipients": list(v.recipients or []),
        "queue_id": v.queue_id, "message_id": v.message_id,
        "policy_version": v.policy_version, "actor": v.actor, "note": v.note,
    }
    if evidence:
        out["evidence"] = list(v.evidence or [])
        out["hash"] = v.hash
        out["prev_hash"] = v.prev_hash
    return out


def list_records(session: Session, *, since: datetime | None = None,
                 until: datetime | None = None, unit: str | None = None,
                 reason: str | None = None, action: str | None = None,
                 sender: str | None = None, kind: str | None = "violation",
                 limit: int = 10000) -> list[dict[str, Any]]:
    """Records in chain order; `since` inclusive, `until` exclusive; `kind` None: every kind."""
    q = select(Violation).order_by(Violation.seq)
    if since is not None:
        q = q.where(Violation.created_at >= since)
    if until is not None:
        q = q.where(Violation.created_at < until)
    if unit:
        q = q.where(Violation.unit == unit.lower())
    if action:
        q = q.where(Violation.action == action)
    if sender:
        q = q.where(Violation.sender == sender.lower())
    if kind:
        q = q.where(Violation.kind == kind)
    out = []
    for v in session.scalars(q):
        # JSON containment differs between the engines; the reason filter runs here.
        if reason and reason not in (v.reasons or []):
            continue
        out.append(as_dict(v))
        if len(out) >= limit:
            break
    return out


def show(session: Session, reference: str) -> dict[str, Any] | None:
    """One record with the later records that refer to it (quarantine decisions, corrections)."""
    v = session.scalars(select(Violation).where(Violation.reference == reference.upper())
                        ).one_or_none()
    if v is None:
        return None
    out = as_dict(v)
    out["followed_by"] = [as_dict(r, evidence=False) for r in session.scalars(
        select(Violation).where(Violation.refers_to == v.reference).order_by(Violation.seq))]
    return out


def correct(session: Session, reference: str, by: str, note: str) -> str:
    """Record a correction of `reference` (the old record stays as it was); its reference."""
    if not note.strip():
        raise ValueError("a correction needs a text saying what is corrected and why")
    v = session.scalars(select(Violation).where(Violation.reference == reference.upper())
                        ).one_or_none()
    if v is None:
        raise LookupError(f"no violation record {reference}")
    rec = register.append(
        session, kind="correction", refers_to=v.reference, direction=v.direction,
        sender=v.sender, auth_user=v.auth_user, unit=v.unit, recipients=list(v.recipients),
        action=v.action, reasons=list(v.reasons), rules=list(v.rules),
        policy_version=v.policy_version, queue_id=v.queue_id, message_id=v.message_id,
        actor=by, note=note.strip())
    return rec.reference
