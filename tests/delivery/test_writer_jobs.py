"""Store work that joins the writer's grouped transactions (`StoreWriter.run`), on SQLite and
PostgreSQL: results come back, later jobs see what was committed, a failing job fails alone and
loses no message beside it."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, text

from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.store.db import session_factory
from mailgw.store.models import Message
from mailgw.store.writer import StoreWriter
from tests.delivery.conftest import SENDER, message, message_bytes


def _mail() -> Mail:
    return Mail(SessionInfo(listener="submission", peer_ip="127.0.0.1"), SENDER,
                ["a@example.org"], message_bytes())


async def test_jobs_queued_beside_mail_run_and_see_what_was_committed(engine):
    writer = StoreWriter(session_factory(engine))
    writer.start()
    try:
        mails = [_mail() for _ in range(5)]
        *pks, one = await asyncio.gather(*(writer.commit(m) for m in mails),
                                         writer.run(lambda s: s.scalar(text("SELECT 1"))))
        count = await writer.run(lambda s: s.scalar(select(func.count()).select_from(Message)))
    finally:
        writer.stop()
    assert one == 1 and count == 5
    assert all(message(engine, m.queue_id).id == pk for m, pk in zip(mails, pks, strict=True))


async def test_a_failing_job_fails_alone(engine):
    writer = StoreWriter(session_factory(engine))
    writer.start()
    try:
        mail = _mail()
        results = await asyncio.gather(
            writer.commit(mail),
            writer.run(lambda s: s.execute(text("SELECT * FROM no_such_table"))),
            return_exceptions=True)
    finally:
        writer.stop()
    pk, failure = results
    assert isinstance(pk, int) and pk > 0
    assert isinstance(failure, Exception) and "no_such_table" in str(failure)
    assert message(engine, mail.queue_id).id == pk


async def test_job_result_is_returned(engine):
    writer = StoreWriter(session_factory(engine))
    writer.start()
    try:
        assert await writer.run(lambda s: s.scalar(text("SELECT 41 + 1"))) == 42
    finally:
        writer.stop()
