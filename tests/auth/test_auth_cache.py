"""The login cache in front of the real local authenticator, on SQLite and PostgreSQL:
successes are remembered for the TTL, failures never are, the password itself is never kept."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailgw.auth import LocalAuthenticator
from mailgw.auth.cache import CachingAuthenticator
from mailgw.config import load
from mailgw.store.db import session_factory
from mailgw.users import add_user, set_password

OLD, NEW = "mat-khau-cu-2026", "mat-khau-moi-2026"
USER = "a@phutho.gov.vn"


def make(engine, now: list[float], ttl: float = 60, max_entries: int = 100):
    with Session(engine) as s, s.begin():
        add_user(s, USER, OLD)
    local = LocalAuthenticator(session_factory(engine), load(environ={}))
    return CachingAuthenticator(local, ttl=ttl, max_entries=max_entries, clock=lambda: now[0])


def change_password(engine, password: str) -> None:
    with Session(engine) as s, s.begin():
        set_password(s, USER, password)


async def test_a_success_is_remembered_until_the_ttl(engine) -> None:
    now = [0.0]
    cache = make(engine, now)
    assert await cache.authenticate(USER, OLD) is not None
    change_password(engine, NEW)
    # Within the TTL the old password is still accepted: the store was not asked again.
    now[0] = 59
    assert await cache.authenticate(USER, OLD) is not None
    assert await cache.authenticate(USER, NEW) is not None  # a miss asks the store
    now[0] = 61
    assert await cache.authenticate(USER, OLD) is None  # expired: the store says no


async def test_failures_are_never_cached(engine) -> None:
    now = [0.0]
    cache = make(engine, now)
    assert await cache.authenticate(USER, NEW) is None
    change_password(engine, NEW)
    # Had the failure been cached, the right password would still be refused here.
    assert await cache.authenticate(USER, NEW) is not None


async def test_the_cache_is_bounded_and_keeps_no_password(engine) -> None:
    cache = make(engine, [0.0], max_entries=1)
    await cache.authenticate(USER, OLD)
    await cache.authenticate(USER.upper(), OLD)
    assert len(cache._entries) == 1
    assert all(OLD.encode() not in key for key in cache._entries)


class _Counting(LocalAuthenticator):
    """The real local authenticator, counting the checks that reach it."""

    checks = 0

    async def authenticate(self, login: str, password: str):
        self.checks += 1
        return await super().authenticate(login, password)


async def test_simultaneous_logins_share_one_check(engine) -> None:
    import asyncio

    with Session(engine) as s, s.begin():
        add_user(s, USER, OLD)
    local = _Counting(session_factory(engine), load(environ={}))
    cache = CachingAuthenticator(local, ttl=60)
    good = await asyncio.gather(*(cache.authenticate(USER, OLD) for _ in range(8)))
    assert all(r is not None for r in good) and local.checks == 1
    # A wrong password shared by simultaneous attempts is one failed check, never cached.
    bad = await asyncio.gather(*(cache.authenticate(USER, NEW) for _ in range(4)))
    assert bad == [None] * 4 and local.checks == 2
    assert await cache.authenticate(USER, NEW) is None and local.checks == 3
