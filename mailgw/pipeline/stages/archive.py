"""Post-acceptance stage `archive`: the extension point for keeping attachments and copies.

Runs once per message, after the 250 and before its first delivery, from the store (see
`mailgw.pipeline.post`). It receives the stored bytes and the message's facts and returns the bytes
to pass on. Nothing is archived yet (a later issue fills this in); it must stay idempotent, since a
crash before the result is committed runs it again. An exception parks the message.
"""

from __future__ import annotations

from mailgw.pipeline.post import MessageFacts, cpu_only


@cpu_only  # while it archives nothing; storing attachments will need a thread
def run(content: bytes, facts: MessageFacts) -> bytes:
    """Archive the message (not yet: returns the bytes unchanged)."""
    return content
