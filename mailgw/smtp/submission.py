"""The submission listener: civil servants' mail clients (and trusted application hosts).

A thin protocol edge on aiosmtpd (DESIGN §4.1): it unwraps SMTP, checks sanity (TLS before AUTH,
who may use which sender, limits, hostile input), hands the transaction to the pipeline and maps
the outcome to a reply from `mailgw.smtp.replies`. No policy, archive or DKIM code lives here.

What aiosmtpd does not do for us, and this module adds:
- AUTH checked asynchronously (argon2 in a thread) with a growing delay per IP and per login
  after failures, the same reply for unknown users and wrong passwords;
- sender ownership (MAIL FROM and, in the parse/identify stages, the header From);
- trusted application hosts that may send without AUTH, each limited to its own senders;
- refusal of control characters in command arguments, of source routes and relay tricks;
- a command budget per session, connection limits, rate limits, a low-disk check before DATA;
- a 451 with a correlation id instead of aiosmtpd's permanent "500 Error: (exception text)".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import ipaddress
import logging
import re
import secrets
import shutil
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from mailgw.auth import AuthenticationUnavailable, Authenticator
from mailgw.config import Config
from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.pipeline.outcome import StageReject
from mailgw.pipeline.runner import Pipeline
from mailgw.smtp import replies
from mailgw.smtp.addresses import AddressError, parse_mail_from, parse_rcpt_to
from mailgw.smtp.throttle import SubmissionThrottles
from mailgw.store.writer import StoreUnavailable

log = logging.getLogger("mailgw.submission")
translog = logging.getLogger("mailgw.transaction")

_FORBIDDEN_IN_ARGS = ("\x00", "\r", "\n")


@dataclass
class TrustedHost:
    name: str
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    senders: frozenset[str]


@dataclass
class SubmissionContext:
    """What every connection of one listener process shares."""

    config: Config
    pipeline: Pipeline
    authenticator: Authenticator
    tls_context: ssl.SSLContext | None
    throttles: SubmissionThrottles
    disk: DiskSpace
    trusted: list[TrustedHost] = field(default_factory=list)

    @classmethod
    def build(cls, config: Config, pipeline: Pipeline, authenticator: Authenticator,
              tls_context: ssl.SSLContext | None) -> SubmissionContext:
        sub = config.submission
        return cls(
            config=config, pipeline=pipeline, authenticator=authenticator,
            tls_context=tls_context,
            throttles=SubmissionThrottles.from_config(config),
            disk=DiskSpace(config),
            trusted=[TrustedHost(h["name"], h["networks"], frozenset(h["senders"]))
                     for h in sub.trusted_hosts],
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


class SubmissionSMTP(SMTP):
    """One client connection on a submission listener."""

    def __init__(self, ctx: SubmissionContext, implicit_tls: bool) -> None:
        sub = ctx.config.submission
        # The stream limit bounds one line: 998 characters, a stuffed dot and CRLF.
        self.line_length_limit = sub.max_line_length + 3
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.commands_left = sub.max_commands
        self.owned: frozenset[str] = frozenset()
        self.info = SessionInfo(listener="submission", tls=implicit_tls)
        self.trusted: TrustedHost | None = None
        self.counted_ip: str | None = None
        self.raw_path = ""
        super().__init__(
            handler=self,
            data_size_limit=sub.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=ctx.config.hostname,
            ident="mailgw",
            # Implicit-TLS listeners are TLS from the first byte: no STARTTLS to offer there,
            # and AUTH may be offered at once.
            tls_context=None if implicit_tls else ctx.tls_context,
            require_starttls=False,
            timeout=sub.timeout,
            auth_required=False,
            auth_require_tls=not implicit_tls,
            auth_exclude_mechanism=["CRAM-MD5"],
        )
        # Every command goes through one gate: control characters and the command budget.
        self._smtp_methods = {name: self._gate(name, method)
                              for name, method in self._smtp_methods.items()}

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        starttls_done = self._original_transport is not None and self.transport is not None
        if not starttls_done:
            peer = transport.get_extra_info("peername") or ("", 0)
            ip = str(peer[0])
            if not self.ctx.throttles.connections.acquire(ip):
                log.warning("connection from %s refused: too many connections", ip)
                if isinstance(transport, asyncio.WriteTransport):
                    transport.write(replies.TOO_MANY_CONNECTIONS.encode() + b"\r\n")
                transport.close()
                # aiosmtpd still needs its session objects for connection_lost().
                self.session = self._create_session()
                self._handler_coroutine = None
                return
            self.counted_ip = ip
            self.info.peer_ip, self.info.peer_port = ip, int(peer[1])
            self.trusted = self.ctx.trusted_host_for(ip)
        super().connection_made(transport)
        if starttls_done:
            # RFC 3207 4.2: after STARTTLS the client starts again from nothing; aiosmtpd has
            # discarded plaintext pipelined behind STARTTLS and made a new session.
            self.info = SessionInfo(listener="submission", tls=True,
                                    peer_ip=self.info.peer_ip, peer_port=self.info.peer_port)
            self.owned = frozenset()

    def connection_lost(self, error: Exception | None) -> None:
        if self.counted_ip is not None:
            self.ctx.throttles.connections.release(self.counted_ip)
            self.counted_ip = None
        if self._handler_coroutine is None:  # refused in connection_made
            return
        super().connection_lost(error)

    # -- gates ---------------------------------------------------------------------------

    def _gate(self, name: str, method: Callable[[Any], Awaitable[None]]
              ) -> Callable[[Any], Awaitable[None]]:
        async def gated(arg: str | None) -> None:
            self.commands_left -= 1
            if self.commands_left < 0:
                await self.push(replies.TOO_MANY_COMMANDS)
                if self.transport is not None:
                    self.transport.close()
                return
            if arg and any(c in arg for c in _FORBIDDEN_IN_ARGS):
                await self.push(replies.BAD_ARGUMENT)
                return
            if name in ("MAIL", "RCPT"):
                # Decisions are made on the path as the client wrote it, not on what a
                # lenient parser made of it (aiosmtpd drops source routes and comments).
                self.raw_path = _raw_path(arg or "")
            await method(arg)

        return gated

    @property
    def tls_active(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    async def check_auth_needed(self, caller_method: str) -> bool:
        assert self.session is not None
        if self.session.authenticated or self.trusted is not None:
            return False
        await self.push(replies.AUTH_REQUIRED)
        return True

    async def handle_exception(self, error: Exception) -> str:
        ref = secrets.token_hex(6)
        log.error("ref=%s peer=%s unhandled %s: %s", ref, self.info.peer_ip,
                  type(error).__name__, error, exc_info=error)
        self._set_rset_state()
        return replies.format_reply(replies.INTERNAL_ERROR, ref=ref)

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
            result = await self.ctx.authenticator.authenticate(login, password)
        except AuthenticationUnavailable as exc:
            log.error("auth backend unavailable login=%s ip=%s: %s", login, ip, exc)
            return AuthResult(success=False, handled=False, message=replies.AUTH_UNAVAILABLE)
        if result is None:
            # Same reply whatever went wrong: unknown user, wrong password, disabled account.
            throttle.failure(ip, login)
            log.warning("auth failed login=%s ip=%s waited=%.2fs", login, ip, delay)
            return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID)
        throttle.success(ip, login)
        self.info.auth_user = result.address
        self.owned = frozenset(result.senders)
        log.info("auth ok login=%s ip=%s", result.address, ip)
        return AuthResult(success=True, auth_data=result, message=replies.AUTH_OK)

    # -- handler hooks (aiosmtpd calls these with handler=self) ---------------------------

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        self.info.helo = hostname
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str) -> str:
        self.info.helo = hostname
        session.host_name = hostname
        return f"250 {self.hostname}"

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        try:
            parsed = parse_mail_from(self.raw_path, utf8=bool(envelope.smtp_utf8))
        except AddressError as exc:
            return replies.format_reply(replies.BAD_SENDER_SYNTAX, why=exc.text)
        if parsed is None:  # <>: bounces do not come from mail clients
            return replies.format_reply(replies.BAD_SENDER_SYNTAX, why="null sender")
        sender = parsed.key
        owned = self.owned if session.authenticated else (
            self.trusted.senders if self.trusted else frozenset())
        if sender not in owned:
            log.warning("sender %s not owned by %s (ip %s)", sender,
                        self.info.auth_user or (self.trusted and self.trusted.name),
                        self.info.peer_ip)
            return replies.SENDER_NOT_OWNED
        if self.ctx.disk.is_low():
            return replies.LOW_DISK
        user_key = self.info.auth_user or (self.trusted.name if self.trusted else "")
        if self.ctx.throttles.message_wait(user_key, self.info.peer_ip) > 0:
            log.warning("rate limit: user=%s ip=%s", user_key, self.info.peer_ip)
            return replies.RATE_LIMITED
        if self.trusted is not None and not session.authenticated:
            self.info.trusted_host = self.trusted.name
            self.owned = self.trusted.senders
        envelope.mail_from = sender
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.ctx.config.submission.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        try:
            rcpt = str(parse_rcpt_to(self.raw_path, utf8=bool(envelope.smtp_utf8)))
        except AddressError as exc:
            return replies.format_reply(replies.BAD_ADDRESS, why=exc.text)
        # Relaying is for authenticated users and trusted hosts only; check_auth_needed has
        # already refused everyone else before RCPT.
        envelope.rcpt_tos.append(rcpt)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        started = time.monotonic()
        raw = envelope.original_content or b""
        info = SessionInfo(**vars(self.info))
        info.tls = self.tls_active
        mail = Mail(session=info, mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos), raw=bytes(raw), direction="outbound")
        status, reply = "accepted", ""
        try:
            if _has_overlong_line(mail.raw, self.ctx.config.submission.max_line_length):
                status, reply = "rejected", replies.LINE_TOO_LONG
            else:
                accepted = await self.ctx.pipeline.accept(mail, self.owned)
                reply = replies.format_reply(replies.ACCEPTED, queue_id=accepted.queue_id)
        except StageReject as rej:
            status, reply = "rejected", rej.reply
        except StoreUnavailable as exc:
            ref = secrets.token_hex(6)
            log.error("ref=%s queue_id=%s store unavailable: %s", ref, mail.queue_id, exc)
            status, reply = "deferred", replies.format_reply(replies.STORE_UNAVAILABLE, ref=ref)
        except Exception as exc:
            ref = secrets.token_hex(6)
            log.error("ref=%s queue_id=%s pipeline failed: %s: %s", ref, mail.queue_id,
                      type(exc).__name__, exc, exc_info=exc)
            status, reply = "deferred", replies.format_reply(replies.INTERNAL_ERROR, ref=ref)
        translog.info(
            "queue_id=%s message_id=%s from=<%s> to=%s size=%d user=%s client=%s verdict=%s "
            "status=%s reply=%r duration=%.3f",
            mail.queue_id, mail.message_id or "-", mail.mail_from,
            ",".join(f"<{r}>" for r in mail.rcpt_tos), mail.size,
            info.auth_user or info.trusted_host or "-", info.peer_ip, mail.verdict, status,
            reply[:3], time.monotonic() - started)
        return reply


def _raw_path(arg: str) -> str:
    """The path of `FROM:<path> PARAMS` / `TO:<path> PARAMS` as the client wrote it."""
    _, _, rest = arg.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        end = rest.rfind(">")
        return rest[: end + 1] if end > 0 else rest
    return rest.split(" ", 1)[0]


@functools.lru_cache(maxsize=8)
def _overlong_line(limit: int) -> re.Pattern[bytes]:
    # More than `limit` characters before the line ending (the CR of CRLF is allowed).
    return re.compile(rb"[^\r\n]{%d}" % (limit + 1))


def _has_overlong_line(raw: bytes, limit: int) -> bool:
    return _overlong_line(limit).search(raw) is not None


class DiskSpace:
    """Is free space in data_dir below gateway.min_free_disk_mb? Asked at most once a second."""

    def __init__(self, config: Config) -> None:
        self.path = config.data_dir
        self.minimum = config.gateway.min_free_disk_mb * 1024 * 1024
        self.checked_at = -1e9
        self.low = False

    def is_low(self) -> bool:
        now = time.monotonic()
        if now - self.checked_at >= 1.0:
            self.checked_at = now
            try:
                free = shutil.disk_usage(self.path).free
            except OSError:
                free = 0
            self.low = free < self.minimum
        return self.low
