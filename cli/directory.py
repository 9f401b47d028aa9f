"""`mailgw directory import|show`: the organisation directory (units, heads, admins, users).

Thin: calls `mailgw.directory`. The CSV format is described in mailgw/directory/store.py and
shown by config/directory.example.csv.
"""

from __future__ import annotations

import click

from cli.main import Ctx, UserError, pass_ctx
from cli.store import print_json, store_session
from mailgw.directory import DirectoryError, import_csv, show


@click.group()
def directory() -> None:
    """Units and users of the organisation."""


@directory.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Empty the directory first (default: merge).")
@pass_ctx
def import_cmd(ctx: Ctx, file: str, replace: bool) -> None:
    """Load units and users from a UTF-8 CSV file (all or nothing)."""
    with store_session(ctx) as s:
        try:
            units, users = import_csv(s, file, replace=replace)
        except DirectoryError as exc:
            raise UserError(str(exc)) from None
    click.echo(f"directory: {units} unit(s), {users} user(s) imported from {file}")


@directory.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def show_cmd(ctx: Ctx, as_json: bool) -> None:
    """Every unit with its head, administrators and users."""
    with store_session(ctx) as s:
        units = show(s)
    if as_json:
        print_json(units)
        return
    if not units:
        click.echo("directory is empty (mailgw directory import FILE.csv)")
        return
    for u in units:
        parent = f" (thuộc {u['parent']})" if u["parent"] else ""
        click.echo(f"{u['id']}: {u['name']}{parent}")
        if u["head_address"]:
            click.echo(f"  thủ trưởng: {u['head_name']} <{u['head_address']}>")
        if u["admins"]:
            click.echo(f"  quản trị:   {', '.join(u['admins'])}")
        for p in u["users"]:
            click.echo(f"  - {p['name']} <{p['address']}> {p['position']}".rstrip())
