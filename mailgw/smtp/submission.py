"""The submission listener: civil servants' mail clients (and trusted application hosts).

Built on the shared edge (mailgw.smtp.edge); what is particular to submission lives here:
- AUTH checked asynchronously (argon2 in a thread) with a growing delay per IP and per login
  after failures, the same reply for unknown users and wrong passwords, offered only over TLS;
- no mail without AUTH (530 5.7.0), except from trusted application hosts, each limited to its
  own sender addresses (never a blanket trust of a network);
- sender ownership: MAIL FROM here (553 5.7.1), the header From in the identify stage;
- relay tricks refused on the path as the client wrote it (mailgw.smtp.addresses);
- per-user and per-IP message rates, recipient count limit, low disk space before DATA.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import AuthResult, Envelope, Session

from mailgw.auth import AuthenticationUnavailable, Authenticator
from mailgw.config import Config
from mailgw.pipeline.runner import Pipeline
from mailgw.smtp import replies
from mailgw.smtp.addresses import Address
from mailgw.smtp.edge import DiskSpace, EdgeContext, GatewaySMTP
from mailgw.smtp.throttle import SubmissionThrottles

log = logging.getLogger("mailgw.submission")


@dataclass
class TrustedHost:
    name: str
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    senders: frozenset[str]


@dataclass
class SubmissionContext(EdgeContext):
    """The shared edge context plus the password backend and the trusted hosts."""

    authenticator: Authenticator | None = None
    trusted: list[TrustedHost] = field(default_factory=list)

    @classmethod
    def build(cls, config: Config, pipeline: Pipeline, authenticator: Authenticator,
              tls_context: ssl.SSLContext | None) -> SubmissionContext:
        return cls(
            config=config, pipeline=pipeline, tls_context=tls_context,
            throttles=SubmissionThrottles.from_config(config), disk=DiskSpace(config),
            authenticator=authenticator,
            trusted=[TrustedHost(h["name"], h["networks"], frozenset(h["senders"]))
                     for h in config.submission.trusted_hosts],
        )

    def trusted_host_for(self, ip: str) -> TrustedHost | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for host in self.trusted:
            if any(addr in net for net in host.networks):
                return host
        return None


class SubmissionSMTP(GatewaySMTP):
    """One client connection on a submission listener."""

    listener = "submission"
    direction = "outbound"
    ctx: SubmissionContext

    def __init__(self, ctx: SubmissionContext, implicit_tls: bool) -> None:
        self.trusted: TrustedHost | None = None
        super().__init__(ctx, implicit_tls, offer_auth=True)

    def on_connect(self, ip: str) -> None:
        self.trusted = self.ctx.trusted_host_for(ip)

    async def check_auth_needed(self, caller_method: str) -> bool:
        assert self.session is not None
        if self.session.authenticated or self.trusted is not None:
            return False
        await self.push(replies.AUTH_REQUIRED)
        return True

    # -- AUTH ----------------------------------------------------------------------------

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._check_login(parts[1], parts[2])

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check_login(login, password)

    async def _check_login(self, login_b: bytes, password_b: bytes) -> AuthResult:
        login = login_b.decode("utf-8", "replace").strip().lower()
        password = password_b.decode("utf-8", "replace")
        ip = self.info.peer_ip
        throttle = self.ctx.throttles.auth
        # The wait grows per IP and per login after failures, so guessing slows down without
        # letting anyone lock a victim out (the wait is capped, never a refusal).
        delay = throttle.delay(ip, login)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            assert self.ctx.authenticator is not None
            result = await self.ctx.authenticator.authenticate(login, password)
        except AuthenticationUnavailable as exc:
            log.error("auth backend unavailable login=%r ip=%s: %s", login, ip, exc)
            return AuthResult(success=False, handled=False, message=replies.AUTH_UNAVAILABLE)
        if result is None:
            # Same reply whatever went wrong: unknown user, wrong password, disabled account.
            throttle.failure(ip, login)
            log.warning("auth failed login=%r ip=%s waited=%.2fs", login, ip, delay)
            return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID)
        throttle.success(ip, login)
        self.info.auth_user = result.address
        self.owned = frozenset(result.senders)
        log.info("auth ok login=%r ip=%s", result.address, ip)
        return AuthResult(success=True, auth_data=result, message=replies.AUTH_OK)

    # -- handler hooks (aiosmtpd calls these with handler=self) ---------------------------

    def refuse_sender(self, session: Session, sender: Address | None) -> str | None:
        if sender is None:  # <>: bounces do not come from mail clients
            return replies.format_reply(replies.BAD_SENDER_SYNTAX, why="null sender")
        owned = self.owned if session.authenticated else (
            self.trusted.senders if self.trusted else frozenset())
        if sender.key not in owned:
            log.warning("sender %s not owned by %s (ip %s)", sender.key,
                        self.info.auth_user or (self.trusted and self.trusted.name),
                        self.info.peer_ip)
            return replies.SENDER_NOT_OWNED
        if self.trusted is not None and not session.authenticated:
            self.info.trusted_host = self.trusted.name
            self.owned = self.trusted.senders
        return None

    def rate_user(self) -> str | None:
        return self.info.auth_user or (self.trusted.name if self.trusted else None)

    def refuse_recipient(self, envelope: Envelope, rcpt: Address) -> str | None:
        # Relaying is for authenticated users and trusted hosts only; check_auth_needed has
        # already refused everyone else before RCPT.
        return None
