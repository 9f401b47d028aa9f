"""`mailgw db upgrade`: bring the database schema to the newest revision."""

from __future__ import annotations

import click

from cli.main import Ctx, pass_ctx
from mailgw.store.db import make_engine, upgrade


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Ctx) -> None:
    """Apply pending migrations to the configured store."""
    cfg = ctx.config
    engine = make_engine(cfg.store_url, cfg.store.sqlite_synchronous)
    upgrade(engine)
    click.echo(f"schema up to date ({engine.url.render_as_string(hide_password=True)})")
