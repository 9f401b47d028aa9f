"""Store work that joins the writer's grouped transactions (`StoreWriter.run`), on SQLite and
PostgreSQL: results come back, later jobs see what was committed, a failing job fails alone and
loses no message beside it."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, text

from mailgw.pipeline.mail import Mail, SessionInfo
from mailgw.store.db import session_factory
from mailgw.store.models import Message
from mailgw.store.spool import content_of, for_engine
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


async def _held_writer(engine):
    """A writer kept busy by a job until the caller has queued more, so that all of it is
    drained into one batch; returns (writer, the event that releases it, the busy job)."""
    import threading

    writer = StoreWriter(session_factory(engine))
    writer.start()
    inside, release = threading.Event(), threading.Event()

    def hold(s) -> bool:
        inside.set()
        return release.wait(10)

    busy = asyncio.ensure_future(writer.run(hold))
    assert await asyncio.to_thread(inside.wait, 10), "the writer never ran the holding job"
    return writer, release, busy


async def test_a_big_message_is_committed_after_the_small_ones_it_came_with(engine):
    writer, release, busy = await _held_writer(engine)
    try:
        big = Mail(SessionInfo(listener="submission", peer_ip="127.0.0.1"), SENDER,
                   ["a@example.org"], message_bytes(body="x" * (1024 * 1024)))
        # Quarantined: its bytes go into the database on every store (allowed mail would be
        # spooled on SQLite, with a small row that needs no transaction of its own).
        big.verdict = "quarantine"
        small = [_mail() for _ in range(3)]
        pending = [asyncio.ensure_future(writer.commit(m)) for m in [big, *small]]
        await asyncio.sleep(0.2)  # all four queued behind the busy job
        release.set()
        await busy
        big_pk, *small_pks = await asyncio.gather(*pending)
    finally:
        writer.stop()
    # Queued first, committed last: the small messages did not wait for the big one.
    assert max(small_pks) < big_pk
    assert len(content_of(message(engine, big.queue_id), for_engine(engine))) > 1024 * 1024


async def test_a_big_message_is_kept_when_its_batch_fails(engine):
    writer, release, busy = await _held_writer(engine)
    try:
        big = Mail(SessionInfo(listener="submission", peer_ip="127.0.0.1"), SENDER,
                   ["a@example.org"], message_bytes(body="x" * (1024 * 1024)))
        pending = [asyncio.ensure_future(writer.commit(big)), asyncio.ensure_future(
            writer.run(lambda s: s.execute(text("SELECT * FROM no_such_table"))))]
        await asyncio.sleep(0.2)
        release.set()
        await busy
        pk, failure = await asyncio.gather(*pending, return_exceptions=True)
    finally:
        writer.stop()
    assert isinstance(failure, Exception) and isinstance(pk, int)
    assert message(engine, big.queue_id).id == pk


async def test_a_spooled_big_message_is_committed_with_the_small_ones(engine, db_url):
    # Its row is small (the bytes are in the spool file, SQLite), so it needs no transaction
    # of its own; where the bytes go into the database (PostgreSQL) it gets one.
    from sqlalchemy import event

    commits: list[int] = []
    writer, release, busy = await _held_writer(engine)
    try:
        big = Mail(SessionInfo(listener="submission", peer_ip="127.0.0.1"), SENDER,
                   ["a@example.org"], message_bytes(body="x" * (1024 * 1024)))
        pending = [asyncio.ensure_future(writer.commit(m)) for m in [big, _mail(), _mail()]]
        for _ in range(500):  # all three queued behind the busy job (the spool file written)
            if writer._queue.qsize() == 3:
                break
            await asyncio.sleep(0.01)
        assert writer._queue.qsize() == 3
        event.listen(engine, "commit", lambda conn: commits.append(1))
        release.set()
        await busy
        await asyncio.gather(*pending)
    finally:
        writer.stop()
    spooled = db_url.startswith("sqlite")
    assert (big.spool is not None) is spooled
    # The busy job's transaction, then one for the three; the big one got a transaction of
    # its own only where its bytes are in the database.
    assert len(commits) == (2 if spooled else 3)
