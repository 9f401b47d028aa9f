"""The connection cache of the SMTP transport against a real aiosmtpd sink on 127.0.0.1: a
session fresh from a clean transaction is reused without RSET, a stale one is replaced for the
same message, and a half-finished transaction is reset before reuse."""

from __future__ import annotations

import asyncio
import time

from mailgw.delivery import smtp
from tests.delivery.conftest import SENDER, message_bytes


async def _send(sink, cache, rcpt: str):
    return await smtp.send("127.0.0.1", sink.port, SENDER, [rcpt], message_bytes(),
                           helo="gw.test", cache=cache, connect_timeout=5, command_timeout=5)


async def test_fresh_clean_session_is_reused_without_rset(sink):
    cache = smtp.ConnectionCache()
    for i in range(3):
        results = await _send(sink, cache, f"r{i}@example.org")
        assert results[f"r{i}@example.org"].kind == "delivered"
    assert len(sink.connections) == 1
    assert sink.handler.rsets == 0


async def test_session_dropped_by_the_server_is_replaced_for_the_same_message(sink):
    cache = smtp.ConnectionCache()
    assert (await _send(sink, cache, "a@example.org"))["a@example.org"].kind == "delivered"
    # Closed by the server, and the client has not seen it yet: MAIL meets a closed session.
    sink.drop_connections()
    results = await _send(sink, cache, "b@example.org")
    assert results["b@example.org"].kind == "delivered", results
    assert len(sink.connections) == 2
    assert sink.copies_for("b@example.org") == 1


async def test_transaction_without_data_is_reset_before_reuse(sink):
    cache = smtp.ConnectionCache()
    sink.handler.rcpt_replies["refused@example.org"] = "550 5.1.1 No such user"
    refused = await _send(sink, cache, "refused@example.org")
    assert refused["refused@example.org"].kind == "permanent"
    assert (await _send(sink, cache, "ok@example.org"))["ok@example.org"].kind == "delivered"
    assert len(sink.connections) == 1
    assert sink.handler.rsets == 1


async def test_a_next_hop_that_stops_answering_is_a_temporary_failure_in_bounded_time():
    # Greets and answers EHLO, then never answers MAIL: the transaction's deadline (a
    # command_timeout per reply it waits for) ends it, the session is not kept.
    async def mute_after_ehlo(reader, writer):
        writer.write(b"220 mute.test ESMTP\r\n")
        while line := await reader.readline():
            if line.upper().startswith((b"EHLO", b"HELO")):
                writer.write(b"250 mute.test\r\n")
        writer.close()

    server = await asyncio.start_server(mute_after_ehlo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cache = smtp.ConnectionCache()
    started = time.monotonic()
    try:
        async with asyncio.timeout(20):
            results = await smtp.send("127.0.0.1", port, SENDER, ["a@example.org"],
                                      message_bytes(), helo="gw.test", cache=cache,
                                      connect_timeout=5, command_timeout=0.25)
    finally:
        server.close()
    took = time.monotonic() - started
    assert results["a@example.org"].kind == "temporary"
    assert "timed out" in results["a@example.org"].reply
    assert 0.9 <= took < 10  # 4 replies x 0.25 s, not the 20 s guard
    assert await cache.take("127.0.0.1", port) is None
