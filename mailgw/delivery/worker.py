"""Delivery workers: take due queue entries from the store and hand them to their next hop.

`DeliveryService` runs in the gateway's event loop. A poll loop (and `wake()`, called by the
listener right after a commit) claims due entries with a lease, groups the entries of one message
and one next hop into one transaction, runs the post-acceptance stages once per message, delivers
with bounded concurrency (`delivery.concurrency`) and records each recipient's outcome, queueing a
DSN bounce for permanent failures and expiry in the same database transaction. Every store call
runs in a thread. Delivery is at least once: a lease that runs out (a crashed node) makes the
entries due again, and a heartbeat renews the leases of transfers still in progress.

Store round trips are batched because they, not the SMTP conversations, limit the rate: the
claim reads the claimed messages too, and outcomes that finish together are recorded in one
transaction (group commit), whose locks are taken in one order.

One log line per recipient outcome of each attempt, Postfix style, on `mailgw.delivery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailgw.config import Config
from mailgw.delivery import fastdata, maildir, mx, smtp
from mailgw.delivery.dsn import queue_bounce
from mailgw.delivery.result import Result, temporary
from mailgw.delivery.routes import NextHop, route_for
from mailgw.pipeline import post
from mailgw.pipeline.mail import LARGE_MESSAGE_BYTES, is_large
from mailgw.queue import store
from mailgw.resolvers import configured_servers
from mailgw.store import spool
from mailgw.store.db import session_factory
from mailgw.store.models import Message
from mailgw.store.writer import StoreWriter

log = logging.getLogger("mailgw.delivery")

MAX_RCPTS_PER_TRANSACTION = 100


@dataclass
class Group:
    """Entries of one message for one next hop: one SMTP transaction (or one maildir run)."""

    hop: NextHop
    domain: str  # for mx routing: the domain whose MX hosts are asked
    entries: list[store.Claimed] = field(default_factory=list)
    message: Message | None = None  # read with the claim, if small
    # The post-acceptance stages of each message of this claim, run once and shared by all
    # its groups (several next hops or MX domains): a message is signed once, not per group.
    preparing: dict[int, asyncio.Future[post.Prepared | None]] = field(default_factory=dict)

    @property
    def first(self) -> store.Claimed:
        return self.entries[0]

    @property
    def ids(self) -> list[int]:
        return [e.entry_id for e in self.entries]


@dataclass
class _Outcome:
    """One attempt's results, waiting for the results writer."""

    hop: str
    message_pk: int
    pairs: list[tuple[int, Result]]
    prepared: post.Prepared
    done: asyncio.Future[dict[int, str]]


class DeliveryService:
    """The delivery workers of one gateway process (`node_id` names it in leases)."""

    def __init__(self, config: Config, engine: Engine, node_id: str, *,
                 poll_interval: float = 1.0, lease_seconds: float = 120.0,
                 resolver: mx.MxResolver | None = None, mx_port: int = 25,
                 stages: Sequence[tuple[str, post.Stage]] | None = None,
                 tls_context: ssl.SSLContext | None = None,
                 writer: StoreWriter | None = None) -> None:
        self.config = config
        self.engine = engine
        self.node_id = node_id
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.mx_port = mx_port
        # The post-acceptance stages (archive, transform with DKIM signing last).
        self.stages = stages if stages is not None else post.default_stages(config)
        self.tls_context = tls_context
        # Results are recorded through a store writer, in its grouped transactions: the
        # process's (the gateway passes it), else one of our own.
        self._own_writer = writer is None
        self.writer = writer if writer is not None else StoreWriter(session_factory(engine))
        # gateway.nameservers, as for every other lookup (resolv.conf when empty).
        self.resolver = resolver or mx.MxResolver(config.delivery.dns_timeout,
                                                  *configured_servers(config))
        self.hostname = config.hostname
        self._sessions = session_factory(engine)
        self._spool = spool.for_engine(engine)
        self._concurrency = int(config.delivery.concurrency)
        self._sem = asyncio.Semaphore(self._concurrency)
        self._event = asyncio.Event()
        # Due entries may be waiting in the store unclaimed (at start, after wake(), after a
        # poll interval, after a claim that filled its limit); handed-off mail needs no claim.
        self._claim_wanted = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: set[int] = set()
        self._outcomes: list[_Outcome] = []
        self._outcome_event = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = False
        # Idle sessions to next hops, reused for the next message to the same host.
        self._connections = smtp.ConnectionCache()
        # Hand-off from the store writer (mailgw.store.writer.Handoff): fresh messages that
        # are not large arrive leased and in memory, while fewer than this many groups wait.
        self._handoff_limit = self._concurrency * 8

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the poll loop, the results writer and the lease heartbeat."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        if self._own_writer:
            self.writer.start()
        self._writer = asyncio.create_task(self._write_outcomes(), name=f"results-{self.node_id}")
        self._heartbeat = asyncio.create_task(self._renew(), name=f"leases-{self.node_id}")
        self._runner = asyncio.create_task(self._run(), name=f"delivery-{self.node_id}")

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; let transfers finish for `timeout` seconds, then give leases back."""
        self._stopping = True
        self._event.set()
        if self._runner is not None:
            # Let the loop finish its step rather than cancel it: a claim cancelled half-way
            # would leave leases nobody works on until they run out.
            await _finish(self._runner, timeout)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for helper in (self._writer, self._heartbeat):
            if helper is not None:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
        if self._outcomes:
            # Delivered but not yet recorded: record it now, or it would be sent again.
            with contextlib.suppress(Exception):
                await self._flush_outcomes()
        if self._inflight:
            # Interrupted transfers: due again at once, here or on another node.
            await asyncio.to_thread(self._release, list(self._inflight))
            self._inflight.clear()
        self._connections.close_all()
        if self._own_writer:
            self.writer.stop()

    def wake(self) -> None:
        """Look for due mail now (fresh mail goes out without waiting for the next poll).

        Safe to call from the event loop and from other threads.
        """
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._want_claim()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
                loop.call_soon_threadsafe(self._want_claim)

    def _want_claim(self) -> None:
        self._claim_wanted = True
        self._event.set()

    def wants(self) -> bool:
        """Room for handed-off work (called by the store writer's thread: a racy read of a
        size is fine, the limit only bounds memory)."""
        return (self._loop is not None and not self._stopping
                and len(self._tasks) < self._handoff_limit)

    def take(self, handed: list[tuple[list[store.Claimed], Message]]) -> None:
        """Deliver entries the store writer leased to us and committed (from its thread)."""
        loop = self._loop
        if loop is None:
            return  # not started: the lease runs out and a claim picks them up
        claimed = [c for entries, _ in handed for c in entries]
        messages = {m.id: m for _, m in handed}
        with contextlib.suppress(RuntimeError):  # the loop is closed: the lease runs out
            loop.call_soon_threadsafe(self._spawn, claimed, messages)

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            free = self._concurrency - len(self._tasks)
            if free > 0 and self._claim_wanted:
                self._claim_wanted = False
                limit = free * 8
                try:
                    claimed = await self._claim_and_spawn(limit)
                except Exception:
                    # The store is down or busy: keep the loop alive and try again.
                    log.exception("delivery: claiming due entries failed")
                    claimed = 0
                if claimed >= limit:
                    self._claim_wanted = True
                    continue  # more may be due right now
            try:
                await asyncio.wait_for(self._event.wait(), self.poll_interval)
            except TimeoutError:
                self._claim_wanted = True  # the poll: retries fall due, other nodes' leases end
            self._event.clear()
            self._connections.sweep()

    async def _claim_and_spawn(self, limit: int) -> int:
        claimed, messages = await asyncio.to_thread(self._claim, limit)
        self._spawn(claimed, messages)
        return len(claimed)

    def _spawn(self, claimed: Sequence[store.Claimed], messages: dict[int, Message]) -> None:
        """One delivery task per group of leased entries."""
        preparing: dict[int, asyncio.Future[post.Prepared | None]] = {}
        for group in self._group(claimed):
            group.message = messages.get(group.first.message_pk)
            group.preparing = preparing
            self._inflight.update(group.ids)
            task = asyncio.create_task(self._deliver(group))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # A free slot: claim more without waiting for the next poll, if more are waiting.
        if self._claim_wanted:
            self._event.set()

    def _group(self, claimed: Sequence[store.Claimed]) -> list[Group]:
        d = self.config.delivery
        groups: dict[tuple[int, str, str], Group] = {}
        out: list[Group] = []
        for c in claimed:
            hop = route_for(c.domain, d.routes, d.default)
            domain = c.domain if hop.kind == "mx" else ""
            key = (c.message_pk, str(hop), domain)
            g = groups.get(key)
            if g is None or len(g.entries) >= MAX_RCPTS_PER_TRANSACTION:
                g = groups[key] = Group(hop, domain)
                out.append(g)
            g.entries.append(c)
        return out

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if self._inflight:
                try:
                    await asyncio.to_thread(self._renew_sync, list(self._inflight))
                except Exception:
                    log.exception("delivery: renewing leases failed")

    # -- one group ---------------------------------------------------------------------------

    async def _deliver(self, group: Group) -> None:
        try:
            async with self._sem:
                if self._stopping:
                    await asyncio.to_thread(self._release, group.ids)
                    self._inflight.difference_update(group.ids)
                    return
                await self._attempt(group)
        except asyncio.CancelledError:
            # stop() releases what is still in flight.
            raise
        except Exception:
            # Leases stay until they run out: the entries are retried, never lost.
            log.exception("%s: delivery attempt failed", group.first.queue_id)
            self._inflight.difference_update(group.ids)
        else:
            self._inflight.difference_update(group.ids)

    async def _attempt(self, group: Group) -> None:
        first = group.first
        started = time.monotonic()
        if (group.message is not None and group.message.processed_at is not None
                and not group.message.spool):
            prepared: post.Prepared | None = post.Prepared(group.message.content, fresh=False)
        else:
            task = group.preparing.get(first.message_pk)
            if task is None:
                task = group.preparing[first.message_pk] = self._prepare(group)
            prepared = await asyncio.shield(task)
        if prepared is None:
            # Parked: prepare() gave the leases back; `mailgw queue retry` replays it.
            await asyncio.to_thread(self._release, group.ids)
            return
        recipients = [e.recipient for e in group.entries]
        results, remote = await self._transport(group, first.mail_from, recipients,
                                                prepared.content)
        pairs = [(e.entry_id, results.get(e.recipient) or temporary("451 4.3.0 no result"))
                 for e in group.entries]
        outcome = _Outcome(str(group.hop), first.message_pk, pairs, prepared,
                           asyncio.get_running_loop().create_future())
        self._outcomes.append(outcome)
        self._outcome_event.set()
        statuses = await outcome.done
        self._log(group, pairs, statuses, remote, time.monotonic() - started)

    def _prepare(self, group: Group) -> asyncio.Future[post.Prepared | None]:
        """The post-acceptance stages of the group's message: here for small mail whose
        stages are pure computation, else in a thread."""
        if group.message is not None:
            now = post.prepare_inline(group.message, self.stages)
            if now is not None:
                done: asyncio.Future[post.Prepared | None] = (
                    asyncio.get_running_loop().create_future())
                done.set_result(now)
                return done
        return asyncio.ensure_future(asyncio.to_thread(
            post.prepare, self._sessions, group.first.message_pk, self.node_id, self.stages,
            group.message))

    async def _transport(self, group: Group, mail_from: str, recipients: list[str],
                         content: bytes) -> tuple[dict[str, Result], str]:
        d = self.config.delivery
        hop = group.hop
        if hop.kind == "maildir":
            return await asyncio.to_thread(maildir.deliver, hop.path, recipients, content), \
                str(hop)
        common = {"helo": self.hostname, "require_tls": d.require_tls,
                  "connect_timeout": d.connect_timeout, "command_timeout": d.command_timeout,
                  "tls_context": self.tls_context, "cache": self._connections}
        # A large message's DATA bytes are worked out first, a step at a time (fastdata).
        async with (fastdata.prepared(content) if is_large(len(content))
                    else contextlib.nullcontext()):
            if hop.kind == "smtp":
                res = await smtp.send(hop.host, hop.port, mail_from, recipients, content,
                                      **common)
                return res, f"{hop.host}:{hop.port}"
            return await mx.send(self.resolver, group.domain, mail_from, recipients, content,
                                 port=self.mx_port, **common)

    def _log(self, group: Group, pairs: list[tuple[int, Result]], statuses: dict[int, str],
             remote: str, seconds: float) -> None:
        rcpt_of = {e.entry_id: e for e in group.entries}
        result_of = dict(pairs)
        # One line per distinct outcome: recipients that got the same answer share it.
        lines: dict[tuple[str, str], list[int]] = {}
        for entry_id, result in pairs:
            lines.setdefault((statuses.get(entry_id, "?"), result.reply), []).append(entry_id)
        for (status, reply), ids in lines.items():
            entries = [rcpt_of[i] for i in ids]
            level = logging.INFO if status in ("delivered", "deferred") else logging.WARNING
            log.log(level,
                    "%s: to=%s, relay=%s, remote=%s, delay=%.2f, attempts=%d, dsn=%s, "
                    "status=%s (%s)",
                    group.first.queue_id, ",".join(f"<{e.recipient}>" for e in entries),
                    group.hop, remote or "none", seconds, entries[0].attempts + 1,
                    result_of[ids[0]].status_code, status, reply,
                    extra={"mailgw": {
                        "queue_id": group.first.queue_id, "node": self.node_id,
                        "recipients": [e.recipient for e in entries],
                        "next_hop": str(group.hop), "remote": remote, "status": status,
                        "reply": reply, "duration": round(seconds, 3)}})

    # -- the results writer ------------------------------------------------------------------

    async def _write_outcomes(self) -> None:
        while True:
            await self._outcome_event.wait()
            self._outcome_event.clear()
            await self._flush_outcomes()

    async def _flush_outcomes(self) -> None:
        batch, self._outcomes = self._outcomes, []
        if batch:
            await self._record_outcomes(batch)

    async def _record_outcomes(self, batch: list[_Outcome]) -> None:
        try:
            statuses, bounced, unused = await self.writer.run(
                functools.partial(self._record_in, batch=batch))
        except Exception as exc:
            if len(batch) > 1:
                # One bad outcome must not hold up the others: record them one by one.
                log.warning("delivery: recording %d results together failed (%s); one by one",
                            len(batch), exc)
                for one in batch:
                    await self._record_outcomes([one])
                return
            # The attempt fails; its leases run out and the entries are tried again.
            if not batch[0].done.done():
                batch[0].done.set_exception(exc)
            return
        for o in batch:
            if not o.done.done():
                o.done.set_result({i: statuses.get(i, "?") for i, _ in o.pairs})
        if bounced:
            self.wake()
        if unused:
            await asyncio.to_thread(self._unspool, unused)

    # -- store calls (run in threads) --------------------------------------------------------

    def _claim(self, limit: int) -> tuple[list[store.Claimed], dict[int, Message]]:
        with self._sessions.begin() as s:
            claimed = store.claim_due(s, self.node_id, limit, self.lease_seconds)
            pks = {c.message_pk for c in claimed}
            messages = {m.id: m for m in s.scalars(
                select(Message).where(Message.id.in_(pks), Message.size <= LARGE_MESSAGE_BYTES))
            } if pks else {}
        return claimed, messages

    def _release(self, ids: list[int]) -> None:
        with self._sessions.begin() as s:
            store.release(s, self.node_id, ids)

    def _renew_sync(self, ids: list[int]) -> None:
        with self._sessions.begin() as s:
            store.renew_leases(s, self.node_id, ids, self.lease_seconds)

    def _unspool(self, names: list[str]) -> None:
        if self._spool is not None:
            self._spool.discard_all(names)

    def _record_in(self, s: Session, batch: list[_Outcome],
                   ) -> tuple[dict[int, str], bool, list[str]]:
        """Store one batch of outcomes in the caller's transaction (and queue bounces); also
        returns the spool files no row names any more."""
        d = self.config.delivery
        store.lock_messages(s, (o.message_pk for o in batch))
        hops = {i: o.hop for o in batch for i, _ in o.pairs}
        done: set[int] = set()
        statuses = store.record_results(
            s, self.node_id, hops, [p for o in batch for p in o.pairs],
            retry_initial=d.retry_initial, retry_max=d.retry_max, max_age=d.max_age, done=done,
            locked=True)
        # First attempt: keep the bytes the stages made, so retries send the same. A message
        # already done before this attempt cannot be fresh: `done` is all there is to know.
        unused = store.mark_processed(s, {
            o.message_pk: _processed(o.prepared)
            for o in sorted(batch, key=lambda o: o.message_pk) if o.prepared.fresh}, done)
        failed = {o.message_pk for o in batch for i, _ in o.pairs
                  if statuses.get(i) in ("bounced", "expired")}
        bounced = False
        for pk in sorted(failed):
            bounced |= queue_bounce(s, pk, reporting_mta=self.hostname,
                                    bounce_from=self.config.bounce_from,
                                    max_age=d.max_age) is not None
        return statuses, bounced, unused


def _processed(prepared: post.Prepared) -> bytes | store.SpoolFile | None:
    """What `store.mark_processed` keeps of freshly prepared bytes."""
    if prepared.spool is not None:
        return store.SpoolFile(prepared.spool)
    return prepared.content if prepared.changed else None


async def _finish(task: asyncio.Task[None], timeout: float) -> None:
    _, late = await asyncio.wait({task}, timeout=timeout)
    for t in late:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t
