"""Shared fixtures: a fresh store on SQLite and on PostgreSQL for every storage test.

PostgreSQL comes from MAILGW_TEST_PG_URL (default: the local server, database `test`). Each test
gets its own database, dropped afterwards. Where PostgreSQL is unreachable the PostgreSQL variants
skip with the reason, except when MAILGW_REQUIRE_PG=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("MAILGW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_unavailable() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure means: no PostgreSQL here
        return f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} " \
               f"unreachable: {str(exc).splitlines()[0]}"
    return None


_PG_PROBLEM: str | None = None
_PG_CHECKED = False


def pg_problem() -> str | None:
    global _PG_PROBLEM, _PG_CHECKED
    if not _PG_CHECKED:
        _PG_PROBLEM, _PG_CHECKED = _pg_unavailable(), True
    return _PG_PROBLEM


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL of an empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mailgw.db'}"
        return
    problem = pg_problem()
    if problem:
        if os.environ.get("MAILGW_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required here (MAILGW_REQUIRE_PG=1): {problem}")
        pytest.skip(problem)
    name = f"mailgw_t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str):
    """An engine on a fresh database with the schema at the newest migration."""
    from mailgw.store.db import make_engine, upgrade

    eng = make_engine(db_url, "NORMAL")
    upgrade(eng)
    yield eng
    eng.dispose()
