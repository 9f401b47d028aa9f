"""Auth tests hash with cheap argon2 parameters unless a test asks for `real_hashing`."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from mailgw.auth import passwords


@pytest.fixture(autouse=True)
def fast_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "real_hashing" not in request.fixturenames:
        monkeypatch.setattr(passwords, "HASHER",
                            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def real_hashing() -> None:
    """The production parameters (slow: tens of milliseconds per hash)."""
