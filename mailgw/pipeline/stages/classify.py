"""Stage `classify`: facts about the content (extension point).

The policy engine (package `policies`) turns message bytes and the envelope into one flat facts
record; policy enforcement wires it in here. Until then no facts are gathered.
"""

from __future__ import annotations

from mailgw.pipeline.mail import Mail


def run(mail: Mail) -> None:
    mail.facts = None
    mail.note("classify", "skipped", why="no policy enforcement configured")
