"""The migrations build the schema on both engines, and the models round-trip."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, select

from mailgw.store.db import session_factory, upgrade
from mailgw.store.models import Message, QueueEntry, User


def test_upgrade_creates_tables_and_is_idempotent(engine) -> None:
    upgrade(engine)  # second run: nothing to do, no error
    names = set(inspect(engine).get_table_names())
    assert {"users", "messages", "queue_entries", "alembic_version"} <= names


def test_the_migrations_make_the_schema_the_models_describe(engine) -> None:
    # A column added to a model without its migration (or the other way round) shows here.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mailgw.store.models import Base

    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_message_with_entries_round_trips_with_utc_times(engine) -> None:
    Session = session_factory(engine)
    when = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    with Session.begin() as s:
        m = Message(queue_id="Q1", direction="outbound", mail_from="a@phutho.gov.vn",
                    recipients=["b@example.org"], size=3, content=b"x\r\n", received_at=when)
        m.entries.append(QueueEntry(recipient="b@example.org", domain="example.org"))
        s.add(m)
        s.add(User(address="a@phutho.gov.vn", password_hash="h"))
    with Session() as s:
        got = s.scalars(select(Message)).one()
        assert got.received_at == when and got.received_at.tzinfo is not None
        assert got.content == b"x\r\n" and got.recipients == ["b@example.org"]
        assert [e.status for e in got.entries] == ["queued"]


def test_a_reading_transaction_does_not_wait_for_a_writer(engine) -> None:
    """A large message is read while another thread holds a write transaction open: the read
    sees the last commit and finishes at once (on SQLite it skips the writer queue)."""
    import threading

    from mailgw.store.db import reading

    Session = session_factory(engine)
    when = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)

    def message(queue_id: str) -> Message:
        return Message(queue_id=queue_id, direction="outbound", mail_from="a@phutho.gov.vn",
                       recipients=["b@example.org"], size=3, content=b"x\r\n", received_at=when)

    with Session.begin() as s:
        s.add(message("Q1"))
    writing, release = threading.Event(), threading.Event()

    def writer() -> None:
        with Session.begin() as s:
            s.add(message("Q2"))
            s.flush()
            writing.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        seen: list[str] = []

        def reader() -> None:
            with reading(), Session() as s:
                seen.extend(s.scalars(select(Message.queue_id)))

        read = threading.Thread(target=reader)
        read.start()
        read.join(5)
        assert not read.is_alive(), "the read waited for the open write transaction"
        assert seen == ["Q1"]
    finally:
        release.set()
        thread.join(10)
    with Session() as s:
        assert sorted(s.scalars(select(Message.queue_id))) == ["Q1", "Q2"]
