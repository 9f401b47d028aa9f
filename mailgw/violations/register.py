"""The append-only, hash-chained register of violations and of the decisions about them.

Each record's `hash` is sha256 over the canonical JSON of all its other columns, `prev_hash`
(the previous record's hash) included; the first record's `prev_hash` is GENESIS. Editing,
deleting or reordering a record breaks the chain at that record, which `verify` names.

Appends are serialised so that concurrent writers (several processes, several nodes) never fork
the chain: on SQLite every transaction begins IMMEDIATE (mailgw.store.db), so the writer holds
the database write lock from the head read to the commit; on PostgreSQL a transaction-scoped
advisory lock does the same. The primary key on `seq` is the last line of defence: a second
record at the same position cannot be committed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgw.store.models import Violation, utcnow

GENESIS = "0" * 64
KINDS = ("violation", "quarantine_release", "quarantine_delete", "correction")
# Any constant 64-bit number, the same on every node: "mailgw violations" in ASCII, cut.
_PG_LOCK_KEY = 0x6D61696C67770431

_HASHED = ("seq", "reference", "created_at", "kind", "refers_to", "direction", "sender",
           "auth_user", "unit", "recipients", "action", "reasons", "rules", "evidence",
           "policy_version", "queue_id", "message_id", "actor", "note", "prev_hash")


def reference_for(seq: int, when: datetime) -> str:
    """`V-2026-000123`: the year of the record and its chain position."""
    return f"V-{when.astimezone(UTC).year}-{seq:06d}"


def _canonical_time(t: datetime) -> str:
    # The stores keep naive UTC to the microsecond; the canonical form is the same on both.
    return t.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def canonical(v: Violation) -> bytes:
    """The bytes the hash covers: sorted-key compact JSON of every hashed column."""
    data: dict[str, Any] = {}
    for name in _HASHED:
        value = getattr(v, name)
        data[name] = _canonical_time(value) if isinstance(value, datetime) else value
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def compute_hash(v: Violation) -> str:
    return hashlib.sha256(canonical(v)).hexdigest()


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    # SQLite: the transaction began IMMEDIATE and already holds the write lock.


def head(session: Session) -> Violation | None:
    """The last record of the chain (None when the register is empty)."""
    return session.scalars(select(Violation).order_by(Violation.seq.desc()).limit(1)).first()


def append(session: Session, *, kind: str = "violation", **fields: Any) -> Violation:
    """Add the next record in the caller's transaction (the caller commits); return it.

    `fields` are Violation columns (sender, unit, recipients, action, reasons, rules, evidence,
    policy_version, queue_id, message_id, refers_to, actor, note…).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown register record kind {kind!r}")
    _lock_chain(session)
    session.flush()  # earlier appends of this transaction count for the head
    last = head(session)
    seq = (last.seq + 1) if last is not None else 1
    now = fields.pop("created_at", None) or utcnow()
    # Microseconds are what both stores keep; the hash must see what is read back.
    now = now.astimezone(UTC)
    v = Violation(seq=seq, reference=reference_for(seq, now), created_at=now, kind=kind,
                  prev_hash=last.hash if last is not None else GENESIS)
    for name in _HASHED:
        if name in fields:
            setattr(v, name, fields.pop(name))
    if fields:
        raise TypeError(f"unknown register fields: {', '.join(sorted(fields))}")
    for name, default in (("refers_to", None), ("direction", ""), ("sender", ""),
                          ("auth_user", None), ("unit", ""), ("recipients", []),
                          ("action", ""), ("reasons", []), ("rules", []), ("evidence", []),
                          ("policy_version", ""), ("queue_id", ""), ("message_id", ""),
                          ("actor", ""), ("note", "")):
        if getattr(v, name) is None and default is not None:
            setattr(v, name, default)
    v.hash = compute_hash(v)
    session.add(v)
    session.flush()
    return v


@dataclass(frozen=True)
class Break:
    """The first place where the chain does not hold."""

    seq: int
    reference: str
    problem: str

    def __str__(self) -> str:
        return f"record seq {self.seq} ({self.reference}): {self.problem}"


@dataclass(frozen=True)
class VerifyResult:
    records: int
    head_seq: int
    head_hash: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _walk(session: Session, batch: int = 1000) -> Iterator[Violation]:
    last = 0
    while True:
        rows = session.scalars(select(Violation).where(Violation.seq > last)
                               .order_by(Violation.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(session: Session, expect_head: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the chain from the first record; name the first edited, deleted or moved record.

    `expect_head` (seq, hash) is a head kept elsewhere (`mailgw audit head`): records cut off
    the end of the chain can only be noticed against it.
    """
    expected_seq, prev_hash, count = 1, GENESIS, 0
    kept_hash_seen: str | None = None
    for v in _walk(session):
        count += 1
        if v.seq != expected_seq:
            return VerifyResult(count, v.seq, v.hash, Break(
                expected_seq, reference_for(expected_seq, v.created_at),
                f"missing (deleted); the chain jumps to seq {v.seq} ({v.reference})"))
        if v.reference != reference_for(v.seq, v.created_at):
            return VerifyResult(count, v.seq, v.hash, Break(
                v.seq, v.reference, "reference does not match its position or time (edited)"))
        if compute_hash(v) != v.hash:
            problem = "edited (its contents do not match its hash)"
            if v.prev_hash != prev_hash:
                problem = "edited or moved (its contents and its link do not match)"
            return VerifyResult(count, v.seq, v.hash, Break(v.seq, v.reference, problem))
        if v.prev_hash != prev_hash:
            return VerifyResult(count, v.seq, v.hash, Break(
                v.seq, v.reference,
                "does not follow the previous record (reordered, or a record before it was "
                "deleted or replaced)"))
        if expect_head is not None and v.seq == expect_head[0]:
            kept_hash_seen = v.hash
        expected_seq, prev_hash = v.seq + 1, v.hash
    last_seq = expected_seq - 1
    if expect_head is not None:
        want_seq, want_hash = expect_head
        if want_seq > last_seq:
            return VerifyResult(count, last_seq, prev_hash, Break(
                last_seq + 1, f"seq {last_seq + 1}",
                f"missing: the kept head is seq {want_seq}, the chain ends at seq {last_seq} "
                "(records deleted from the end)"))
        if kept_hash_seen != want_hash:
            return VerifyResult(count, last_seq, prev_hash, Break(
                want_seq, f"seq {want_seq}", "differs from the kept head (chain rewritten)"))
    return VerifyResult(count, last_seq, prev_hash, None)
