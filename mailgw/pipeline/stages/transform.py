"""Post-acceptance stage `transform`: the extension point for header changes and DKIM signing.

Runs after `archive`, once per message, before its first delivery. It returns the bytes that are
delivered (header changes first, DKIM signing last, in later issues); for now it changes nothing.
It must be deterministic for the same input, since a crash before the result is committed runs it
again. An exception parks the message.
"""

from __future__ import annotations

from mailgw.pipeline.post import MessageFacts


def run(content: bytes, facts: MessageFacts) -> bytes:
    """Transform the message (not yet: returns the bytes unchanged)."""
    return content
