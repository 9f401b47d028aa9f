"""`mailgw config show [--changed] [--json]`: the effective configuration, key by key."""

from __future__ import annotations

import json

import click

from cli.main import Ctx, pass_ctx
from mailgw.config import render


@click.group()
def config() -> None:
    """Show the configuration."""


@config.command("show")
@click.option("--changed", is_flag=True, help="Only keys that differ from the embedded defaults.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def show(ctx: Ctx, changed: bool, as_json: bool) -> None:
    """Print the effective configuration (defaults, file, environment)."""
    cfg = ctx.config
    values = cfg.changed() if changed else cfg.values
    if as_json:
        click.echo(json.dumps(values, default=str, indent=2, ensure_ascii=False))
        return
    click.echo(f"# source: {cfg.source}")
    click.echo(render(values, with_docs=not changed))
