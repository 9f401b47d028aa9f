"""The MX listener: mail from the internet for the internal domains.

Built on the shared edge (mailgw.smtp.edge). Differences from submission: no AUTH is offered and
none is needed; any sender may write, including the null sender `<>` of a bounce; recipients are
accepted only in internal domains (`550 5.7.1` relaying denied otherwise), decided on the
normalised final domain of the path as the client wrote it; STARTTLS is offered, not required.
The mail then runs through the same pipeline with direction "inbound".
"""

from __future__ import annotations

import logging

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailgw.smtp import replies
from mailgw.smtp.addresses import Address, AddressError, is_internal, parse_mail_from
from mailgw.smtp.edge import EdgeContext, GatewaySMTP

log = logging.getLogger("mailgw.mx")

NULL_SENDER = "<>"


class MXSMTP(GatewaySMTP):
    """One connection from another mail server."""

    listener = "mx"
    direction = "inbound"

    def __init__(self, ctx: EdgeContext) -> None:
        super().__init__(ctx, implicit_tls=False, offer_auth=False)
        self.domains = list(ctx.config.gateway.domains)

    async def check_auth_needed(self, caller_method: str) -> bool:
        return False

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        try:
            parsed = parse_mail_from(self.raw_path, utf8=bool(envelope.smtp_utf8))
        except AddressError as exc:
            return replies.format_reply(replies.BAD_SENDER_SYNTAX, why=exc.text)
        if self.ctx.disk.is_low():
            return replies.LOW_DISK
        if self.ctx.throttles.message_wait(None, self.info.peer_ip) > 0:
            log.warning("rate limit: ip=%s", self.info.peer_ip)
            return replies.RATE_LIMITED
        # aiosmtpd needs a true value to know MAIL was given; `<>` stands for the null sender.
        envelope.mail_from = NULL_SENDER if parsed is None else parsed.key
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    def refuse_recipient(self, envelope: Envelope, rcpt: Address) -> str | None:
        if is_internal(rcpt.domain, self.domains):
            return None
        log.warning("relay denied: %s -> %s (ip %s)", envelope.mail_from, rcpt, self.info.peer_ip)
        return replies.RELAY_DENIED

    def envelope_sender(self, envelope: Envelope) -> str:
        sender = str(envelope.mail_from)
        return "" if sender == NULL_SENDER else sender
