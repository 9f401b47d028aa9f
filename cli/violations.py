"""`mailgw violations list|show|correct`: read the violation register (filters, --json, --csv)
and add corrections (new records referring to the old; nothing is ever changed in place).

Thin: parses arguments, calls `mailgw.violations.query` and prints. `store_session` is shared
by the other issue-4 command groups (quarantine, audit, directory).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import click

from cli.main import Ctx, UserError, pass_ctx
from cli.store import default_user, print_json, store_session
from mailgw.violations import query
from policies import ACTIONS


def _day(value: str | None, name: str) -> datetime | None:
    """YYYY-MM-DD (a day, UTC) or a full ISO time."""
    if not value:
        return None
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        t = datetime.fromisoformat(value)
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    except ValueError:
        raise UserError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


@click.group()
def violations() -> None:
    """The violation register: every flagged, quarantined or rejected message."""


@violations.command("list")
@click.option("--since", metavar="DATE", help="From this day (YYYY-MM-DD, UTC), inclusive.")
@click.option("--until", metavar="DATE", help="To this day (YYYY-MM-DD), inclusive.")
@click.option("--unit", metavar="U", help="Only this unit.")
@click.option("--reason", metavar="R", help="Only this reason code (e.g. secret_marking).")
@click.option("--action", type=click.Choice([a for a in ACTIONS if a != "allow"]),
              help="Only this action.")
@click.option("--sender", metavar="ADDR", help="Only this envelope sender.")
@click.option("--all-kinds", is_flag=True,
              help="Also quarantine decisions and corrections (default: violations only).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (UTF-8).")
@pass_ctx
def list_cmd(ctx: Ctx, since: str | None, until: str | None, unit: str | None,
             reason: str | None, action: str | None, sender: str | None, all_kinds: bool,
             as_json: bool, as_csv: bool) -> None:
    """List register records, oldest first."""
    if as_json and as_csv:
        raise UserError("choose --json or --csv, not both")
    end = _day(until, "--until")
    if end is not None and until is not None and len(until) == 10:
        end += timedelta(days=1)  # the whole last day
    start = _day(since, "--since")
    with store_session(ctx) as s:
        rows = query.list_records(s, since=start, until=end, unit=unit,
                                  reason=reason, action=action, sender=sender,
                                  kind=None if all_kinds else "violation")
    if as_json:
        print_json(rows)
        return
    if as_csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=query.CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ";".join(r[k]) if isinstance(r[k], list) else r[k]
                        for k in query.CSV_FIELDS})
        click.echo(buf.getvalue(), nl=False)
        return
    if not rows:
        click.echo("no violation records match")
        return
    for r in rows:
        click.echo(f"{r['reference']}  {r['time']}  {r['action']:<10} "
                   f"{','.join(r['reasons']) or r['kind']:<30} {r['unit']:<14} <{r['sender']}>")
    click.echo(f"-- {len(rows)} record(s)")


@violations.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def show_cmd(ctx: Ctx, reference: str, as_json: bool) -> None:
    """Everything about one record (V-YYYY-NNNNNN), and the decisions that refer to it."""
    with store_session(ctx) as s:
        r = query.show(s, reference)
    if r is None:
        raise UserError(f"no violation record {reference}")
    if as_json:
        print_json(r)
        return
    for key in ("reference", "time", "kind", "refers_to", "action", "reasons", "rules", "unit",
                "direction", "sender", "auth_user", "recipients", "queue_id", "message_id",
                "policy_version", "actor", "note", "hash", "prev_hash"):
        value = r[key]
        if isinstance(value, list):
            value = ", ".join(value)
        if value not in (None, ""):
            click.echo(f"{key + ':':<16}{value}")
    click.echo("evidence:")
    for e in r["evidence"]:
        click.echo(f"  - {e.get('part')}: {e.get('signal')}: {e.get('text')}")
    for f in r["followed_by"]:
        click.echo(f"then {f['reference']} {f['time']} {f['kind']} by {f['actor']}: {f['note']}")


@violations.command("correct")
@click.argument("reference")
@click.option("--note", required=True, help="What is corrected and why (goes into the register).")
@click.option("--by", default=None, help="Who corrects (default: the OS user).")
@pass_ctx
def correct_cmd(ctx: Ctx, reference: str, note: str, by: str | None) -> None:
    """Add a correction of a record (e.g. a false positive confirmed by the unit)."""

    who = by or default_user()
    with store_session(ctx) as s:
        try:
            ref = query.correct(s, reference, who, note)
        except (LookupError, ValueError) as exc:
            raise UserError(str(exc).strip("'\"")) from None
    click.echo(f"{reference}: correction recorded as {ref} by {who}")
