"""Worker-side queue operations: claim due entries with a lease, record results, release.

Sync SQLAlchemy, called from worker threads (never from the event loop). Every function works in
the caller's session and does not commit: the caller wraps it in `Session.begin()`, so a claim or a
result and the bounce it causes are one transaction.

Several nodes may share one PostgreSQL database: a claim selects due rows `FOR UPDATE SKIP LOCKED`
and stamps them with a lease (`locked_by`, `locked_until`); a leased row is not due for anyone
else until the lease runs out, so a crashed node's entries are replayed by the others. On SQLite
the engine begins every transaction with BEGIN IMMEDIATE, so select-then-stamp is atomic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, bindparam, or_, select, update
from sqlalchemy.orm import Session

from mailgw.delivery.result import DELIVERED, PERMANENT, Result
from mailgw.store.direct import Direct
from mailgw.store.models import (
    FINAL_STATUSES,
    MESSAGES,
    QUEUE_ENTRIES,
    Message,
    QueueEntry,
    utcnow,
)

ACTIVE_STATUSES = ("queued", "deferred")


class _EntryState(NamedTuple):
    """What recording a result needs to know of an entry."""

    id: int
    message_pk: int
    status: str
    attempts: int
    locked_by: str | None
    locked_until: datetime | None
    next_attempt_at: datetime
    final_at: datetime | None


@dataclass(frozen=True)
class Claimed:
    """One leased entry, with what the worker needs to route and group it."""

    entry_id: int
    message_pk: int
    queue_id: str
    mail_from: str
    recipient: str
    domain: str
    attempts: int


def claim_due(session: Session, node_id: str, limit: int, lease_seconds: float,
              now: datetime | None = None) -> list[Claimed]:
    """Lease up to `limit` due entries to `node_id`; entries of one message come together."""
    now = now or utcnow()
    due = (
        select(QueueEntry.id)
        .join(Message, Message.id == QueueEntry.message_pk)
        .where(QueueEntry.status.in_(ACTIVE_STATUSES),
               QueueEntry.next_attempt_at <= now,
               or_(QueueEntry.locked_until.is_(None), QueueEntry.locked_until <= now),
               Message.status != "parked")
        .order_by(QueueEntry.next_attempt_at, QueueEntry.message_pk, QueueEntry.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Rows another node is claiming right now are skipped, not waited for.
        due = due.with_for_update(skip_locked=True, of=QueueEntry)
    ids = list(session.scalars(due))
    if not ids:
        return []
    session.execute(
        update(QueueEntry).where(QueueEntry.id.in_(ids))
        .values(locked_by=node_id, locked_until=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False))
    rows = session.execute(
        select(QueueEntry.id, QueueEntry.message_pk, Message.queue_id, Message.mail_from,
               QueueEntry.recipient, QueueEntry.domain, QueueEntry.attempts)
        .join(Message, Message.id == QueueEntry.message_pk)
        .where(QueueEntry.id.in_(ids))
        .order_by(QueueEntry.next_attempt_at, QueueEntry.message_pk, QueueEntry.id))
    return [Claimed(*row) for row in rows]


def renew_leases(session: Session, node_id: str, entry_ids: Iterable[int],
                 lease_seconds: float) -> int:
    """Extend our leases on entries still being delivered (a long transfer keeps its rows)."""
    ids = list(entry_ids)
    if not ids:
        return 0
    until = utcnow() + timedelta(seconds=lease_seconds)
    res = session.execute(
        update(QueueEntry)
        .where(QueueEntry.id.in_(ids), QueueEntry.locked_by == node_id)
        .values(locked_until=until).execution_options(synchronize_session=False))
    return res.rowcount  # type: ignore[attr-defined]


def release(session: Session, node_id: str, entry_ids: Iterable[int]) -> int:
    """Give back our leases without an attempt (shutdown, parked message): due again at once."""
    ids = list(entry_ids)
    if not ids:
        return 0
    res = session.execute(
        update(QueueEntry)
        .where(QueueEntry.id.in_(ids), QueueEntry.locked_by == node_id)
        .values(locked_by=None, locked_until=None).execution_options(synchronize_session=False))
    return res.rowcount  # type: ignore[attr-defined]


def backoff(attempts: int, retry_initial: float, retry_max: float) -> float:
    """Seconds before the next try after `attempts` failed ones: initial, doubling, capped."""
    return float(min(retry_max, retry_initial * (2 ** max(0, attempts - 1))))


def lock_messages(session: Session, message_pks: Iterable[int]) -> None:
    """Lock message rows in id order (PostgreSQL; SQLite holds the database lock already).

    Whoever records results for several messages in one transaction takes these locks first and
    in one order, so two nodes never wait on each other in a cycle.
    """
    pks = sorted(set(message_pks))
    if pks and session.get_bind().dialect.name == "postgresql":
        session.execute(select(Message.id).where(Message.id.in_(pks)).order_by(Message.id)
                        .with_for_update())


# Statements built once (expanding IN lists): building them per call cost as much as running
# them, on the path every delivered message takes; run through Direct (mailgw.store.direct),
# which skips SQLAlchemy's per-call work on SQLite.
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_ENTRY_STATES = Direct(select(*(QUEUE_ENTRIES.c[name] for name in _EntryState._fields))
                       .where(QUEUE_ENTRIES.c.id.in_(_IDS)), expanding="ids")
_RECEIVED = Direct(select(MESSAGES.c.id, MESSAGES.c.received_at)
                   .where(MESSAGES.c.id.in_(_IDS)), expanding="ids")
_STILL_OPEN = Direct(select(QUEUE_ENTRIES.c.message_pk)
                     .where(QUEUE_ENTRIES.c.message_pk.in_(_IDS),
                            QUEUE_ENTRIES.c.status.not_in(FINAL_STATUSES)).distinct(),
                     expanding="ids")
_MARK_DONE = Direct(update(MESSAGES).where(MESSAGES.c.id.in_(_IDS)).values(status="done"),
                    expanding="ids")
# One statement for every outcome, run once per entry (executemany): the columns an attempt sets.
_RECORD = Direct(
    update(QUEUE_ENTRIES)
    .where(QUEUE_ENTRIES.c.id == bindparam("entry_id"))
    .values(status=bindparam("status"), attempts=bindparam("attempts"),
            last_attempt_at=bindparam("last_attempt_at"), last_reply=bindparam("last_reply"),
            next_hop=bindparam("next_hop_"), locked_by=bindparam("locked_by_"),
            locked_until=bindparam("locked_until_"), final_at=bindparam("final_at_"),
            next_attempt_at=bindparam("next_attempt_at_"))
)


def record_results(session: Session, node_id: str, next_hop: str | Mapping[int, str],
                   results: Sequence[tuple[int, Result]], *, retry_initial: float,
                   retry_max: float, max_age: float, now: datetime | None = None,
                   done: set[int] | None = None, locked: bool = False) -> dict[int, str]:
    """Store one attempt's outcome per entry; return entry id -> new status.

    `next_hop` is the hop every entry was tried at, or a mapping entry id -> hop.

    Temporary failures are deferred with exponential backoff, or expired once the message is older
    than `max_age`. An entry already final (deleted by the operator meanwhile, or delivered by
    another node after our lease ran out) keeps its status. `locked`: the caller has locked the
    messages' rows already (`lock_messages`), as it must before recording several messages.
    Core statements, not ORM objects: this runs for every delivered message, and loading and
    flushing entity objects cost more than the rest of the transaction.
    """
    now = now or utcnow()
    by_id = dict(results)
    entries = [_EntryState(*row) for row in _ENTRY_STATES.all(session, {"ids": list(by_id)})]
    # Arrival times, for expiry, in one query (not one per entry).
    retry_pks = {e.message_pk for e in entries if by_id[e.id].kind not in (DELIVERED, PERMANENT)}
    received: dict[int, datetime] = {
        pk: at for pk, at in _RECEIVED.all(session, {"ids": list(retry_pks)})
    } if retry_pks else {}
    out: dict[int, str] = {}
    touched: set[int] = set()
    params: list[dict[str, Any]] = []
    for entry in entries:
        result = by_id[entry.id]
        if entry.status in FINAL_STATUSES:
            out[entry.id] = entry.status
            continue
        attempts = entry.attempts + 1
        final_at, next_attempt_at = entry.final_at, entry.next_attempt_at
        if result.kind == DELIVERED:
            status, final_at = "delivered", now
        elif result.kind == PERMANENT:
            status, final_at = "bounced", now
        else:
            expires = received[entry.message_pk] + timedelta(seconds=max_age)
            if now >= expires:
                status, final_at = "expired", now
            else:
                status = "deferred"
                # Never wait past the expiry time: the sender hears about it on time.
                delay = timedelta(seconds=backoff(attempts, retry_initial, retry_max))
                next_attempt_at = min(now + delay, expires)
        ours = entry.locked_by == node_id
        params.append({
            "entry_id": entry.id, "status": status, "attempts": attempts,
            "last_attempt_at": now, "last_reply": result.reply[:2000],
            "next_hop_": next_hop if isinstance(next_hop, str) else next_hop[entry.id],
            "locked_by_": None if ours else entry.locked_by,
            "locked_until_": None if ours else entry.locked_until,
            "final_at_": final_at, "next_attempt_at_": next_attempt_at,
        })
        out[entry.id] = status
        touched.add(entry.message_pk)
    if params:
        _RECORD.many(session, params)
    finished = finish_if_final(session, touched, locked=locked)
    if done is not None:
        done |= finished  # the messages this attempt finished, for the caller
    return out


def finish_if_final(session: Session, message_pks: int | Iterable[int], *,
                    locked: bool = False) -> set[int]:
    """Mark done the messages whose entries are all final; return their ids.

    The message rows are locked first (in id order): two workers finishing different recipients
    of one message at the same moment would otherwise each still see the other's entry open
    (PostgreSQL, READ COMMITTED) and neither would mark it done. The second one now counts after
    the first commits. `locked`: the caller took those locks already.
    """
    pks = {message_pks} if isinstance(message_pks, int) else set(message_pks)
    if not pks:
        return set()
    if not locked:
        lock_messages(session, pks)
    still_open = {pk for pk, in _STILL_OPEN.all(session, {"ids": list(pks)})}
    done = pks - still_open
    if done:
        _MARK_DONE.all(session, {"ids": list(done)})
    return done


def park(session: Session, node_id: str, message_pk: int, stage: str, error: str) -> None:
    """A post-acceptance stage failed: hold the message (not delivered) until `queue retry`."""
    session.execute(
        update(Message).where(Message.id == message_pk)
        .values(status="parked", parked_stage=stage, parked_error=error[:2000])
        .execution_options(synchronize_session=False))
    session.execute(
        update(QueueEntry)
        .where(QueueEntry.message_pk == message_pk, QueueEntry.locked_by == node_id)
        .values(locked_by=None, locked_until=None).execution_options(synchronize_session=False))


_PROCESSED_ANY = (
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("pk"), MESSAGES.c.processed_at.is_(None))
    .values(processed_at=bindparam("at"))
)
_PROCESSED = Direct(_PROCESSED_ANY)
_PROCESSED_WITH_CONTENT = Direct(_PROCESSED_ANY.values(content=bindparam("content")))
_PROCESSED_IN_SPOOL = Direct(_PROCESSED_ANY.values(content=b"", spool=bindparam("spool")))
_SPOOL_NAMES = Direct(select(MESSAGES.c.id, MESSAGES.c.spool).where(MESSAGES.c.id.in_(_IDS)),
                      expanding="ids")


def _spool_names(session: Session, pks: Iterable[int]) -> dict[int, str | None]:
    ids = list(pks)
    return {pk: name for pk, name in _SPOOL_NAMES.all(session, {"ids": ids})} if ids else {}


@dataclass(frozen=True)
class SpoolFile:
    """Bytes the stages made for a spooled message, already written to this spool file."""

    name: str


def mark_processed(session: Session, processed: Mapping[int, bytes | SpoolFile | None],
                   done: set[int], now: datetime | None = None) -> list[str]:
    """Note that the post-acceptance stages ran for these messages (message id -> the bytes they
    made, the spool file holding them, or None if unchanged), keeping the new bytes so that a
    retry sends the same ones.

    Call it after `record_results`: a message that is done has nothing left to send, so its
    bytes are not written again (for 10 KB mail that rewrite was a large part of the
    transaction). A message another worker already marked keeps what that worker stored.
    `done`: the messages that are done (what `record_results` reported).

    Returns the spool files that no row names once this commits (new files that were not
    needed, old ones that were replaced); the caller removes them after the commit.
    """
    if not processed:
        return []
    at = now or utcnow()
    files = {pk: c.name for pk, c in processed.items() if isinstance(c, SpoolFile)}
    before = _spool_names(session, files)
    keep = [{"pk": pk, "at": at, "content": content} for pk, content in processed.items()
            if isinstance(content, bytes) and pk not in done]
    spooled = [{"pk": pk, "at": at, "spool": name} for pk, name in files.items()
               if pk not in done]
    rest = [{"pk": pk, "at": at} for pk, content in processed.items()
            if content is None or pk in done]
    if keep:
        _PROCESSED_WITH_CONTENT.many(session, keep)
    if spooled:
        _PROCESSED_IN_SPOOL.many(session, spooled)
    if rest:
        _PROCESSED.many(session, rest)
    if not files:
        return []
    after = _spool_names(session, files)
    unused = []
    for pk, name in files.items():
        old = before.get(pk)
        if after.get(pk) != name:
            unused.append(name)  # not needed (done), or another worker stored its own
        elif old and old != name:
            unused.append(old)  # the received bytes, replaced by these
    return unused
