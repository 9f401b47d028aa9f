"""Runs the pre-acceptance stages and the durable commit for one Mail.

The SMTP edge calls `Pipeline.accept(mail, owned)` and maps the outcome to a reply: `Accepted`,
`StageReject` (a named reply), or `StoreUnavailable` / any other exception (451). The CPU work of
the stages (parsing; classification later) runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mailgw.config import Config
from mailgw.pipeline.mail import Mail
from mailgw.pipeline.outcome import Accepted
from mailgw.pipeline.stages import classify, decide, enqueue, identify, parse
from mailgw.store.writer import StoreWriter


class Pipeline:
    def __init__(self, config: Config, writer: StoreWriter,
                 on_commit: Callable[[], None] | None = None) -> None:
        self.config = config
        self.writer = writer
        self.on_commit = on_commit
        self.domains: list[str] = list(config.gateway.domains)
        self.hostname = config.hostname

    def before_acceptance(self, mail: Mail, owned: frozenset[str]) -> None:
        """parse -> identify -> classify -> decide (raises StageReject to refuse)."""
        parse.run(mail)
        identify.run(mail, owned, self.domains)
        classify.run(mail)
        decide.run(mail)
        enqueue.run(mail, self.hostname)

    async def accept(self, mail: Mail, owned: frozenset[str]) -> Accepted:
        if mail.size < 64 * 1024:
            # Small messages: the thread hop would cost more than the work.
            self.before_acceptance(mail, owned)
        else:
            await asyncio.to_thread(self.before_acceptance, mail, owned)
        await self.writer.commit(mail)
        if self.on_commit is not None:
            self.on_commit()
        return Accepted(mail.queue_id)
