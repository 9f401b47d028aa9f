"""Local authenticator: argon2 storage, same failure for every bad login, aliases, no blocking.

Runs on SQLite and PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgw.auth import (
    AuthenticationUnavailable,
    AuthResult,
    LocalAuthenticator,
    make_authenticator,
    normalise_login,
    passwords,
)
from mailgw.auth.cache import CachingAuthenticator
from mailgw.config import ConfigError, load
from mailgw.store.db import make_engine, session_factory
from mailgw.store.models import User
from mailgw.users import UserStoreError, add_user, set_disabled

PW = "dung-mat-khau-2026"
ALIASES = '{"chutich@phutho.gov.vn" = ["vanphong@phutho.gov.vn"]}'


@pytest.fixture
def config():
    return load(environ={"MAILGW_SUBMISSION__ALIASES": ALIASES})


@pytest.fixture
def auth(engine, config):
    with Session(engine) as s, s.begin():
        add_user(s, "ChuTich@PhuTho.gov.vn", PW, display_name="Chủ tịch",
                 aliases=["chutich.rieng@phutho.gov.vn"])
        add_user(s, "nghiviec@phutho.gov.vn", PW)
        set_disabled(s, "nghiviec@phutho.gov.vn", True)
    return LocalAuthenticator(session_factory(engine), config)


async def test_success_gives_canonical_address_and_senders(auth):
    result = await auth.authenticate("CHUTICH@phutho.GOV.VN", PW)
    assert result == AuthResult(
        address="chutich@phutho.gov.vn",
        senders=frozenset({"chutich@phutho.gov.vn", "chutich.rieng@phutho.gov.vn",
                           "vanphong@phutho.gov.vn"}),
        display_name="Chủ tịch")


async def test_login_without_domain_uses_first_domain(auth):
    result = await auth.authenticate("chutich", PW)
    assert result is not None and result.address == "chutich@phutho.gov.vn"


def test_only_argon2_hashes_are_stored(engine, auth):
    with Session(engine) as s:
        hashes = list(s.scalars(select(User.password_hash)))
    assert len(hashes) == 2
    for h in hashes:
        assert h.startswith("$argon2id$")
        assert PW not in h
    assert hashes[0] != hashes[1]  # salted


BAD_LOGINS = [
    ("chutich@phutho.gov.vn", "sai-mat-khau"),  # wrong password
    ("khongco@phutho.gov.vn", PW),  # unknown user
    ("nghiviec@phutho.gov.vn", PW),  # disabled user, right password
    ("chutich@phutho.gov.vn", ""),  # empty password
    ("chutich@phutho.gov.vn", "x" * 5000),  # absurdly long password
    ("chutich%gmail.com@phutho.gov.vn", PW),  # malformed login
    ("", PW),
]


async def test_every_failure_is_the_same_none(auth):
    for login, password in BAD_LOGINS:
        assert await auth.authenticate(login, password) is None, (login, password)


class CountingHasher(PasswordHasher):
    """Records the parameters of every hash it verifies against."""

    calls: list[str]

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.calls.append(str(hash).split("$")[3])  # the m=…,t=…,p=… parameters
        return super().verify(hash, password)


async def test_every_failure_costs_one_argon2_verify(auth, monkeypatch):
    """Unknown users cost the same work as known ones: one verify with the same parameters."""
    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    hasher.calls = []
    monkeypatch.setattr(passwords, "HASHER", hasher)
    expected_params = hasher.hash("x").split("$")[3]
    for login, password in BAD_LOGINS:
        hasher.calls.clear()
        assert await auth.authenticate(login, password) is None
        assert hasher.calls == [expected_params], login


async def test_timing_unknown_vs_wrong_password(real_hashing, auth):
    """A coarse wall-clock check on top of the work count: same order of magnitude."""
    async def median(login: str) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            assert await auth.authenticate(login, "sai-mat-khau") is None
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    known, unknown = await median("chutich@phutho.gov.vn"), await median("khongco@phutho.gov.vn")
    assert 1 / 5 < unknown / known < 5


async def test_event_loop_not_blocked(real_hashing, auth):
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0.002)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(auth.authenticate("chutich@phutho.gov.vn", PW) for _ in range(4)))
    done = True
    await task
    # The loop kept turning while four argon2 verifications ran in threads. Run on the loop
    # itself they would leave the ticker one or two turns; the bound is loose for busy machines.
    assert ticks >= 10


async def test_old_parameters_are_rehashed(engine, auth):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with Session(engine) as s, s.begin():
        s.scalar(select(User).where(User.address == "chutich@phutho.gov.vn")).password_hash = \
            weak.hash(PW)
    assert await auth.authenticate("chutich@phutho.gov.vn", PW) is not None
    with Session(engine) as s:
        stored = s.scalar(select(User.password_hash)
                          .where(User.address == "chutich@phutho.gov.vn"))
    assert not passwords.needs_rehash(stored)
    assert passwords.verify_password(stored, PW)


async def test_store_trouble_is_not_a_wrong_password(tmp_path, config):
    # A database without the users table stands for a store that cannot answer.
    broken = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    auth = LocalAuthenticator(session_factory(broken), config)
    with pytest.raises(AuthenticationUnavailable):
        await auth.authenticate("chutich@phutho.gov.vn", PW)
    broken.dispose()


def test_duplicate_and_invalid_users_refused(engine):
    with Session(engine) as s, s.begin():
        add_user(s, "a@phutho.gov.vn", PW)
    for address, message in [("A@PHUTHO.GOV.VN", "already exists"),
                             ("a%b@phutho.gov.vn", "not a usable address"),
                             ("b@gmail.com", "not in the gateway's domains"),
                             ("b@phutho.gov.vn.", "not a usable address")]:
        with Session(engine) as s, s.begin(), pytest.raises(UserStoreError, match=message):
            add_user(s, address, PW, domains=["phutho.gov.vn"])
    with Session(engine) as s, s.begin(), pytest.raises(UserStoreError, match="at least"):
        add_user(s, "c@phutho.gov.vn", "short")


@pytest.mark.parametrize(("login", "canonical"), [
    ("ChuTich@PHUTHO.gov.vn", "chutich@phutho.gov.vn"),
    ("  chutich@phutho.gov.vn ", "chutich@phutho.gov.vn"),
    ("chutich", "chutich@phutho.gov.vn"),
    ("a@ＰＨＵＴＨＯ.gov.vn", "a@phutho.gov.vn"),
    ("a@phutho.gov.vn.", None),
    ("a@[127.0.0.1]", None),
    ("a\r\n@phutho.gov.vn", None),
])
def test_normalise_login(login, canonical):
    assert normalise_login(login, "phutho.gov.vn") == canonical


def test_make_authenticator(engine):
    cached = make_authenticator(load(environ={}), session_factory(engine))
    assert isinstance(cached, CachingAuthenticator)
    assert isinstance(cached.inner, LocalAuthenticator)
    local = make_authenticator(load(environ={"MAILGW_SUBMISSION__AUTH_CACHE_TTL": "0"}),
                               session_factory(engine))
    assert isinstance(local, LocalAuthenticator)
    with pytest.raises(ConfigError, match=r"submission\.auth.*not available yet"):
        make_authenticator(load(environ={"MAILGW_SUBMISSION__AUTH": "imap"}),
                           session_factory(engine))
