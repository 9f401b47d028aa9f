"""`mailgw queue list|show|retry|delete`: look at and act on the delivery queue.

Thin: parses arguments, calls `mailgw.queue.admin` in one transaction and prints (or prints JSON
with --json). A running gateway picks up retried mail at its next poll (within a second).
"""

from __future__ import annotations

import click

from cli.main import Ctx, UserError, pass_ctx
from cli.store import print_json, store_session
from mailgw.queue import admin

STATUSES = ("accepted", "parked", "done", "queued", "deferred", "held", "delivered", "bounced",
            "expired", "deleted")


@click.group()
def queue() -> None:
    """The delivery queue: messages waiting for (or done with) delivery."""


@queue.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None,
              help="Only messages with this status, or with a recipient in it "
                   "(default: every message not done).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def list_cmd(ctx: Ctx, status: str | None, as_json: bool) -> None:
    """List queued messages, oldest first (like mailq)."""
    with store_session(ctx) as s:
        rows = admin.list_messages(s, status=status)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("queue is empty" if status is None else f"no message with status {status}")
        return
    for m in rows:
        click.echo(f"{m['queue_id']:<22} {m['received_at']}  {m['size']:>9}  {m['status']:<8} "
                   f"<{m['mail_from']}>")
        for r in m["recipients"]:
            click.echo(f"{'':<24}{r['status']:<10} <{r['recipient']}>")
    click.echo(f"-- {len(rows)} message(s)")


@queue.command("show")
@click.argument("queue_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def show_cmd(ctx: Ctx, queue_id: str, as_json: bool) -> None:
    """Show one message: envelope, each recipient's status, attempts, last reply, next try."""
    with store_session(ctx) as s:
        info = admin.show(s, queue_id)
    if info is None:
        raise UserError(f"no message with queue id {queue_id}")
    if as_json:
        print_json(info)
        return
    for key in ("queue_id", "status", "direction", "received_at", "mail_from", "auth_user",
                "client_ip", "message_id", "size", "verdict", "processed_at"):
        value = info[key]
        click.echo(f"{key + ':':<14}{'<' + value + '>' if key == 'mail_from' else value}")
    if info["parked_stage"]:
        click.echo(f"{'parked:':<14}stage {info['parked_stage']}: {info['parked_error']}")
    for r in info["recipients"]:
        click.echo(f"  <{r['recipient']}> {r['status']}, attempts {r['attempts']}"
                   + (f", next try {r['next_attempt']}" if r["next_attempt"] else "")
                   + (f", via {r['next_hop']}" if r["next_hop"] else ""))
        if r["last_reply"]:
            click.echo(f"      last reply: {r['last_reply']}")


@queue.command("retry")
@click.argument("queue_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Every deferred or parked message.")
@pass_ctx
def retry_cmd(ctx: Ctx, queue_id: str | None, all_: bool) -> None:
    """Make a deferred or parked message due now (parked: its stages run again)."""
    if bool(queue_id) == all_:
        raise UserError("give a QUEUE_ID or --all")
    with store_session(ctx) as s:
        try:
            n = admin.retry(s, None if all_ else queue_id)
        except LookupError:
            raise UserError(f"no message with queue id {queue_id}") from None
    click.echo(f"{n} recipient(s) due now")


@queue.command("delete")
@click.argument("queue_id")
@pass_ctx
def delete_cmd(ctx: Ctx, queue_id: str) -> None:
    """Stop delivering a message; its open recipients are marked deleted (no bounce)."""
    with store_session(ctx, (admin.HeldError,)) as s:
        try:
            n = admin.delete(s, queue_id)
        except LookupError:
            raise UserError(f"no message with queue id {queue_id}") from None
    click.echo(f"{n} recipient(s) of {queue_id} deleted")
