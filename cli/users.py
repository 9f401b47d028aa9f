"""`mailgw users`: local accounts for SMTP submission (add, passwd, list, disable, enable).

Thin: parses arguments, reads passwords (hidden prompt twice, or one line on stdin for scripts),
calls `mailgw.users` inside one transaction and prints. The embedded SQLite store is upgraded
first, as `serve` does, so that `mailgw users add` works on a fresh checkout; a PostgreSQL store
is left to `mailgw db upgrade`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from cli.main import Ctx, UserError, pass_ctx
from cli.store import store_session
from mailgw import users as store
from mailgw.store.models import User


@click.group()
def users() -> None:
    """Local users who may send mail through the submission port."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line: the password, without its line end (scripts: `echo "$PW" | mailgw users …`).
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise UserError("--password-stdin: no password on standard input")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        store.check_password(password)
    except store.UserStoreError as exc:
        raise UserError(str(exc)) from None
    return password


def _domains(ctx: Ctx) -> list[str]:
    return list(ctx.config.gateway.domains)


@users.command("add")
@click.argument("address")
@click.option("--name", default="", help="Display name, e.g. 'Nguyen Van A'.")
@click.option("--alias", "aliases", multiple=True, metavar="ADDRESS",
              help="Another sender address this user may use (repeatable).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
@pass_ctx
def add(ctx: Ctx, address: str, name: str, aliases: tuple[str, ...],
        password_stdin: bool) -> None:
    """Create a user who may send as ADDRESS."""
    domains = _domains(ctx)
    # Check the address before asking for a password the operator would then type in vain.
    try:
        store.canonical_address(address, domains)
    except store.UserStoreError as exc:
        raise UserError(str(exc)) from None
    password = _read_password(password_stdin)
    with store_session(ctx, (store.UserStoreError,)) as s:
        key = store.add_user(s, address, password, display_name=name, aliases=aliases,
                             domains=domains).address
    click.echo(f"user {key} added")


@users.command("passwd")
@click.argument("address")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
@pass_ctx
def passwd(ctx: Ctx, address: str, password_stdin: bool) -> None:
    """Set a new password for ADDRESS."""
    with store_session(ctx, (store.UserStoreError,)) as s:
        store.require_user(s, address)
    password = _read_password(password_stdin)
    with store_session(ctx, (store.UserStoreError,)) as s:
        key = store.set_password(s, address, password).address
    click.echo(f"password of {key} changed")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """List the users."""
    with store_session(ctx, (store.UserStoreError,)) as s:
        rows = [_as_dict(u) for u in store.list_users(s)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no users")
        return
    width = max(len(r["address"]) for r in rows)
    for r in rows:
        state = "disabled" if r["disabled"] else "enabled "
        extra = f"  aliases: {', '.join(r['aliases'])}" if r["aliases"] else ""
        click.echo(f"{r['address']:<{width}}  {state}  {r['name']}{extra}".rstrip())


@users.command("disable")
@click.argument("address")
@pass_ctx
def disable(ctx: Ctx, address: str) -> None:
    """Refuse logins of ADDRESS (the account and its password are kept)."""
    with store_session(ctx, (store.UserStoreError,)) as s:
        key = store.set_disabled(s, address, True).address
    click.echo(f"user {key} disabled")


@users.command("enable")
@click.argument("address")
@pass_ctx
def enable(ctx: Ctx, address: str) -> None:
    """Allow logins of ADDRESS again."""
    with store_session(ctx, (store.UserStoreError,)) as s:
        key = store.set_disabled(s, address, False).address
    click.echo(f"user {key} enabled")


def _as_dict(u: User) -> dict[str, Any]:
    return {"address": u.address, "name": u.display_name, "aliases": list(u.aliases or []),
            "disabled": u.disabled, "created_at": u.created_at.isoformat()}
