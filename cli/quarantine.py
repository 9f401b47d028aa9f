"""`mailgw quarantine list|show|release|delete`: held messages and the decisions about them.

Thin: calls `mailgw.violations.quarantine` in one transaction and prints. A message is named
by its queue id or by its violation reference. Release and delete are register records with
who (`--by`, default the OS user) and why (`--reason`, required).
"""

from __future__ import annotations

import click

from cli.main import Ctx, UserError, pass_ctx
from cli.store import default_user, print_json, store_session
from mailgw.violations import quarantine as q


@click.group()
def quarantine() -> None:
    """Messages held by the policy: look at them, release or delete them."""


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def list_cmd(ctx: Ctx, as_json: bool) -> None:
    """Held messages, oldest first, with a summary of the evidence."""
    with store_session(ctx) as s:
        rows = q.list_held(s)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("quarantine is empty")
        return
    for r in rows:
        click.echo(f"{r['queue_id']:<22} {r['reference']:<14} {r['received_at']}  "
                   f"<{r['sender']}> -> {', '.join(r['recipients'])}")
        click.echo(f"{'':<24}{','.join(r['reasons'])}: {r['evidence_summary']}")
    click.echo(f"-- {len(rows)} message(s)")


@quarantine.command("show")
@click.argument("ident", metavar="QUEUE_ID|REFERENCE")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def show_cmd(ctx: Ctx, ident: str, as_json: bool) -> None:
    """Full evidence and the header fields of one message."""
    with store_session(ctx) as s:
        try:
            r = q.show(s, ident)
        except q.QuarantineError as exc:
            raise UserError(str(exc)) from None
    if as_json:
        print_json(r)
        return
    for key in ("queue_id", "reference", "status", "received_at", "sender", "auth_user",
                "unit", "subject", "message_id", "policy_version"):
        if r.get(key):
            click.echo(f"{key + ':':<16}{r[key]}")
    click.echo(f"{'reasons:':<16}{', '.join(r['reasons'])}")
    click.echo("recipients:")
    for e in r["entries"]:
        click.echo(f"  {e['status']:<12} <{e['recipient']}>")
    click.echo("evidence:")
    for e in r["evidence"]:
        click.echo(f"  - {e.get('part')}: {e.get('signal')}: {e.get('text')}")
    click.echo("headers:")
    for name, value in r["headers"]:
        click.echo(f"  {name}: {value}")


def _decide(ctx: Ctx, ident: str, by: str | None, reason: str, release: bool) -> None:
    who = by or default_user()
    with store_session(ctx) as s:
        try:
            ref = (q.release if release else q.delete)(s, ident, who, reason)
        except q.QuarantineError as exc:
            raise UserError(str(exc)) from None
    verb = "released (delivery starts at the next poll)" if release else "deleted"
    click.echo(f"{ident}: {verb}; recorded as {ref} by {who}")


@quarantine.command("release")
@click.argument("ident", metavar="QUEUE_ID|REFERENCE")
@click.option("--reason", required=True, help="Why (goes into the register).")
@click.option("--by", default=None, help="Who decides (default: the OS user).")
@pass_ctx
def release_cmd(ctx: Ctx, ident: str, reason: str, by: str | None) -> None:
    """Deliver a held message."""
    _decide(ctx, ident, by, reason, release=True)


@quarantine.command("delete")
@click.argument("ident", metavar="QUEUE_ID|REFERENCE")
@click.option("--reason", required=True, help="Why (goes into the register).")
@click.option("--by", default=None, help="Who decides (default: the OS user).")
@pass_ctx
def delete_cmd(ctx: Ctx, ident: str, reason: str, by: str | None) -> None:
    """Never deliver a held message."""
    _decide(ctx, ident, by, reason, release=False)
