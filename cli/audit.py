"""`mailgw audit verify|head`: check the violation register's hash chain, print its head.

`verify` exits 1 naming the first edited, deleted or reordered record; with `--head SEQ:HASH`
(a head printed earlier by `audit head` and kept elsewhere) it also notices records cut off the
end of the chain.
"""

from __future__ import annotations

import click

from cli.main import Ctx, UserError, pass_ctx
from cli.store import print_json, store_session
from mailgw.violations import register


@click.group()
def audit() -> None:
    """Tamper evidence of the violation register."""


@audit.command("verify")
@click.option("--head", "kept", metavar="SEQ:HASH", default=None,
              help="A head kept elsewhere (from `mailgw audit head`) that must be in the chain.")
@pass_ctx
def verify_cmd(ctx: Ctx, kept: str | None) -> None:
    """Walk the chain from the first record; exit 1 at the first broken one."""
    expect = None
    if kept:
        seq, _, digest = kept.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise UserError("--head: expected SEQ:HASH as printed by `mailgw audit head`")
        expect = (int(seq), digest.lower())
    with store_session(ctx) as s:
        result = register.verify(s, expect)
    if result.broken is not None:
        raise UserError(f"audit: chain broken at {result.broken}")
    click.echo(f"audit: ok, {result.records} record(s); head {result.head_seq}:{result.head_hash}")


@audit.command("head")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def head_cmd(ctx: Ctx, as_json: bool) -> None:
    """Print the last record's position and hash (keep it outside the gateway)."""
    with store_session(ctx) as s:
        v = register.head(s)
        data = ({"seq": 0, "reference": "", "hash": register.GENESIS, "time": ""} if v is None
                else {"seq": v.seq, "reference": v.reference, "hash": v.hash,
                      "time": v.created_at.isoformat(timespec="seconds")})
    if as_json:
        print_json(data)
        return
    click.echo(f"{data['seq']}:{data['hash']} {data['reference']} {data['time']}".rstrip())
