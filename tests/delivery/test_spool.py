"""Large messages in the spool (mailgw.store.spool) on SQLite, in the database on PostgreSQL:
the store writer, the delivery workers and bounces read and write them wherever they are, and a
spool file exists exactly while a committed row names it."""

from __future__ import annotations

import os
import time

import pytest

from mailgw.delivery.worker import DeliveryService
from mailgw.pipeline.mail import LARGE_MESSAGE_BYTES, Mail, SessionInfo
from mailgw.pipeline.post import MessageFacts
from mailgw.store import spool
from mailgw.store.db import session_factory
from mailgw.store.writer import StoreUnavailable, StoreWriter
from tests.delivery.conftest import (
    SENDER,
    bounces,
    entries,
    message,
    message_bytes,
    plain_config,
    wait_for,
)


def _big_mail() -> Mail:
    body = "Báo cáo tổng hợp của đơn vị.\r\n" * (LARGE_MESSAGE_BYTES // 30 + 1)
    return Mail(SessionInfo(listener="submission", peer_ip="127.0.0.1"), SENDER,
                ["a@example.org"], message_bytes(subject="Bao cao lon", body=body))


def _files(engine) -> list[str]:
    sp = spool.for_engine(engine)
    if sp is None or not sp.directory.exists():
        return []
    return sorted(os.listdir(sp.directory))


async def _commit(engine, mail: Mail) -> int:
    writer = StoreWriter(session_factory(engine))
    writer.start()
    try:
        return await writer.commit(mail)
    finally:
        writer.stop()


# -- the spool itself -------------------------------------------------------------------------


def test_put_get_head_discard(tmp_path):
    sp = spool.Spool(tmp_path / "db.spool")
    data = b"Subject: x\r\n\r\n" + os.urandom(100_000)
    name = sp.put("0123ABC", data)
    assert sp.get(name) == data
    assert sp.head(name, 14) == b"Subject: x\r\n\r\n"
    assert os.listdir(sp.directory) == [name]  # no temporary file left behind
    assert (sp.directory / name).stat().st_mode & 0o777 == 0o600
    sp.discard(name)
    assert os.listdir(sp.directory) == []
    with pytest.raises(spool.SpoolError, match="cannot be read"):
        sp.get(name)


def test_put_writes_pieces_one_after_the_other(tmp_path):
    sp = spool.Spool(tmp_path / "db.spool")
    name = sp.put("0123ABC", [b"X-Added: 1\r\n", b"Subject: x\r\n\r\n", b"body\r\n"])
    assert sp.get(name) == b"X-Added: 1\r\nSubject: x\r\n\r\nbody\r\n"


@pytest.mark.parametrize("name", ["../mailgw.db", "/etc/passwd", "x", "0123ABC.zz"])
def test_names_not_made_by_the_spool_are_refused(tmp_path, name):
    sp = spool.Spool(tmp_path / "db.spool")
    with pytest.raises(spool.SpoolError, match="invalid spool file name"):
        sp.get(name)


# -- the store writer -------------------------------------------------------------------------


async def test_a_large_message_is_spooled_on_sqlite_and_kept_in_postgresql(engine, db_url):
    mail = _big_mail()
    pk = await _commit(engine, mail)
    row = message(engine, mail.queue_id)
    assert row.id == pk and row.size == mail.size
    assert spool.content_of(row, spool.for_engine(engine)) == mail.stored_bytes()
    if db_url.startswith("sqlite"):
        assert row.content == b"" and row.spool is not None and _files(engine) == [row.spool]
    else:
        assert row.spool is None and row.content == mail.stored_bytes()
        assert spool.for_engine(engine) is None


async def test_sweep_removes_old_files_no_row_names(engine, db_url):
    mail = _big_mail()
    await _commit(engine, mail)
    sp = spool.for_engine(engine)
    if sp is None:  # PostgreSQL: no spool, nothing to sweep
        assert db_url.startswith("postgresql") and spool.sweep(engine) == []
        return
    named = message(engine, mail.queue_id).spool
    old_orphan = sp.put("Q1", b"left by a crash before the commit")
    young_orphan = sp.put("Q2", b"its commit is under way in another process")
    half_written = "Q3.0badc0de.tmp"
    (sp.directory / half_written).write_bytes(b"half")
    (sp.directory / "not-ours.txt").write_bytes(b"someone else's file")
    day_ago = time.time() - 86400
    for name in (named, old_orphan, half_written, "not-ours.txt"):
        os.utime(sp.directory / name, (day_ago, day_ago))
    assert sorted(spool.sweep(engine)) == sorted([old_orphan, half_written])
    assert sorted(os.listdir(sp.directory)) == sorted([named, young_orphan, "not-ours.txt"])
    # The named one is still the message's bytes.
    assert spool.content_of(message(engine, mail.queue_id), sp) == mail.stored_bytes()


async def test_small_messages_stay_in_the_database(engine):
    mail = Mail(SessionInfo(listener="submission", peer_ip="127.0.0.1"), SENDER,
                ["a@example.org"], message_bytes())
    await _commit(engine, mail)
    row = message(engine, mail.queue_id)
    assert row.spool is None and row.content == mail.raw and _files(engine) == []


async def test_a_failed_commit_leaves_no_spool_file(engine):
    mail = _big_mail()
    await _commit(engine, mail)
    kept = _files(engine)
    again = Mail(mail.session, mail.mail_from, mail.rcpt_tos, mail.raw, queue_id=mail.queue_id)
    with pytest.raises(StoreUnavailable):  # the queue id is taken: the insert fails
        await _commit(engine, again)
    assert _files(engine) == kept and again.spool is None


async def test_a_spool_that_cannot_be_written_makes_the_commit_fail_temporarily(engine,
                                                                              db_url):
    # Disk full, permissions, a file where the directory should be: the client gets a 451
    # (StoreUnavailable) and retries; nothing is half stored.
    sp = spool.for_engine(engine)
    if sp is not None:
        sp.directory.parent.mkdir(parents=True, exist_ok=True)
        sp.directory.write_bytes(b"not a directory")
    mail = _big_mail()
    if sp is None:  # PostgreSQL: the body goes into the database, as for any message
        assert await _commit(engine, mail) > 0
        return
    with pytest.raises(StoreUnavailable, match="cannot write the spool file"):
        await _commit(engine, mail)
    assert mail.spool is None
    from sqlalchemy import func, select

    from mailgw.store.models import Message
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0


# -- delivery ---------------------------------------------------------------------------------


def _stamping_stage(calls: list[int]):
    """A transform that changes the bytes differently on every run (as a new DKIM signature
    would): what reaches the next hop tells which run made it."""

    def stage(content: bytes, facts: MessageFacts) -> bytes:
        calls.append(1)
        return f"X-Run: {len(calls)}\r\n".encode() + content

    return stage


async def test_a_spooled_message_is_delivered_and_its_unused_file_removed(engine, sink,
                                                                          tmp_path):
    mail = _big_mail()
    await _commit(engine, mail)
    received = _files(engine)
    calls: list[int] = []
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1",
                          stages=[("transform", _stamping_stage(calls))])
    await svc.start()
    try:
        svc.wake()
        await wait_for(lambda: message(engine, mail.queue_id).status == "done", what="done")
        # Done at the first attempt: the signed bytes were not needed again and are removed
        # (after the commit); the row keeps naming the received bytes, as the database keeps
        # them for small mail.
        await wait_for(lambda: _files(engine) == received, what=lambda: _files(engine))
    finally:
        await svc.stop()
    assert [r.content for r in sink.handler.received] == [b"X-Run: 1\r\n" + mail.stored_bytes()]


async def test_a_retry_sends_the_bytes_made_at_the_first_attempt(engine, sink, tmp_path):
    sink.handler.rcpt_replies["a@example.org"] = ["451 4.7.1 Try again later", "250 2.1.5 Ok"]
    mail = _big_mail()
    await _commit(engine, mail)
    received = _files(engine)
    calls: list[int] = []
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1",
                          poll_interval=0.1, stages=[("transform", _stamping_stage(calls))])
    await svc.start()
    try:
        svc.wake()
        await wait_for(lambda: message(engine, mail.queue_id).status == "done", what="done")
        row = message(engine, mail.queue_id)
        if received:
            # The stored bytes replaced the received ones: one file, the new one (the old one
            # is removed after the commit that replaced it).
            assert row.spool not in received
            await wait_for(lambda: _files(engine) == [row.spool], what=lambda: _files(engine))
    finally:
        await svc.stop()
    assert len(calls) == 1
    assert [r.content for r in sink.handler.received] == [b"X-Run: 1\r\n" + mail.stored_bytes()]
    assert entries(engine, mail.queue_id)["a@example.org"].attempts == 2
    assert spool.content_of(row, spool.for_engine(engine)) == b"X-Run: 1\r\n" + mail.stored_bytes()


async def test_a_missing_spool_file_parks_the_message(engine, db_url, sink, tmp_path):
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL keeps message bodies in the database: there is no spool file")
    mail = _big_mail()
    await _commit(engine, mail)
    sp = spool.for_engine(engine)
    assert sp is not None and mail.spool is not None
    sp.discard(mail.spool)
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1")
    await svc.start()
    try:
        svc.wake()
        await wait_for(lambda: message(engine, mail.queue_id).status == "parked", what="parked")
    finally:
        await svc.stop()
    row = message(engine, mail.queue_id)
    assert row.parked_stage == "spool" and mail.spool in (row.parked_error or "")
    assert sink.handler.received == []


async def test_a_bounce_of_a_spooled_message_quotes_its_headers(engine, sink, tmp_path):
    sink.handler.rcpt_replies["a@example.org"] = "550 5.1.1 No such user"
    mail = _big_mail()
    await _commit(engine, mail)
    svc = DeliveryService(plain_config(tmp_path, default=sink.hop), engine, "n1")
    await svc.start()
    try:
        svc.wake()
        await wait_for(lambda: bounces(engine), what="a bounce")
    finally:
        await svc.stop()
    (bounce,) = bounces(engine)
    assert b"Subject: Bao cao lon" in bounce.content
    assert len(bounce.content) < 64 * 1024  # the headers, not the 1 MB body


async def test_a_flagged_large_message_for_internal_recipients_only_is_stored_with_its_header(
        engine, tmp_path):
    # An official document from webmail to internal recipients is flagged (rule 5) and stored
    # with the X-Mailgw-Policy header in front: its body is spooled first, then the header
    # copy goes into the row, and the file no row names any more is removed after the commit.
    from mailgw.violations.enforce import Enforcement

    sessions = session_factory(engine)
    writer = StoreWriter(sessions)
    writer.record = Enforcement.build(plain_config(tmp_path), sessions).record
    mail = _big_mail()
    mail.mail_from, mail.rcpt_tos = "nguoigui@gmail.com", ["ketoan@stc.phutho.gov.vn"]
    mail.direction, mail.verdict = "inbound", "flag"
    mail.verdict_detail = {"reasons": ["inbound_official_via_webmail"],
                           "rules": ["inbound-official-via-webmail"], "unit": "stc",
                           "evidence": [], "notify": []}
    writer.start()
    try:
        await writer.commit(mail)
    finally:
        writer.stop()
    row = message(engine, mail.queue_id)
    assert row.spool is None
    assert row.content.startswith(b"X-Mailgw-Policy: flag; reason=inbound_official_via_webmail")
    assert row.content.endswith(mail.stored_bytes()) and row.size == len(row.content)
    if spool.for_engine(engine) is not None:
        assert mail.spool is not None  # it was spooled
    assert _files(engine) == []  # and the file no row names was removed
