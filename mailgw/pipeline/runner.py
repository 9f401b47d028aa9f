"""Runs the pre-acceptance stages and the durable commit for one Mail.

The SMTP edge calls `Pipeline.accept(mail, owned)` and maps the outcome to a reply: `Accepted`,
`StageReject` (a named reply), or `StoreUnavailable` / any other exception (451).

parse -> identify -> classify -> decide -> enqueue run in a worker thread of the pipeline's own
pool, bounded by `policy.timeout`: past it the answer is 451 (fail closed) and the thread's
result is thrown away. Small outbound text mail (`runs_inline`) is the exception: its stages take
a millisecond or two and run on the event loop itself, because in one Python process a thread
hop costs more than that work (the loop then waits for the GIL at every socket write).
Then the store writer commits the message and, in the same transaction, whatever the verdict
asks for (mailgw.violations.enforce); a reject is answered 550 with the violation reference only
after that commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mailgw.config import Config, ConfigError
from mailgw.inbound import InboundChecker
from mailgw.pipeline.mail import Mail
from mailgw.pipeline.offload import ContentProcesses
from mailgw.pipeline.outcome import Accepted, StageReject
from mailgw.pipeline.post import INLINE_MAX_BYTES
from mailgw.pipeline.stages import authenticate, classify, decide, enqueue, identify, parse
from mailgw.smtp import replies
from mailgw.store.writer import StoreWriter
from mailgw.violations.enforce import Enforcement, subject_of
from policies import Policy, PolicyError, load_policy

log = logging.getLogger("mailgw.pipeline")

_POLICIES: dict[tuple[str, ...], Policy] = {}

# Small messages (post.INLINE_MAX_BYTES) run their stages on the event loop, and only if nothing
# in them can decode to more bytes than they have (no base64, no uuencoded block): their work
# is then bounded by their size.
_UUENCODE_BEGIN = re.compile(rb"^begin [0-7]{3,4} ", re.MULTILINE)


def _may_expand(raw: bytes) -> bool:
    # Plain substring tests first: a case-insensitive regex over the whole message was slower
    # than the stages it decides about.
    return b"base64" in raw.lower() or (
        b"begin " in raw and _UUENCODE_BEGIN.search(raw) is not None)


def runs_inline(mail: Mail, inbound: bool, directory_fresh: bool) -> bool:
    """True if `mail` is small outbound text whose stages may run on the event loop.

    Never when they would wait: for DNS (inbound mail's SPF/DKIM/DMARC checks) or for the
    store (the directory cache needs a refresh)."""
    return (not inbound and directory_fresh and len(mail.raw) <= INLINE_MAX_BYTES
            and not _may_expand(mail.raw))


def load_configured_policy(config: Config) -> Policy:
    """The policy of `policy.files`, read once per process tree.

    `mailgw serve` calls this before it listens or forks, so a bad file stops it with the
    file:line message (as a ConfigError) and the gateway processes it forks inherit the very
    policy that was checked instead of reading the files again.
    """
    key = tuple(config.policy.files)
    if key not in _POLICIES:
        try:
            _POLICIES[key] = load_policy(list(key))
        except PolicyError as exc:
            raise ConfigError(f"policy.files: {exc}") from None
    return _POLICIES[key]


class Pipeline:
    def __init__(self, config: Config, writer: StoreWriter,
                 on_commit: Callable[[], None] | None = None,
                 policy: Policy | None = None,
                 inbound: InboundChecker | None = None) -> None:
        self.config = config
        self.inbound = inbound
        self.writer = writer
        self.on_commit = on_commit
        self.domains: list[str] = list(config.gateway.domains)
        self.hostname = config.hostname
        self.timeout = float(config.policy.timeout)
        self.enforcement = Enforcement.build(
            config, writer.sessions, policy or load_configured_policy(config))
        # The writer calls this inside the acceptance transaction of each message.
        writer.record = self.enforcement.record
        # Big messages are classified (and signed) in a worker process, started when the
        # first arrives.
        self.offload = ContentProcesses(self.enforcement.policy, self.domains,
                                        config.data_dir / "tmp")
        # Our own pool: a classification that overruns its timeout keeps a thread busy until it
        # ends, and must not starve the store calls that use the default executor.
        self._executor = ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4),
                                            thread_name_prefix="mailgw-classify")

    def before_acceptance(self, mail: Mail, owned: frozenset[str]) -> None:
        """parse -> authenticate -> identify -> classify -> decide -> enqueue (StageReject
        refuses)."""
        parse.run(mail)
        authenticate.run(mail, self.inbound)
        identify.run(mail, owned, self.domains)
        classify.run(mail, self.enforcement, self.offload)
        decide.run(mail, self.enforcement)
        authenticate.merge(mail)
        if mail.verdict != "allow":
            # For notices and the quarantine list; a second parse of the header, so only
            # when a verdict will use it.
            mail.verdict_detail["subject"] = subject_of(mail.raw)
        enqueue.run(mail, self.hostname)

    async def accept(self, mail: Mail, owned: frozenset[str]) -> Accepted:
        inbound = mail.direction == "inbound" and self.inbound is not None
        if runs_inline(mail, inbound, self.enforcement.directory.is_fresh()):
            self.before_acceptance(mail, owned)
        else:
            await self._in_thread(mail, owned, inbound)
        return await self._commit(mail)

    async def _in_thread(self, mail: Mail, owned: frozenset[str], inbound: bool) -> None:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()

        def job() -> None:
            loop.call_soon_threadsafe(_settle, started)
            self.before_acceptance(mail, owned)

        work = loop.run_in_executor(self._executor, job)
        # Inbound mail also waits for SPF/DKIM/DMARC lookups, bounded by mx.auth_timeout.
        timeout = self.timeout + (float(self.config.mx.auth_timeout) if inbound else 0.0)
        try:
            # `policy.timeout` bounds the work on this message, not the wait for a free thread
            # (under a burst that wait is the burst's, not the message's); the wait is bounded
            # too, so a pool full of runaway classifications still ends in a 451.
            await asyncio.wait_for(asyncio.shield(started), timeout * 3)
            await asyncio.wait_for(work, timeout)
        except TimeoutError:
            ref = secrets.token_hex(6)
            log.error("ref=%s queue_id=%s classification took longer than %.1fs: 451",
                      ref, mail.queue_id, timeout)
            raise StageReject(replies.format_reply(replies.INSPECTION_TIMEOUT, ref=ref),
                              "classification timed out") from None

    async def _commit(self, mail: Mail) -> Accepted:
        await self.writer.commit(mail)
        if self.on_commit is not None and not mail.handed_off:
            self.on_commit()  # also for a reject: its notices are queued
        if mail.verdict == "reject":
            d = mail.verdict_detail
            raise StageReject(replies.format_reply(
                replies.POLICY_REJECTED, text=d.get("smtp_text") or "Policy violation",
                ref=d.get("reference", "?")), "policy: " + ",".join(d.get("reasons", [])))
        return Accepted(mail.queue_id)

    def close(self) -> None:
        """Stop the classification pool and worker processes (threads still running finish on
        their own)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.offload.close()


def _settle(f: asyncio.Future[None]) -> None:
    if not f.done():
        f.set_result(None)
