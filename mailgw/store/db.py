"""Engine and session set-up for SQLite (WAL) and PostgreSQL, and schema upgrades via Alembic."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class StoreError(Exception):
    """The store cannot be reached or used (phrased for the operator)."""


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, sqlite_synchronous: str = "FULL", **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and the chosen synchronous mode."""
    if is_sqlite(url):
        db_path = make_url(url).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, begin transactions; then set durable WAL mode.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        if db_path and db_path != ":memory:":
            _queue_writers(engine, Path(db_path))
        else:
            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class _WriterQueue:
    """One writer at a time per database, across threads and processes, without polling.

    SQLite makes a second writer wait in its busy handler, which sleeps in steps of up to
    100 ms; under load (the store writers, delivery claims and results of every process) much
    of the time went there. Waiting on a lock and an flock instead wakes the next writer as
    soon as the previous one commits. One per process: an flock belongs to the open file, and
    a forked child must not share its parent's.
    """

    WAIT = 60.0  # past this, fail as SQLite's busy timeout would, rather than hang

    def __init__(self, path: Path) -> None:
        self.thread_lock = threading.Lock()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        if not self.thread_lock.acquire(timeout=self.WAIT):
            raise TimeoutError("database is locked (waited too long for another writer)")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self.thread_lock.release()
            raise

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.thread_lock.release()


_WRITER_QUEUES: dict[tuple[str, int], _WriterQueue] = {}
_WRITER_QUEUES_LOCK = threading.Lock()


def _writer_queue(db_path: Path) -> _WriterQueue:
    """`db_path` must be resolved (the caller does it once, not per transaction)."""
    key = (str(db_path), os.getpid())
    with _WRITER_QUEUES_LOCK:
        if key not in _WRITER_QUEUES:
            _WRITER_QUEUES[key] = _WriterQueue(db_path.with_name(db_path.name + ".lock"))
        return _WRITER_QUEUES[key]


_READING = threading.local()


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Transactions begun in this thread inside the block only read. On a SQLite file they
    skip the writer queue: reading a large message took the lock every writer waits for
    (0.1-0.2 s for 22 MB) and stalled the commits of small ones. Nothing may be written in
    such a transaction: SQLite would upgrade it to a write outside the queue."""
    before = getattr(_READING, "on", False)
    _READING.on = True
    try:
        yield
    finally:
        _READING.on = before


def _queue_writers(engine: Engine, db_path: Path) -> None:
    """Every transaction of `engine`: take the writer queue, BEGIN IMMEDIATE, ..., then release
    after COMMIT or ROLLBACK (or when the connection goes back to the pool or dies).

    IMMEDIATE takes SQLite's write lock up front, so two writers never deadlock on upgrade. The
    hooks are on this engine's own dialect object and pool: nothing global is changed.
    """
    db_path = db_path.resolve()
    holders: set[int] = set()
    dialect: Any = engine.dialect
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def done(dbapi_conn: Any) -> None:
        if id(dbapi_conn) in holders:
            holders.discard(id(dbapi_conn))
            _writer_queue(db_path).release()

    def begin(dbapi_conn: Any) -> None:
        if getattr(_READING, "on", False):
            # WAL: a reader sees the last commit and never waits for (or holds up) a writer.
            dbapi_conn.execute("BEGIN")
            return
        _writer_queue(db_path).acquire()
        holders.add(id(dbapi_conn))
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            done(dbapi_conn)
            raise

    def commit(dbapi_conn: Any) -> None:
        try:
            do_commit(dbapi_conn)
        finally:
            done(dbapi_conn)

    def rollback(dbapi_conn: Any) -> None:
        try:
            do_rollback(dbapi_conn)
        finally:
            done(dbapi_conn)

    dialect.do_begin = begin
    dialect.do_commit = commit
    dialect.do_rollback = rollback
    for name in ("checkin", "invalidate", "close"):
        event.listen(engine, name, lambda dbapi_conn, *_: done(dbapi_conn))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade the database schema: {describe(exc)}") from None


def describe(exc: BaseException) -> str:
    """One line about a database error, without SQL or parameters."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
