"""A short-lived cache of successful logins, in front of any Authenticator.

Mail clients log in again for every message they send (and bulk senders open one connection per
message); an argon2 check costs tens of milliseconds and 64 MiB each time. Like Dovecot's auth
cache, a successful login is remembered for `submission.auth_cache_ttl` seconds, keyed by a
keyed hash of login and password (the password itself is never kept). Failures are not cached,
so the growing delay after failed logins still applies to every wrong guess. A password change
or a disabled account takes effect for cached logins when their entry expires, at the latest.

Logins with the same credentials that arrive while one is being checked wait for that check
instead of starting their own: a client opening ten connections at once costs one argon2
verification (and 64 MiB), not ten side by side.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from mailgw.auth.base import Authenticator, AuthResult


class CachingAuthenticator:
    """Remembers successes of `inner` for `ttl` seconds (at most `max_entries`)."""

    def __init__(self, inner: Authenticator, ttl: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)  # per process: entries are useless elsewhere
        self._entries: OrderedDict[bytes, tuple[float, AuthResult]] = OrderedDict()
        # Checks in progress, by credentials digest: later callers share the running one.
        self._checking: dict[bytes, asyncio.Task[AuthResult | None]] = {}

    def _digest(self, login: str, password: str) -> bytes:
        return hmac.new(self._key, f"{login}\0{password}".encode("utf-8", "surrogatepass"),
                        hashlib.sha256).digest()

    async def authenticate(self, login: str, password: str) -> AuthResult | None:
        digest = self._digest(login, password)
        now = self._clock()
        hit = self._entries.get(digest)
        if hit is not None:
            if hit[0] > now:
                return hit[1]
            del self._entries[digest]
        check = self._checking.get(digest)
        if check is None:
            # A task of its own: a caller that goes away does not cancel the others' check.
            check = asyncio.ensure_future(self._check(digest, login, password))
            self._checking[digest] = check
            check.add_done_callback(lambda t: self._finished(digest, t))
        return await asyncio.shield(check)

    async def _check(self, digest: bytes, login: str, password: str) -> AuthResult | None:
        result = await self.inner.authenticate(login, password)
        if result is not None:
            self._entries[digest] = (self._clock() + self.ttl, result)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return result

    def _finished(self, digest: bytes, task: asyncio.Task[AuthResult | None]) -> None:
        self._checking.pop(digest, None)
        if not task.cancelled():
            task.exception()  # retrieved here if every caller went away meanwhile
