"""Large message bodies in files beside a SQLite store (the spool), not inside the database.

SQLite has one write lock for every process of the gateway. Inserting a 20 MB message held it
for 0.1-0.8 s (the insert and its fsync), and the commits of every small message waited behind
it: the 250 of a 10 KB message took as long as the big one's write. Like Postfix's queue files,
a large body is now written to its own file first, fsynced with its directory, and only then is
the row that names it committed: a committed row never names a missing file, and the database
lock is held for a short insert. A crash between the two leaves a file no row names (harmless
disk, never a lost message); `sweep()` removes such files when `serve` starts.

The spool directory is `<database file>.spool/` beside the SQLite file, so every command that
opens the store finds it without another setting. PostgreSQL keeps message bodies in the
database: several nodes share one database, not one disk.

A spooled message's row has `spool` = the file's name and empty `content`; `content_of()` is
how readers get the bytes either way.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from mailgw.durable import write_new

log = logging.getLogger("mailgw.store")

# Names are made here (queue id, a dot, random hex); anything else in a row is refused, so a
# damaged or edited row cannot make the gateway read a file outside the spool.
_NAME = re.compile(r"[0-9A-Za-z]{1,64}\.[0-9a-f]{8}")


class SpoolError(Exception):
    """A spool file is missing or unreadable (phrased for the operator)."""


class Spool:
    """The files of one store's large messages."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, queue_id: str, data: bytes | Sequence[bytes]) -> str:
        """Write `data` (or its pieces, one after the other) durably under a new name derived
        from `queue_id`; return the name."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{queue_id}.{secrets.token_hex(4)}"
        if not _NAME.fullmatch(name):
            raise ValueError(f"cannot spool a message with queue id {queue_id!r}")
        path = self.directory / name
        write_new(path.with_name(name + ".tmp"), path, data, 0o600)
        return name

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except OSError as exc:
            raise SpoolError(f"spool file {name} cannot be read: {exc.strerror}") from None

    def head(self, name: str, limit: int = 256 * 1024) -> bytes:
        """The first `limit` bytes (enough for a message's header block)."""
        try:
            with self._path(name).open("rb") as f:
                return f.read(limit)
        except OSError as exc:
            raise SpoolError(f"spool file {name} cannot be read: {exc.strerror}") from None

    def discard(self, name: str) -> None:
        """Remove a file no committed row names (a failed insert, replaced bytes)."""
        self._path(name).unlink(missing_ok=True)

    def discard_all(self, names: Iterable[str]) -> None:
        """`discard` each; a file that cannot be removed is logged and left (it only takes
        disk space: no row names it)."""
        for name in names:
            try:
                self.discard(name)
            except (OSError, SpoolError) as exc:
                log.warning("cannot remove spool file %s: %s", name, exc)

    def files(self) -> list[tuple[str, float]]:
        """(name, modification time) of every file in the spool directory, half-written
        `.tmp` ones included."""
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        found = []
        for path in entries:
            name = path.name.removesuffix(".tmp")
            if _NAME.fullmatch(name):
                with contextlib.suppress(FileNotFoundError):
                    found.append((path.name, path.stat().st_mtime))
        return found

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise SpoolError(f"invalid spool file name {name!r} in the store")
        return self.directory / name


_SPOOLS: dict[str, Spool | None] = {}


def for_engine(engine: Engine) -> Spool | None:
    """The spool of `engine`'s store: a SQLite file gets one, other databases none."""
    key = engine.url.render_as_string(hide_password=False)
    if key not in _SPOOLS:
        url = make_url(key)
        db = url.database
        if url.get_backend_name() != "sqlite" or not db or db == ":memory:":
            _SPOOLS[key] = None
        else:
            path = Path(db).resolve()
            _SPOOLS[key] = Spool(path.with_name(path.name + ".spool"))
    return _SPOOLS[key]


def for_bind(bind: Any) -> Spool | None:
    """`for_engine` for a session's or sessionmaker's bind (an Engine or a Connection)."""
    engine = getattr(bind, "engine", bind)
    return for_engine(engine) if isinstance(engine, Engine) else None


def content_of(message: Any, spool: Spool | None) -> bytes:
    """The bytes of a Message row, wherever they are kept."""
    found = _spooled(message, spool)
    return bytes(message.content) if found is None else found[0].get(found[1])


def head_of(message: Any, spool: Spool | None) -> bytes:
    """The start of a Message row's bytes (its header block, for a bounce)."""
    found = _spooled(message, spool)
    return bytes(message.content) if found is None else found[0].head(found[1])


def _spooled(message: Any, spool: Spool | None) -> tuple[Spool, str] | None:
    """Where the row's bytes are, if not in the row: (the spool, the file's name)."""
    name: str | None = getattr(message, "spool", None)
    if not name:
        return None
    if spool is None:
        raise SpoolError(f"message {message.queue_id} is spooled ({name}) but this store has "
                         "no spool directory")
    return spool, name


# A file this old whose row is not committed never will be: a commit follows its file within
# seconds, or the file is removed when the commit fails.
ORPHAN_AGE = 3600.0


def sweep(engine: Engine, min_age: float = ORPHAN_AGE, now: float | None = None) -> list[str]:
    """Remove the spool files no message row names that are older than `min_age` seconds:
    left by a crash between writing a file and committing its row, or between a commit and
    the removal of the file it replaced. Younger ones may belong to a commit under way in
    another process. Returns the names removed."""
    from mailgw.store.models import MESSAGES

    spool = for_engine(engine)
    if spool is None:
        return []
    with engine.connect() as conn:
        named = set(conn.scalars(select(MESSAGES.c.spool).where(MESSAGES.c.spool.is_not(None))))
    limit = (time.time() if now is None else now) - min_age
    removed = []
    for name, mtime in spool.files():
        if name not in named and mtime < limit:
            try:
                (spool.directory / name).unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot remove orphaned spool file %s: %s", name, exc.strerror)
                continue
            removed.append(name)
    if removed:
        log.info("removed %d spool file(s) no message names (left by a crash)", len(removed))
    return removed
