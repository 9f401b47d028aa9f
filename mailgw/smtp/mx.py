"""The MX listener: mail from the internet for the internal domains.

Built on the shared edge (mailgw.smtp.edge). Differences from submission: no AUTH is offered and
none is needed; any sender may write, including the null sender `<>` of a bounce; recipients are
accepted only in internal domains (`550 5.7.1` relaying denied otherwise), decided on the
normalised final domain of the path as the client wrote it; STARTTLS is offered, not required.
The mail then runs through the same pipeline with direction "inbound".
"""

from __future__ import annotations

import logging

from aiosmtpd.smtp import Envelope, Session

from mailgw.smtp import replies
from mailgw.smtp.addresses import Address, is_internal
from mailgw.smtp.edge import EdgeContext, GatewaySMTP

log = logging.getLogger("mailgw.mx")

class MXSMTP(GatewaySMTP):
    """One connection from another mail server."""

    listener = "mx"
    direction = "inbound"

    def __init__(self, ctx: EdgeContext) -> None:
        super().__init__(ctx, implicit_tls=False, offer_auth=False)
        self.domains = list(ctx.config.gateway.domains)

    async def check_auth_needed(self, caller_method: str) -> bool:
        return False

    def refuse_sender(self, session: Session, sender: Address | None) -> str | None:
        return None  # anyone on the internet may write, bounces (`<>`) included

    def refuse_recipient(self, envelope: Envelope, rcpt: Address) -> str | None:
        if is_internal(rcpt.domain, self.domains):
            return None
        log.warning("relay denied: %s -> %s (ip %s)", envelope.mail_from, rcpt, self.info.peer_ip)
        return replies.RELAY_DENIED
