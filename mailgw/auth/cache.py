"""A short-lived cache of successful logins, in front of any Authenticator.

Mail clients log in again for every message they send (and bulk senders open one connection per
message); an argon2 check costs tens of milliseconds and 64 MiB each time. Like Dovecot's auth
cache, a successful login is remembered for `submission.auth_cache_ttl` seconds, keyed by a
keyed hash of login and password (the password itself is never kept). Failures are not cached,
so the growing delay after failed logins still applies to every wrong guess. A password change
or a disabled account takes effect for cached logins when their entry expires, at the latest.
"""

from __future__ import annotations

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
        result = await self.inner.authenticate(login, password)
        if result is not None:
            self._entries[digest] = (now + self.ttl, result)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return result

    async def addresses_for(self, address: str) -> set[str]:
        return await self.inner.addresses_for(address)
