"""The SMTP edge shared by every listener (submission, MX): sanity checks and the reply mapping.

A thin protocol edge on aiosmtpd (DESIGN §4.1): it unwraps SMTP, checks sanity, hands the
transaction to the pipeline and maps the outcome to a reply from `mailgw.smtp.replies`. No
policy, archive or DKIM code lives here. Each listener subclasses `GatewaySMTP` for what differs
(who may send, which recipients are accepted, the direction of the mail).

What aiosmtpd does not do for us, and this base class adds:
- refusal of control characters in command arguments, and a command budget per session;
- the MAIL/RCPT path as the client wrote it (aiosmtpd's parser drops source routes), for checks;
- connection limits per process and per IP, a low-disk check, line-length checks on DATA;
- the session reset after STARTTLS (RFC 3207 4.2) for our own session state too;
- a 451 with a correlation id instead of aiosmtpd's permanent "500 Error: (exception text)",
  and one structured log line per transaction.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session, _AuthMechAttr, syntax

from mailgw.config import Config
from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.pipeline.outcome import StageReject
from mailgw.pipeline.runner import Pipeline
from mailgw.smtp import replies
from mailgw.smtp.addresses import Address, AddressError, parse_mail_from, parse_rcpt_to
from mailgw.smtp.data import DataState, read_data
from mailgw.smtp.throttle import SubmissionThrottles
from mailgw.store.writer import StoreUnavailable

log = logging.getLogger("mailgw.smtp")
translog = logging.getLogger("mailgw.transaction")

NULL_SENDER = "<>"
_FORBIDDEN_IN_ARGS = ("\x00", "\r", "\n")
_ATOM = r"[A-Za-z0-9_+=-]+"
# <local@domain> with a dot-atom local part and an ASCII domain, then a space or the end.
_PLAIN_PATH = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(?=[ \t]|$)")


@dataclass
class EdgeContext:
    """What every connection of one listener process shares."""

    config: Config
    pipeline: Pipeline
    tls_context: ssl.SSLContext | None
    throttles: SubmissionThrottles
    disk: DiskSpace


class GatewaySMTP(SMTP):
    """One client connection; subclasses say who may send what (see submission.py, mx.py)."""

    listener = "submission"
    direction = "outbound"

    def __init__(self, ctx: EdgeContext, implicit_tls: bool, *, offer_auth: bool) -> None:
        sub = ctx.config.submission
        # A DATA line longer than this, CRLF included, is refused ("500 Line too long"):
        # checked as the blocks arrive (smtp_DATA below). (A line of exactly the maximum
        # that the client had to dot-stuff counts one byte too many.)
        self.line_length_limit = sub.max_line_length + 2
        self.ctx = ctx
        self.implicit_tls = implicit_tls
        self.offer_auth = offer_auth
        self.commands_left = sub.max_commands
        self.owned: frozenset[str] = frozenset()
        self.info = SessionInfo(listener=self.listener, tls=implicit_tls)
        self.counted_ip: str | None = None
        self.raw_path = ""
        tables = _TABLES.get(type(self))
        # See __dir__: aiosmtpd finds the commands itself for the first connection of a
        # class only; later connections get the same tables bound to them.
        self._discovering = tables is None
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
        if tables is None:
            tables = _TABLES[type(self)] = _CommandTables.capture(self)
            self._discovering = False
        tables.install(self)

    def __dir__(self) -> list[str]:
        # aiosmtpd's __init__ finds the auth_*, smtp_* and handle_* methods with dir(),
        # inspect.getmembers() and inspect.signature() on every connection: about 0.1 ms,
        # 4% of a 10 KB message's CPU in the load benchmark. The tables are the same for every
        # connection of a class, so only the first one lists the names (and only those).
        return _command_names(type(self)) if self._discovering else []

    def on_connect(self, ip: str) -> None:
        """Called once per connection, before the greeting (subclasses look up the peer)."""

    def on_starttls(self) -> None:
        """Called after STARTTLS: forget everything the client said before it."""
        self.info = SessionInfo(listener=self.listener, tls=True,
                                peer_ip=self.info.peer_ip, peer_port=self.info.peer_port)
        self.owned = frozenset()

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        starttls_done = self._original_transport is not None and self.transport is not None
        if not starttls_done:
            peer = transport.get_extra_info("peername") or ("", 0)
            ip = str(peer[0])
            if not self.ctx.throttles.connections.acquire(ip):
                log.warning("connection from %s refused: too many connections", ip)
                # A stream transport; uvloop's do not subclass asyncio.WriteTransport.
                cast(asyncio.WriteTransport, transport).write(
                    replies.TOO_MANY_CONNECTIONS.encode() + b"\r\n")
                transport.close()
                # aiosmtpd still needs its session objects for connection_lost().
                self.session = self._create_session()
                self._handler_coroutine = None
                return
            self.counted_ip = ip
            self.info.peer_ip, self.info.peer_port = ip, int(peer[1])
            self.on_connect(ip)
        super().connection_made(transport)
        if starttls_done:
            # RFC 3207 4.2: after STARTTLS the client starts again from nothing; aiosmtpd has
            # discarded plaintext pipelined behind STARTTLS and made a new session.
            self.on_starttls()

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

        # HELP reads the command's syntax attributes from what the table gives it.
        gated.__dict__.update(method.__dict__)
        gated.__wrapped__ = method  # type: ignore[attr-defined]
        return gated

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every MAIL/RCPT path with the email package's RFC 5322 header
        # parser (~0.1 ms each). A plain <dot-atom@domain> path needs none of it: the result
        # is the same (a test compares both), anything else still goes to aiosmtpd.
        m = _PLAIN_PATH.match(arg)
        rest = arg[m.end():].lstrip(" \t") if m is not None else ""
        if m is None or rest.startswith("("):  # a comment: the header parser drops it
            return super()._getaddr(arg)
        address = m.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest

    @property
    def tls_active(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    async def handle_exception(self, error: Exception) -> str:
        ref = secrets.token_hex(6)
        log.error("ref=%s peer=%s unhandled %s: %s", ref, self.info.peer_ip,
                  type(error).__name__, error, exc_info=error)
        self._set_rset_state()
        return replies.format_reply(replies.INTERNAL_ERROR, ref=ref)

    # -- handler hooks (aiosmtpd calls these with handler=self) ---------------------------

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        self.info.helo = hostname
        session.host_name = hostname
        if not self.offer_auth:
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
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
        refusal = self.refuse_sender(session, parsed)
        if refusal is not None:
            return refusal
        if self.ctx.disk.is_low():
            return replies.LOW_DISK
        user = self.rate_user()
        if self.ctx.throttles.message_wait(user, self.info.peer_ip) > 0:
            log.warning("rate limit: user=%s ip=%s", user or "-", self.info.peer_ip)
            return replies.RATE_LIMITED
        # aiosmtpd needs a true value to know MAIL was given; `<>` stands for the null sender.
        envelope.mail_from = NULL_SENDER if parsed is None else parsed.key
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    def refuse_sender(self, session: Session, sender: Address | None) -> str | None:
        """The reply refusing this MAIL FROM on this listener (None: the null sender `<>`),
        or None to accept it."""
        raise NotImplementedError

    def rate_user(self) -> str | None:
        """Who the per-user message rate counts this transaction against (None: nobody)."""
        return None

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.ctx.config.submission.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        try:
            rcpt = parse_rcpt_to(self.raw_path, utf8=bool(envelope.smtp_utf8))
        except AddressError as exc:
            return replies.format_reply(replies.BAD_ADDRESS, why=exc.text)
        refusal = self.refuse_recipient(envelope, rcpt)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(str(rcpt))
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RECIPIENT_OK

    def refuse_recipient(self, envelope: Envelope, rcpt: Address) -> str | None:
        """The reply refusing `rcpt` on this listener, or None to accept it."""
        raise NotImplementedError

    async def push(self, status: Any) -> None:
        # aiosmtpd words some refusals itself, in English only: ours say the same in Vietnamese
        # (ASCII) and English, with an enhanced status code.
        reworded = _REWORDED.get(status)
        if reworded is None and isinstance(status, str) and status.startswith(_UNKNOWN):
            reworded = replies.COMMAND_UNKNOWN  # '500 Error: command "X" not recognized'
        await super().push(reworded or status)

    @syntax("DATA")  # as aiosmtpd's own: HELP lists it
    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd's DATA, with the data read in blocks (mailgw.smtp.data) instead of one
        # event-loop round per line; the checks before and the replies after are aiosmtpd's.
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(replies.NEED_RCPT)
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            data = await read_data(self._reader, size_limit=self.data_size_limit,
                                   line_limit=self.line_length_limit)
        except asyncio.CancelledError:
            log.info("connection lost during DATA (peer %s)", self.info.peer_ip)
            self._writer.close()
            raise
        except asyncio.IncompleteReadError:
            log.info("connection closed during DATA (peer %s)", self.info.peer_ip)
            self._writer.close()
            return
        if data.state is not DataState.OK:
            # Read to the end, then refused (RFC 5321 4.2.5).
            self._set_post_data_state()
            await self.push(_DATA_REFUSALS[data.state])
            return
        self.envelope.content = self.envelope.original_content = data.content
        assert self.session is not None
        status = await self.handle_DATA(self, self.session, self.envelope)
        self._set_post_data_state()
        await self.push(status)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        started = time.monotonic()
        raw = envelope.original_content or b""
        info = SessionInfo(**vars(self.info))
        info.tls = self.tls_active
        mail = Mail(session=info, mail_from=self.envelope_sender(envelope),
                    rcpt_tos=list(envelope.rcpt_tos), raw=bytes(raw), direction=self.direction)
        status, reply = "accepted", ""
        try:
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

    def envelope_sender(self, envelope: Envelope) -> str:
        sender = str(envelope.mail_from)
        return "" if sender == NULL_SENDER else sender


_UNKNOWN = '500 Error: command "'
# aiosmtpd's own reply texts (exactly as it pushes them) -> the gateway's.
_REWORDED: dict[str, str] = {
    # MAIL FROM with SIZE= over the limit (RFC 1870: 552, enhanced 5.3.4).
    "552 Error: message size exceeds fixed maximum message size": replies.MESSAGE_TOO_BIG,
    "530 Must issue a STARTTLS command first": replies.STARTTLS_FIRST,
    "554 Command refused due to lack of security": replies.NO_SECURITY,
    "503 Error: send HELO first": replies.format_reply(replies.HELO_FIRST, helo="HELO"),
    "503 Error: send EHLO first": replies.format_reply(replies.HELO_FIRST, helo="EHLO"),
    "503 Error: nested MAIL command": replies.NESTED_MAIL,
    "503 Error: need MAIL command": replies.NEED_MAIL,
    "503 Already authenticated": replies.ALREADY_AUTHENTICATED,
    "500 Command line too long": replies.COMMAND_TOO_LONG,
    "500 Error: bad syntax": replies.BAD_SYNTAX,
    "555 MAIL FROM parameters not recognized or not implemented": replies.MAIL_PARAMS_UNKNOWN,
    "555 RCPT TO parameters not recognized or not implemented": replies.RCPT_PARAMS_UNKNOWN,
    "501 Error: BODY can only be one of 7BIT, 8BITMIME": replies.BAD_BODY_PARAM,
    "454 TLS not available": replies.TLS_UNAVAILABLE,
}

_DATA_REFUSALS = {
    DataState.TOO_LONG: replies.LINE_TOO_LONG,
    DataState.TOO_MUCH: replies.MESSAGE_TOO_BIG,
}


def _raw_path(arg: str) -> str:
    """The path of `FROM:<path> PARAMS` / `TO:<path> PARAMS` as the client wrote it."""
    _, _, rest = arg.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        end = rest.rfind(">")
        return rest[: end + 1] if end > 0 else rest
    return rest.split(" ", 1)[0]


@dataclass(frozen=True)
class _CommandTables:
    """aiosmtpd's per-connection command tables of one listener class, as plain functions."""

    auth: dict[str, tuple[Callable[..., Any], bool]]
    hooks: dict[str, Callable[..., Any]]
    commands: dict[str, Callable[..., Any]]
    ehlo_hook_ver: str | None

    @classmethod
    def capture(cls, smtp: GatewaySMTP) -> _CommandTables:
        return cls(
            auth={name: (_function(attr.method), attr.is_builtin)
                  for name, attr in smtp._auth_methods.items()},
            hooks={name: _function(hook) for name, hook in smtp._handle_hooks.items()},
            commands={name: _function(method) for name, method in smtp._smtp_methods.items()},
            ehlo_hook_ver=smtp._ehlo_hook_ver,
        )

    def install(self, smtp: GatewaySMTP) -> None:
        smtp._auth_methods = _BoundAuth(smtp, self.auth)
        smtp._handle_hooks = _Bound(smtp, self.hooks)
        # Every command goes through one gate: control characters and the command budget.
        smtp._smtp_methods = _GatedCommands(smtp, self.commands)
        smtp._ehlo_hook_ver = self.ehlo_hook_ver


_TABLES: dict[type, _CommandTables] = {}


def _function(method: Any) -> Callable[..., Any]:
    func: Callable[..., Any] = method.__func__  # a bound method of the listener
    return func


class _Bound(dict[str, Any]):
    """One of aiosmtpd's tables for one connection: the class's functions, each bound to the
    connection when aiosmtpd looks it up (get or []). A session uses a handful of some thirty
    entries, and binding them all at every connect was 1 % of a message's CPU. Iterating gives
    the plain functions (aiosmtpd only lists names, or reads HELP's syntax attributes)."""

    def __init__(self, owner: GatewaySMTP, functions: dict[str, Any]) -> None:
        super().__init__(functions)
        self._owner = owner

    def bind(self, name: str, entry: Any) -> Any:
        return entry.__get__(self._owner)

    def get(self, name: str, default: Any = None) -> Any:
        entry = super().get(name)
        return default if entry is None else self.bind(name, entry)

    def __getitem__(self, name: str) -> Any:
        return self.bind(name, super().__getitem__(name))


class _BoundAuth(_Bound):
    """The AUTH mechanisms: entries are (function, is_builtin), as aiosmtpd's _AuthMechAttr."""

    def bind(self, name: str, entry: Any) -> Any:
        func, builtin = entry
        return _AuthMechAttr(func.__get__(self._owner), builtin)


class _GatedCommands(_Bound):
    """The commands, each wrapped in the edge's gate when it is looked up."""

    def bind(self, name: str, entry: Any) -> Any:
        return self._owner._gate(name, entry.__get__(self._owner))


def _command_names(cls: type) -> list[str]:
    """The auth_*, smtp_* and handle_* names a listener class has (for aiosmtpd's look-ups,
    once per class: see _CommandTables)."""
    return sorted({name for klass in cls.__mro__ for name in vars(klass)
                   if name.startswith(("auth_", "smtp_", "handle_"))})


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
