"""The login cache: successes are remembered for the TTL, failures never are."""

from __future__ import annotations

from mailgw.auth.base import AuthResult
from mailgw.auth.cache import CachingAuthenticator


class CountingBackend:
    """A stand-in password backend (not one of ours): one account, counts its checks."""

    def __init__(self) -> None:
        self.calls = 0

    async def authenticate(self, login: str, password: str) -> AuthResult | None:
        self.calls += 1
        if (login, password) == ("a@phutho.gov.vn", "dung"):
            return AuthResult("a@phutho.gov.vn", frozenset({"a@phutho.gov.vn"}))
        return None

    async def addresses_for(self, address: str) -> set[str]:
        return {address}


async def test_success_is_cached_until_the_ttl_and_failures_are_not() -> None:
    now = [0.0]
    backend = CountingBackend()
    cache = CachingAuthenticator(backend, ttl=60, clock=lambda: now[0])
    assert (await cache.authenticate("a@phutho.gov.vn", "dung")) is not None
    assert (await cache.authenticate("a@phutho.gov.vn", "dung")) is not None
    assert backend.calls == 1
    # A wrong password is always checked, never served from the cache.
    assert await cache.authenticate("a@phutho.gov.vn", "sai") is None
    assert await cache.authenticate("a@phutho.gov.vn", "sai") is None
    assert backend.calls == 3
    now[0] = 61
    assert (await cache.authenticate("a@phutho.gov.vn", "dung")) is not None
    assert backend.calls == 4


async def test_the_cache_is_bounded_and_keeps_no_password() -> None:
    backend = CountingBackend()
    cache = CachingAuthenticator(backend, ttl=60, max_entries=1)
    await cache.authenticate("a@phutho.gov.vn", "dung")
    assert all(b"dung" not in key for key in cache._entries)
    assert len(cache._entries) == 1
