"""The store writer: durable commits of accepted messages, grouped (group commit).

Every SMTP session waiting for its 250 hands its Mail to one writer thread per process. The thread
takes whatever is waiting, writes it in one transaction and wakes every waiter at once; with 20
concurrent sessions that is one fsync for many messages instead of one each, and no database call
ever runs on the event loop. If a grouped transaction fails, each message is retried alone so that
one bad message cannot fail its neighbours; a message whose commit fails gets the exception (the
edge answers 451 and the client retries).

`record`, when set (by the pipeline, for policy enforcement), runs in the same transaction for
each message, so a violation record and its message commit together. A rejected message (verdict
"reject") gets no message row, only what `record` writes.

`run(fn)` puts other store work into the same grouped transactions (the delivery workers record
their results this way): one writer per process, so its transactions do not queue for the
database lock behind each other, and one commit serves both.

A large allowed or flagged message on a SQLite store is written to the spool (mailgw.store.spool)
before it joins the queue, outside the database lock, and its row only names the file.

`handoff`, when set (by the gateway process, to its own delivery workers), lets the writer lease
the entries of an allowed, small message to this process in the insert itself and hand them over
in memory once committed: no claim transaction and no second read of the bytes, as Postfix's
queue manager takes fresh mail from its incoming queue directly. The lease is the safety net: if
the process dies before delivery, the lease runs out and any node claims the entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from mailgw.pipeline.mail import Mail, is_large
from mailgw.queue.enqueue import enqueue_rows, insert_many, recipient_domain
from mailgw.queue.store import Claimed
from mailgw.store import spool
from mailgw.store.models import Message, utcnow

log = logging.getLogger("mailgw.store")


# Mail that is delivered as it is stored. A quarantined message is held and released by an
# operator; it keeps its bytes in the database.
SPOOLED_VERDICTS = ("allow", "flag")


class StoreUnavailable(Exception):
    """The message could not be committed; the client must retry."""


class Handoff(Protocol):
    """The local delivery workers, as the writer sees them (thread-safe methods)."""

    node_id: str
    lease_seconds: float

    def wants(self) -> bool:
        """Room for more work in memory (else the entries wait in the store for a claim)."""
        ...

    def take(self, handed: list[tuple[list[Claimed], Message]]) -> None:
        """Deliver these committed, leased entries; each message is a copy of its row that
        belongs to no session."""
        ...


@dataclass
class _Pending:
    mail: Mail
    future: asyncio.Future[int]
    loop: asyncio.AbstractEventLoop


@dataclass
class _Job:
    """Other store work that joins the next grouped transaction (delivery results)."""

    fn: Callable[[Session], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_Item = _Pending | _Job
T = TypeVar("T")


class StoreWriter:
    def __init__(self, sessions: sessionmaker[Session], max_batch: int = 64) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.record: Callable[[Session, Mail, Message | None], None] | None = None
        self.handoff: Handoff | None = None
        self.spool = spool.for_bind(sessions.kw.get("bind"))

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mailgw-store-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    async def commit(self, mail: Mail) -> int:
        """Store the message and its queue entries; returns the message's primary key."""
        loop = asyncio.get_running_loop()
        if self.spool is not None and mail.verdict in SPOOLED_VERDICTS and is_large(mail.size):
            # Write and fsync the body now, in a thread, while nobody waits for the lock (in
            # pieces: joining them copied 20 MB on the event loop).
            try:
                mail.spool = await asyncio.to_thread(self.spool.put, mail.queue_id,
                                                     mail.stored_parts())
            except OSError as exc:
                raise StoreUnavailable(f"cannot write the spool file: {exc.strerror}") from None
        future: asyncio.Future[int] = loop.create_future()
        self._queue.put(_Pending(mail, future, loop))
        return await future

    async def run(self, fn: Callable[[Session], T]) -> T:
        """`fn(session)` inside the writer's next transaction, grouped with whatever else is
        waiting: one writer, one commit, instead of a transaction of its own that would queue
        for the database lock beside the writer's. If the group fails, `fn` runs again alone;
        its exception, if it fails then too, is raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop))
        return await future

    # -- writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if self._write([first], drain=True):
                return

    def _drain(self, batch: list[_Item]) -> bool:
        """Add what is waiting to `batch` (up to max_batch); True if the stop signal came."""
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _write(self, batch: list[_Item], drain: bool = False) -> bool:
        """Commit `batch` in one transaction (each item alone if that fails); with `drain`,
        also whatever queued up while the transaction waited for the database lock: group
        commit proper, where the wait for the other writers fills the next batch. Returns
        True if the stop signal was drained."""
        leased: list[_Leased] = []
        unspooled: list[str] = []  # spool files no committed row names
        later: list[_Item] = []
        stop = False
        try:
            with self._sessions.begin() as session:
                if drain:
                    session.connection()  # BEGIN: on SQLite, waits for the writer lock
                    stop = self._drain(batch)
                later = _big_ones_later(batch)
                pendings = [p for p in batch if isinstance(p, _Pending)]
                jobs = [j for j in batch if isinstance(j, _Job)]
                ids, results = self._commit(session, [p.mail for p in pendings], jobs, leased,
                                            unspooled)
        except Exception as exc:
            if len(batch) > 1:
                for item in batch:
                    self._write([item])
            elif isinstance(batch[0], _Pending):
                log.error("store commit failed for %s: %s", batch[0].mail.queue_id,
                          _one_line(exc))
                self._unspool(batch[0].mail)
                _resolve(batch[0], error=StoreUnavailable(_one_line(exc)))
            else:
                _resolve(batch[0], error=exc)
        else:
            self._discard(unspooled)
            if self.handoff is not None and leased:
                self.handoff.take([_hand_over(item) for item in leased])
            _resolve_all([*zip(pendings, ids, strict=True), *zip(jobs, results, strict=True)])
        for item in later:
            self._write([item])
        return stop

    def _unspool(self, mail: Mail) -> None:
        """The row naming the mail's spool file was not committed: nobody will read it."""
        if mail.spool is not None:
            self._discard([mail.spool])
            mail.spool = None

    def _discard(self, names: list[str]) -> None:
        if self.spool is not None:
            self.spool.discard_all(names)

    def _commit(self, session: Session, mails: list[Mail], jobs: list[_Job],
                leased: list[_Leased], unspooled: list[str]) -> tuple[list[int], list[Any]]:
        ids: dict[int, int] = {}  # position in `mails` -> message id (0: rejected, no row)
        results = [job.fn(session) for job in jobs]
        # Allowed mail, the most of it, with Core statements: nothing to enforce, and
        # building and flushing ORM objects was most of the writer's time.
        plain = [i for i, m in enumerate(mails) if m.verdict == "allow"]
        if plain:
            self._insert_plain(session, [mails[i] for i in plain], leased, ids, plain)
        rows: list[tuple[int, Message | None]] = []
        for i, m in enumerate(mails):
            if m.verdict == "allow":
                continue
            body = _body(m)
            row = None if m.verdict == "reject" else enqueue_rows(
                session, m.mail_from, m.rcpt_tos, body.pop("content"), m.direction,
                **_columns(m), **body)
            if self.record is not None:
                self.record(session, m, row)
            if row is not None and m.spool and row.spool != m.spool:
                unspooled.append(m.spool)  # enforcement put the bytes into the row
            rows.append((i, row))
        session.flush()
        ids.update((i, row.id if row is not None else 0) for i, row in rows)
        return [ids[i] for i in range(len(mails))], results

    def _insert_plain(self, session: Session, mails: list[Mail],
                      leased: list[_Leased], ids: dict[int, int],
                      positions: list[int]) -> None:
        handoff = self.handoff
        now = utcnow()
        values = [{**_columns(m), **_body(m), "mail_from": m.mail_from,
                   "recipients": list(m.rcpt_tos), "direction": m.direction} for m in mails]
        # Leased to this process's workers if they have room, and not large (kept in memory;
        # a spooled message is large).
        leases: list[tuple[str, datetime] | None] = [
            (handoff.node_id, now + timedelta(seconds=handoff.lease_seconds))
            if handoff is not None and not is_large(v["size"]) and handoff.wants() else None
            for v in values]
        made = insert_many(session, values, now, leases)
        for pos, m, v, lease, (pk, entry_ids) in zip(positions, mails, values, leases, made,
                                                     strict=True):
            ids[pos] = pk
            if lease is not None:
                leased.append(_Leased(m, pk, entry_ids, v))


@dataclass
class _Leased:
    """An allowed message inserted leased to this process, for the hand-off after commit."""

    mail: Mail
    pk: int
    entry_ids: list[int]
    values: dict[str, Any]


def _hand_over(item: _Leased) -> tuple[list[Claimed], Message]:
    # Built after the commit, outside the database lock that every process's writer waits for.
    m, pk = item.mail, item.pk
    m.handed_off = True
    claimed = [Claimed(eid, pk, m.queue_id, m.mail_from, rcpt, recipient_domain(rcpt), 0)
               for eid, rcpt in zip(item.entry_ids, m.rcpt_tos, strict=True)]
    return claimed, Message(id=pk, status="accepted", processed_at=None, **item.values)


def _big_ones_later(batch: list[_Item]) -> list[_Item]:
    """Take the large messages whose bytes go into the database out of `batch`, leaving at
    least one item; returns them: each is committed in a transaction of its own, after the
    small ones it came with (writing 20 MB and its fsync takes 0.1-0.3 s, which their 250
    should not wait for). A spooled message's row is small: it stays in the batch."""
    def big(item: _Item) -> bool:
        return isinstance(item, _Pending) and is_large(item.mail.size) and not item.mail.spool

    later = [item for item in batch if big(item)]
    if not later:
        return []
    rest = [item for item in batch if not big(item)] or [later.pop(0)]
    batch[:] = rest
    return later


def _body(m: Mail) -> dict[str, Any]:
    """The Message columns of the stored bytes: in `content`, or in the spool file `spool`
    (then `content` is empty)."""
    return {"content": b"" if m.spool else m.stored_bytes(), "spool": m.spool,
            "size": sum(map(len, m.stored_parts()))}


def _columns(m: Mail) -> dict[str, Any]:
    """The Message columns the session and the stages know, besides envelope and bytes."""
    return {"queue_id": m.queue_id, "message_id": m.message_id[:998],
            "auth_user": m.session.auth_user, "client_ip": m.session.peer_ip,
            "client_helo": m.session.helo[:255], "received_at": m.received_at,
            "verdict": m.verdict, "verdict_detail": m.verdict_detail}


def _resolve_all(done: list[tuple[_Pending, int] | tuple[_Job, Any]]) -> None:
    """Settle a committed batch: one wake-up of each waiting event loop, not one per item."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, Any]]] = {}
    for item, result in done:
        by_loop.setdefault(item.loop, []).append((item, result))

    def settle(items: list[tuple[_Item, Any]]) -> None:
        for item, result in items:
            if not item.future.done():  # the session went away meanwhile
                item.future.set_result(result)

    for loop, items in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, items)


def _resolve(p: _Item, result: Any = None, error: Exception | None = None) -> None:
    def settle() -> None:
        if p.future.done():  # the session went away meanwhile
            return
        if error is not None:
            p.future.set_exception(error)
        else:
            p.future.set_result(result)

    # A closed loop raises RuntimeError: nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        p.loop.call_soon_threadsafe(settle)


def _one_line(exc: BaseException) -> str:
    from mailgw.store.db import describe

    return describe(exc)
