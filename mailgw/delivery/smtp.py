"""SMTP transport: hand one message to one next-hop host for several recipients (aiosmtplib).

EHLO with our hostname, STARTTLS when the server offers it (required when
`delivery.require_tls`), MAIL FROM, one RCPT TO per recipient (each recipient gets its own
reply), DATA once for the accepted ones. Connection trouble and timeouts are temporary failures
for every recipient; a reply is delivered / temporary / permanent by its code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence

import aiosmtplib

from mailgw.delivery.result import Result, from_reply, permanent, temporary


def _client_tls_context() -> ssl.SSLContext:
    # Opportunistic TLS between MTAs, as Postfix's `smtp_tls_security_level = may`: encrypt,
    # without refusing a self-signed or mismatched certificate (there is no one to ask).
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ConnectFailed(Exception):
    """The host could not be reached or did not greet us (try the next MX host)."""


async def send(host: str, port: int, mail_from: str, recipients: Sequence[str], content: bytes,
               *, helo: str, require_tls: bool = False, connect_timeout: float = 30.0,
               command_timeout: float = 300.0, tls_context: ssl.SSLContext | None = None,
               raise_on_connect_failure: bool = False) -> dict[str, Result]:
    """Deliver `content` to `recipients` via host:port; one Result per recipient.

    With `raise_on_connect_failure`, a failure before the server's greeting and EHLO raises
    ConnectFailed instead of returning temporary results (the mx transport then tries the next
    host).
    """
    remote = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    client = aiosmtplib.SMTP(hostname=host, port=port, local_hostname=helo,
                             timeout=command_timeout, start_tls=False, validate_certs=False)

    def all_(result: Result) -> dict[str, Result]:
        return dict.fromkeys(recipients, result)

    try:
        try:
            await asyncio.wait_for(client.connect(timeout=connect_timeout), connect_timeout)
            await client.ehlo()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            why = _describe(exc)
            if raise_on_connect_failure:
                raise ConnectFailed(f"connect to {remote}: {why}") from exc
            return all_(temporary(f"connect to {remote}: {why}", remote))
        if client.supports_extension("starttls"):
            try:
                await client.starttls(tls_context=tls_context or _client_tls_context())
                await client.ehlo()
            except aiosmtplib.SMTPResponseException as exc:
                # A failed upgrade leaves the session in an unknown state: try again later.
                return all_(temporary(f"STARTTLS failed at {remote}: {exc.code} {exc.message}",
                                      remote))
        elif require_tls:
            # Temporary, not permanent: the next hop may offer TLS again after a fix.
            return all_(temporary(f"TLS is required but {remote} does not offer STARTTLS",
                                  remote))
        return await _transaction(client, remote, mail_from, recipients, content)
    except ConnectFailed:
        raise
    except aiosmtplib.SMTPResponseException as exc:
        return all_(from_reply(exc.code, exc.message, remote))
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        return all_(temporary(f"conversation with {remote}: {_describe(exc)}", remote))
    finally:
        client.close()


async def _transaction(client: aiosmtplib.SMTP, remote: str, mail_from: str,
                       recipients: Sequence[str], content: bytes) -> dict[str, Result]:
    options = []
    if client.supports_extension("8bitmime") and not content.isascii():
        options.append("BODY=8BITMIME")
    needs_utf8 = not (mail_from.isascii() and all(r.isascii() for r in recipients))
    if needs_utf8:
        if not client.supports_extension("smtputf8"):
            return dict.fromkeys(recipients, permanent(
                f"{remote} does not support SMTPUTF8, needed for these addresses", remote))
        options.append("SMTPUTF8")
    if client.supports_extension("size"):
        options.append(f"SIZE={len(content)}")
    encoding = "utf-8" if needs_utf8 else "ascii"
    reply = await client.mail(mail_from, options=options, encoding=encoding)
    results: dict[str, Result] = {}
    accepted: list[str] = []
    for rcpt in recipients:
        try:
            r = await client.rcpt(rcpt, encoding=encoding)
        except aiosmtplib.SMTPRecipientRefused as exc:
            results[rcpt] = from_reply(exc.code, exc.message, remote)
            continue
        results[rcpt] = from_reply(r.code, r.message, remote)
        if 200 <= r.code < 300:
            accepted.append(rcpt)
    if not accepted:
        await _quit(client)
        return results
    try:
        reply = await client.data(content)
        outcome = from_reply(reply.code, reply.message, remote)
    except aiosmtplib.SMTPResponseException as exc:
        outcome = from_reply(exc.code, exc.message, remote)
    for rcpt in accepted:
        results[rcpt] = outcome
    await _quit(client)
    return results


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
