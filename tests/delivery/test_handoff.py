"""The store writer hands fresh mail to its own process's delivery workers (SQLite and
PostgreSQL): entries committed already leased, delivered without a claim; held mail and mail
arriving while the workers are not running go through the store as before."""

from __future__ import annotations

import contextlib

from mailgw.delivery.worker import DeliveryService
from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.store.db import session_factory
from mailgw.store.writer import StoreWriter
from tests.delivery.conftest import (
    SENDER,
    entries,
    message,
    message_bytes,
    plain_config,
    wait_for,
)


@contextlib.asynccontextmanager
async def _gateway_store(engine, hop: str, tmp_path):
    """A store writer handing off to a delivery service polling once an hour, both running,
    results through the writer's transactions as in the gateway."""
    writer = StoreWriter(session_factory(engine))
    svc = DeliveryService(plain_config(tmp_path, default=hop), engine, "n1",
                          poll_interval=3600, writer=writer)
    writer.handoff = svc
    await svc.start()
    writer.start()
    try:
        yield writer, svc
    finally:
        writer.stop()
        await svc.stop()


def _mail(verdict: str = "allow") -> Mail:
    mail = Mail(SessionInfo(listener="submission", peer_ip="127.0.0.1", helo="client.test"),
                SENDER, ["a@example.org", "b@example.org"], message_bytes())
    mail.verdict = verdict
    return mail


async def test_committed_mail_is_delivered_without_a_claim(engine, sink, tmp_path):
    # A poll interval of an hour and no wake(): only the hand-off can deliver this message.
    async with _gateway_store(engine, sink.hop, tmp_path) as (writer, _):
        mail = _mail()
        await writer.commit(mail)
        assert mail.handed_off
        await wait_for(lambda: message(engine, mail.queue_id).status == "done",
                       what="handed-off message delivered")
    assert len(sink.handler.received) == 1
    assert sorted(sink.handler.received[0].rcpt_tos) == ["a@example.org", "b@example.org"]
    es = entries(engine, mail.queue_id)
    assert all(e.status == "delivered" and e.attempts == 1 and e.locked_by is None
               for e in es.values())
    assert message(engine, mail.queue_id).processed_at is not None


async def test_mail_is_stored_unleased_while_the_workers_are_not_running(engine, tmp_path):
    svc = DeliveryService(plain_config(tmp_path, default="smtp:[127.0.0.1]:9"), engine, "n1")
    writer = StoreWriter(session_factory(engine))
    writer.handoff = svc  # never started: it wants nothing
    writer.start()
    try:
        mail = _mail()
        await writer.commit(mail)
    finally:
        writer.stop()
    assert not mail.handed_off
    es = entries(engine, mail.queue_id)
    assert {e.status for e in es.values()} == {"queued"}
    assert all(e.locked_by is None and e.locked_until is None for e in es.values())


async def test_mail_with_a_verdict_goes_through_the_claim(engine, sink, tmp_path):
    # A verdict other than allow may hold the message or queue notices: not handed off, and
    # still delivered, by the usual claim after wake().
    async with _gateway_store(engine, sink.hop, tmp_path) as (writer, svc):
        flagged = _mail("flag")
        await writer.commit(flagged)
        assert not flagged.handed_off
        svc.wake()
        await wait_for(lambda: message(engine, flagged.queue_id).status == "done",
                       what="flagged message delivered after a claim")
    assert len(sink.handler.received) == 1
