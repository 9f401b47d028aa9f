"""SMTP transport: hand one message to one next-hop host for several recipients (aiosmtplib).

EHLO with our hostname, STARTTLS when the server offers it (required when
`delivery.require_tls`), MAIL FROM, one RCPT TO per recipient (each recipient gets its own
reply), DATA once for the accepted ones. Connection trouble and timeouts are temporary failures
for every recipient; a reply is delivered / temporary / permanent by its code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from collections.abc import Sequence

import aiosmtplib

from mailgw.delivery import fastdata
from mailgw.delivery.result import Result, from_reply, permanent, temporary

fastdata.install()


@functools.cache
def _client_tls_context() -> ssl.SSLContext:
    # Opportunistic TLS between MTAs, as Postfix's `smtp_tls_security_level = may`: encrypt,
    # without refusing a self-signed or mismatched certificate (there is no one to ask). Made
    # once: loading the CA bundle took ~60 ms on the event loop for every new connection, and
    # nothing is verified against it anyway.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ConnectFailed(Exception):
    """The host could not be reached or did not greet us (try the next MX host)."""


class ConnectionCache:
    """Idle SMTP sessions per next hop, reused for the next message (as Postfix's connection
    cache does): a new TCP connection, greeting, EHLO and STARTTLS per message would cost more
    than the message itself. A session is handed to one sender at a time and closed after
    `idle_seconds` unused or `max_uses` messages. Before reuse it gets an RSET if it was idle
    longer than `check_after` seconds or its last transaction did not end with DATA; a fresh,
    clean one is used at once (one round trip less per message), and if the server dropped it
    meanwhile, `send` opens a new session for the message instead of deferring it."""

    def __init__(self, idle_seconds: float = 5.0, max_uses: int = 100,
                 check_after: float = 1.0) -> None:
        self.idle_seconds = idle_seconds
        self.max_uses = max_uses
        self.check_after = check_after
        # per host: (session, idle since, uses, its last transaction ended cleanly)
        self._idle: dict[tuple[str, int],
                         list[tuple[aiosmtplib.SMTP, float, int, bool]]] = {}
        self._uses: dict[int, int] = {}

    def sweep(self) -> None:
        """Close sessions idle for longer than `idle_seconds`."""
        self._sweep(time.monotonic())

    def _sweep(self, now: float) -> None:
        for key, items in list(self._idle.items()):
            keep = []
            for client, since, uses, clean in items:
                if now - since > self.idle_seconds or not client.is_connected:
                    client.close()
                    self._uses.pop(id(client), None)
                else:
                    keep.append((client, since, uses, clean))
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    async def take(self, host: str, port: int) -> aiosmtplib.SMTP | None:
        """A live idle session to host:port, or None."""
        now = time.monotonic()
        self._sweep(now)
        items = self._idle.get((host, port))
        while items:
            client, since, uses, clean = items.pop()
            try:
                # The server may have dropped it meanwhile; RSET also clears any half
                # transaction (a message whose recipients were all refused).
                if not clean or now - since > self.check_after:
                    await client.rset(timeout=5.0)
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                client.close()
                continue
            self._uses[id(client)] = uses
            return client
        return None

    def put(self, host: str, port: int, client: aiosmtplib.SMTP, clean: bool = True) -> None:
        """Keep a session whose last command got its reply; `clean`: that transaction ended
        with DATA (else it needs an RSET before the next one)."""
        uses = self._uses.pop(id(client), 0) + 1
        if not client.is_connected or uses >= self.max_uses:
            client.close()
            return
        self._idle.setdefault((host, port), []).append((client, time.monotonic(), uses, clean))

    def discard(self, client: aiosmtplib.SMTP) -> None:
        """Forget a session taken from the cache that failed."""
        self._uses.pop(id(client), None)
        client.close()

    def close_all(self) -> None:
        for items in self._idle.values():
            for client, *_ in items:
                client.close()
        self._idle.clear()
        self._uses.clear()


async def send(host: str, port: int, mail_from: str, recipients: Sequence[str], content: bytes,
               *, helo: str, require_tls: bool = False, connect_timeout: float = 30.0,
               command_timeout: float = 300.0, tls_context: ssl.SSLContext | None = None,
               raise_on_connect_failure: bool = False,
               cache: ConnectionCache | None = None) -> dict[str, Result]:
    """Deliver `content` to `recipients` via host:port; one Result per recipient.

    With `raise_on_connect_failure`, a failure before the server's greeting and EHLO raises
    ConnectFailed instead of returning temporary results (the mx transport then tries the next
    host). With `cache`, an idle session to the same host is reused and this one is kept.
    """
    remote = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"

    def all_(result: Result) -> dict[str, Result]:
        return dict.fromkeys(recipients, result)

    client = await cache.take(host, port) if cache is not None else None
    reused = client is not None
    drop = cache.discard if cache is not None else _close
    while True:
        if client is None:
            opened = await _open(host, port, remote, helo=helo, require_tls=require_tls,
                                 connect_timeout=connect_timeout,
                                 command_timeout=command_timeout, tls_context=tls_context,
                                 raise_on_connect_failure=raise_on_connect_failure)
            if isinstance(opened, Result):
                return all_(opened)
            client = opened
        try:
            # One deadline for the transaction instead of one per reply: as long in all (a
            # command_timeout per reply it waits for), and one timer per message instead of
            # four (aiosmtplib's per-command wait_for was about 1 % of the CPU per message).
            async with asyncio.timeout(command_timeout * (3 + len(recipients))):
                results, clean = await _transaction(client, remote, mail_from, recipients,
                                                    content, reused=reused)
            break
        except _StaleSession:
            # The cached session was closed by the server before MAIL got a reply: nothing
            # was sent; the message goes out on a new session (once: that one is not reused).
            drop(client)
            client, reused = None, False
        except aiosmtplib.SMTPResponseException as exc:
            drop(client)
            return all_(from_reply(exc.code, exc.message, remote))
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            drop(client)
            return all_(temporary(f"conversation with {remote}: {_describe(exc)}", remote))
        except BaseException:
            drop(client)
            raise
    if cache is not None:
        cache.put(host, port, client, clean)
    else:
        await _quit(client)
        client.close()
    return results


async def _open(host: str, port: int, remote: str, *, helo: str, require_tls: bool,
                connect_timeout: float, command_timeout: float,
                tls_context: ssl.SSLContext | None,
                raise_on_connect_failure: bool) -> aiosmtplib.SMTP | Result:
    """A new session, greeted, EHLO'd and upgraded to TLS when offered; else why not."""
    client = aiosmtplib.SMTP(hostname=host, port=port, local_hostname=helo,
                             timeout=command_timeout, start_tls=False, validate_certs=False)
    ready = False
    try:
        try:
            await asyncio.wait_for(client.connect(timeout=connect_timeout), connect_timeout)
            await client.ehlo()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            why = _describe(exc)
            if raise_on_connect_failure:
                raise ConnectFailed(f"connect to {remote}: {why}") from exc
            return temporary(f"connect to {remote}: {why}", remote)
        if client.supports_extension("starttls"):
            try:
                await client.starttls(tls_context=tls_context or _client_tls_context())
                await client.ehlo()
            except aiosmtplib.SMTPResponseException as exc:
                # A failed upgrade leaves the session in an unknown state: try again later.
                return temporary(f"STARTTLS failed at {remote}: {exc.code} {exc.message}",
                                 remote)
        elif require_tls:
            # Temporary, not permanent: the next hop may offer TLS again after a fix.
            return temporary(f"TLS is required but {remote} does not offer STARTTLS", remote)
        ready = True
        return client
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        return temporary(f"conversation with {remote}: {_describe(exc)}", remote)
    finally:
        if not ready:
            client.close()


class _StaleSession(Exception):
    """A reused session was closed before MAIL FROM got a reply (nothing was sent)."""


async def _transaction(client: aiosmtplib.SMTP, remote: str, mail_from: str,
                       recipients: Sequence[str], content: bytes, *, reused: bool = False,
                       ) -> tuple[dict[str, Result], bool]:
    """The transaction's results per recipient, and whether it ended with DATA (clean).
    The caller bounds its time (the commands wait without a timeout of their own)."""
    options = []
    if client.supports_extension("8bitmime") and not content.isascii():
        options.append("BODY=8BITMIME")
    needs_utf8 = not (mail_from.isascii() and all(r.isascii() for r in recipients))
    if needs_utf8:
        if not client.supports_extension("smtputf8"):
            return dict.fromkeys(recipients, permanent(
                f"{remote} does not support SMTPUTF8, needed for these addresses", remote)), True
        options.append("SMTPUTF8")
    if client.supports_extension("size"):
        options.append(f"SIZE={len(content)}")
    encoding = "utf-8" if needs_utf8 else "ascii"
    try:
        reply = await client.mail(mail_from, options=options, encoding=encoding, timeout=None)
    except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
        if reused:
            raise _StaleSession() from None
        raise
    results: dict[str, Result] = {}
    accepted: list[str] = []
    for rcpt in recipients:
        try:
            r = await client.rcpt(rcpt, encoding=encoding, timeout=None)
        except aiosmtplib.SMTPRecipientRefused as exc:
            results[rcpt] = from_reply(exc.code, exc.message, remote)
            continue
        results[rcpt] = from_reply(r.code, r.message, remote)
        if 200 <= r.code < 300:
            accepted.append(rcpt)
    if not accepted:
        return results, False
    try:
        reply = await client.data(content, timeout=None)
        outcome = from_reply(reply.code, reply.message, remote)
    except aiosmtplib.SMTPResponseException as exc:
        outcome = from_reply(exc.code, exc.message, remote)
    for rcpt in accepted:
        results[rcpt] = outcome
    return results, True


def _close(client: aiosmtplib.SMTP) -> None:
    client.close()


async def _quit(client: aiosmtplib.SMTP) -> None:
    # The mail is already handed over (or refused); a rude server at QUIT changes nothing.
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
        await client.quit()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    if isinstance(exc, asyncio.TimeoutError | aiosmtplib.SMTPTimeoutError):
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
