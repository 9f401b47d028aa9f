"""The post-acceptance stages runner: archive -> transform, once per message, from the store.

The delivery worker calls `prepare()` (in a thread) before a message's first delivery. Each stage
is a function `(content, facts) -> content`. The worker commits the result together with
`processed_at` and the first attempt's outcome, so the stages run again only if that commit never
happened (a crash replays them); later attempts deliver the stored bytes.
If a stage raises, the message is parked with the stage name and error and is not delivered; the
operator replays it with `mailgw queue retry` (DESIGN example 7: nothing is lost on error).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from mailgw.queue import store
from mailgw.store import spool
from mailgw.store.db import reading
from mailgw.store.models import Message

if TYPE_CHECKING:
    from mailgw.config import Config
    from mailgw.pipeline.offload import ContentProcesses

log = logging.getLogger("mailgw.pipeline")


@dataclass(frozen=True)
class MessageFacts:
    """What a post-acceptance stage may know about the message besides its bytes."""

    queue_id: str
    message_id: str
    direction: str
    mail_from: str
    recipients: tuple[str, ...]
    auth_user: str | None
    received_at: datetime
    verdict: str
    verdict_detail: dict[str, Any]

    @classmethod
    def of(cls, m: Message) -> MessageFacts:
        return cls(m.queue_id, m.message_id, m.direction, m.mail_from, tuple(m.recipients),
                   m.auth_user, m.received_at, m.verdict, dict(m.verdict_detail or {}))


Stage = Callable[[bytes, MessageFacts], bytes]

# Messages up to this size may have their work done on the event loop: the post-acceptance
# stages here if every stage is marked `cpu_only` (no file, network or store access), the
# pre-acceptance stages in the pipeline (mailgw.pipeline.runner.runs_inline). A thread hop
# costs more than classifying or signing 10 KB, and makes the loop wait for the GIL.
INLINE_MAX_BYTES = 64 * 1024

F = TypeVar("F", bound=Callable[..., bytes])


def cpu_only(stage: F) -> F:
    """Mark a stage as pure computation over the bytes (it may run on the event loop)."""
    stage.cpu_only = True  # type: ignore[attr-defined]
    return stage


def is_cpu_only(stage: Stage) -> bool:
    target = getattr(stage, "func", stage)  # a functools.partial of a marked stage
    return bool(getattr(target, "cpu_only", False))


def default_stages(config: Config | None = None,
                   processes: ContentProcesses | None = None) -> list[tuple[str, Stage]]:
    """The stages in their order: archive, then transform (DKIM signing is the last step,
    done only when `config` is given; large messages in one of `processes` when given)."""
    from mailgw.pipeline.stages import archive, transform

    return [("archive", archive.run),
            ("transform", functools.partial(transform.run, config=config, processes=processes))]


class Parked(Exception):
    """A stage failed; the message is parked."""

    def __init__(self, stage: str, error: str) -> None:
        super().__init__(f"{stage}: {error}")
        self.stage = stage
        self.error = error


def run_stages(content: bytes, facts: MessageFacts, stages: Sequence[tuple[str, Stage]]) -> bytes:
    """Run `stages` in order; raise Parked naming the stage that failed."""
    for name, stage in stages:
        try:
            content = stage(content, facts)
        except Exception as exc:  # any failure parks the message: never "continue", never lose it
            raise Parked(name, f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(content, bytes):
            raise Parked(name, f"stage returned {type(content).__name__}, not bytes")
    return content


@dataclass(frozen=True)
class Prepared:
    """The bytes to deliver; `fresh` means the stages just ran and the caller must store them
    (with `store.mark_processed`) in the transaction that records the first attempt."""

    content: bytes
    fresh: bool
    changed: bool = True  # the stages changed the bytes (else only processed_at is stored)
    spool: str | None = None  # fresh bytes of a spooled message: the new spool file's name


def prepare(sessions: sessionmaker[Session], message_pk: int, node_id: str,
            stages: Sequence[tuple[str, Stage]],
            loaded: Message | None = None) -> Prepared | None:
    """The bytes to deliver for a message, running the stages first if they have not run.

    `loaded` is the message row if the caller already read it (the worker does, with the claim).
    Returns None if the message is (or has just been) parked. Storing fresh output together with
    the first attempt's results saves a commit per message; a crash in between runs the stages
    again, which is what they are written for.
    """
    m = loaded
    if m is None:
        with reading(), sessions() as s:
            m = s.get(Message, message_pk)
    if m is None or m.status == "parked":
        return None
    facts = MessageFacts.of(m)
    spooled = spool.for_bind(sessions.kw.get("bind")) if m.spool else None
    try:
        content = spool.content_of(m, spooled)
        if m.processed_at is not None:
            return Prepared(content, fresh=False)
        # CPU work (signing, extraction) runs here, outside any transaction.
        out = run_stages(content, facts, stages)
    except (Parked, spool.SpoolError) as exc:
        stage, error = (exc.stage, exc.error) if isinstance(exc, Parked) else ("spool", str(exc))
        with sessions.begin() as s:
            store.park(s, node_id, message_pk, stage, error)
        log.error("%s: parked in stage %s: %s", facts.queue_id, stage, error)
        return None
    changed = out != content
    if changed and spooled is not None:
        # The new bytes go to a file of their own, written here and not inside the
        # transaction that records them (mailgw.store.spool says why).
        return Prepared(out, fresh=True, spool=spooled.put(m.queue_id, out))
    return Prepared(out, fresh=True, changed=changed)


def prepare_inline(m: Message, stages: Sequence[tuple[str, Stage]]) -> Prepared | None:
    """`prepare()` for a small message already loaded, on the caller's thread, when every stage
    is `cpu_only`; None means "use prepare() in a thread" (too big, not fresh, or a stage failed:
    prepare() runs it again and parks the message, which needs the store)."""
    if (m.size > INLINE_MAX_BYTES or m.spool or m.status == "parked" or m.processed_at is not None
            or not all(is_cpu_only(stage) for _, stage in stages)):
        return None
    try:
        out = run_stages(m.content, MessageFacts.of(m), stages)
    except Parked:
        return None
    return Prepared(out, fresh=True, changed=out != m.content)
