"""What the store-backed commands share: one transaction on the configured store, JSON output.

The embedded SQLite store is upgraded first, as `serve` does, so that a command works on a fresh
checkout; a PostgreSQL store is left to `mailgw db upgrade`. Store errors, and the domain errors
a command names, become one-line user errors (exit 1), never a traceback.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cli.main import Ctx, UserError
from mailgw.store.db import StoreError, describe, is_sqlite, make_engine, upgrade


@contextmanager
def store_session(ctx: Ctx, user_errors: tuple[type[Exception], ...] = ()
                  ) -> Iterator[Session]:
    """One transaction on the configured store; `user_errors` are reported as one line too."""
    cfg = ctx.config
    engine = None
    try:
        engine = make_engine(cfg.store_url, cfg.store.sqlite_synchronous)
        if is_sqlite(cfg.store_url):
            upgrade(engine)
        with Session(engine) as s, s.begin():
            yield s
    except StoreError as exc:
        raise UserError(str(exc)) from None
    except SQLAlchemyError as exc:
        hint = "" if is_sqlite(cfg.store_url) else " (has `mailgw db upgrade` been run?)"
        raise UserError(f"store: {describe(exc)}{hint}") from None
    except Exception as exc:
        if isinstance(exc, user_errors):
            raise UserError(str(exc)) from None
        raise
    finally:
        if engine is not None:
            engine.dispose()


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def default_user() -> str:
    """Who runs the command, for the register; "unknown" where the system cannot say (a
    container without a passwd entry), never a traceback."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
