"""Post-acceptance stage `transform`: the extension point for header changes and DKIM signing.

Runs after `archive`, once per message, before its first delivery. It returns the bytes that are
delivered: header changes first (a later issue), DKIM signing last (`mailgw.dkim.sign_outgoing`).
It must be deterministic for the same input, since a crash before the result is committed runs it
again. An exception parks the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailgw.dkim import sign_outgoing
from mailgw.pipeline.post import MessageFacts, cpu_only

if TYPE_CHECKING:
    from mailgw.config import Config
    from mailgw.pipeline.offload import ContentProcesses


@cpu_only  # signing, with keys cached in memory (a stat of the manifest per message)
def run(content: bytes, facts: MessageFacts, config: Config | None = None,
        processes: ContentProcesses | None = None) -> bytes:
    """Transform the message: DKIM-sign outbound mail last (with a config; see default_stages).
    A large message is signed in one of `processes` when given (mailgw.dkim.service)."""
    if config is None:
        return content
    # Last step: the signature must cover every header added before it.
    return sign_outgoing(config, content, facts.mail_from, facts.direction, processes)
