"""A per-process copy of the directory's address -> unit table, for the classify stage.

Reading the store for every message would cost a transaction each, and on SQLite every
transaction takes the write lock (BEGIN IMMEDIATE), so classification threads would queue behind
the store writer. The table is small (one row per civil servant) and changes by
`mailgw directory import`, so each process keeps a copy for `directory.refresh` seconds
(0: no copy, the store is read for every message). A failing read propagates: fail closed.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailgw.directory.store import lookup_unit
from mailgw.pipeline.stages.identify import unit_from_address
from mailgw.store.models import DirectoryUser


class DirectoryCache:
    def __init__(self, sessions: sessionmaker[Session], domains: list[str],
                 refresh: float = 60.0) -> None:
        self.sessions = sessions
        self.domains = list(domains)
        self.refresh = refresh
        self._units: dict[str, str] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def _table(self) -> dict[str, str]:
        with self._lock:
            if time.monotonic() - self._loaded_at >= self.refresh:
                with self.sessions() as s:
                    rows = s.execute(select(DirectoryUser.address, DirectoryUser.unit_id)).all()
                self._units = {address: unit for address, unit in rows}
                self._loaded_at = time.monotonic()
            return self._units

    def is_fresh(self) -> bool:
        """True if `unit_of` answers from memory now, without reading the store."""
        return self.refresh > 0 and time.monotonic() - self._loaded_at < self.refresh

    def unit_of(self, address: str) -> tuple[str, str]:
        """Like `lookup_unit`: (unit, "directory" | "subdomain" | "unknown")."""
        if self.refresh <= 0:
            with self.sessions() as s:
                return lookup_unit(s, address, self.domains)
        key = address.strip().strip("<>").strip().lower()
        unit = self._table().get(key) if key else None
        if unit is not None:
            return unit, "directory"
        fallback = unit_from_address(key, self.domains) if key else "unknown"
        return fallback, "unknown" if fallback == "unknown" else "subdomain"
