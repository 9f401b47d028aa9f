"""Inbound authentication for the MX listener: SPF, DKIM and DMARC checks and what follows.

Pure logic plus DNS, no SMTP: the MX listener calls `check_message` in a worker thread once DATA
is complete, strips forged `Authentication-Results` with `remove_ours`, prepends the verdict's
header lines and maps the decisions to replies (`temporary` -> 451 4.4.3, `action`).

In the listener, roughly::

    checker = InboundChecker.from_config(config)            # once
    verdict = await asyncio.to_thread(checker.check, mail.raw, client_ip=session.peer_ip,
                                      helo=session.helo, mail_from=mail.mail_from)
    if verdict.temporary:
        return replies.DNS_TEMPFAIL
    mail.raw = checker.remove_ours(mail.raw)
    mail.prepend += verdict.header_lines()
    # verdict.action / verdict.reasons feed the pipeline's decision (quarantine, reject, flag).
"""

from __future__ import annotations

from mailgw.inbound.checker import InboundChecker
from mailgw.inbound.dnslookup import DnsTempError, make_resolver
from mailgw.inbound.headers import remove_ours
from mailgw.inbound.verdict import InboundVerdict, check_message

__all__ = ["DnsTempError", "InboundChecker", "InboundVerdict", "check_message", "make_resolver",
           "remove_ours"]
