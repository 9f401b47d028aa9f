"""`mailgw dkim keygen|dns|check|rotate|remove|list`: DKIM keys and their DNS records.

Thin: the work is in `mailgw.dkim` (key store, DNS check). Keys go to `dkim.key_dir`
(default `<data_dir>/dkim`), mode 0600. Rotation: `rotate` makes a pending key and prints its
record; `check` (or `rotate --activate`) switches signing to it once the record is published;
the old key stays listed, retired, until `remove`.
"""

from __future__ import annotations

import json

import click

from cli.main import Ctx, UserError, pass_ctx
from mailgw.dkim import dnscheck, keys
from mailgw.dkim.errors import DkimError

nameserver_option = click.option(
    "--nameserver", metavar="IP[:PORT]", envvar="MAILGW_NAMESERVER", default=None,
    help="Ask this DNS server (default: gateway.nameservers, else the system's resolvers; "
         "env MAILGW_NAMESERVER).")
timeout_option = click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0,
                              show_default=True, help="Seconds per DNS lookup.")


@click.group()
def dkim() -> None:
    """DKIM signing keys: make, publish, check, rotate."""


def _domains(ctx: Ctx, domain: str | None) -> list[str]:
    configured = keys.signing_domains(ctx.config)
    if domain is None:
        return configured
    d = domain.strip().lower().rstrip(".")
    if d not in configured:
        raise UserError(f"{d} is not a signing domain (configured: {', '.join(configured)}; "
                        "add it to gateway.domains or dkim.domains)")
    return [d]


@dkim.command()
@click.option("--domain", required=True, help="Signing domain.")
@click.option("--selector", required=True, help="Selector (one DNS label, e.g. 2026a).")
@click.option("--algorithm", type=click.Choice(keys.ALGORITHMS), default="rsa",
              show_default=True, help="rsa (2048 bits) or ed25519.")
@pass_ctx
def keygen(ctx: Ctx, domain: str, selector: str, algorithm: str) -> None:
    """Make a key and print its DNS TXT record (zone-file form)."""
    (d,) = _domains(ctx, domain)
    base = keys.key_dir(ctx.config)
    try:
        entry, key = keys.add_key(base, d, selector, algorithm)
    except (DkimError, ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    click.echo(f"; {keys.key_path(base, d, entry)} ({entry.algorithm}, {entry.state})")
    if entry.state == "pending":
        click.echo(f"; another {algorithm} key is active: this one signs after `mailgw dkim "
                   f"check --domain {d}` sees the record published")
    click.echo(keys.zone_line(d, entry.selector, keys.txt_record(algorithm, key)))


@dkim.command("dns")
@click.option("--domain", default=None, help="Only this signing domain.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def dns_cmd(ctx: Ctx, domain: str | None, as_json: bool) -> None:
    """Print the DNS TXT records of every configured key."""
    base = keys.key_dir(ctx.config)
    rows = []
    try:
        for d in _domains(ctx, domain):
            for entry in keys.load_manifest(base, d).keys:
                key = keys.load_private_key(keys.key_path(base, d, entry), d, entry.algorithm)
                rows.append({"domain": d, "selector": entry.selector,
                             "algorithm": entry.algorithm, "state": entry.state,
                             "name": keys.record_name(d, entry.selector),
                             "record": keys.txt_record(entry.algorithm, key)})
    except DkimError as exc:
        raise UserError(str(exc)) from None
    if not rows:
        raise UserError("no DKIM keys yet: make one with `mailgw dkim keygen --domain D "
                        "--selector S`")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"; {r['domain']} {r['selector']} ({r['algorithm']}, {r['state']})")
        click.echo(keys.zone_line(r["domain"], r["selector"], r["record"]))


@dkim.command()
@click.option("--domain", default=None, help="Only this signing domain.")
@nameserver_option
@timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def check(ctx: Ctx, domain: str | None, nameserver: str | None, timeout: float,
          as_json: bool) -> None:
    """Resolve each key's record: published, missing or mismatched.

    A pending key (from `rotate`) whose record is published becomes the active one. Exits 1 if
    an active key is not published.
    """
    base = keys.key_dir(ctx.config)
    try:
        resolver = dnscheck.make_resolver(nameserver, timeout, ctx.config.gateway.nameservers)
        statuses = dnscheck.check(base, _domains(ctx, domain), resolver)
    except DkimError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in statuses], indent=2))
    else:
        for s in statuses:
            note = f"  {s.detail}" if s.detail else ""
            click.echo(f"{s.domain:<24} {s.selector:<16} {s.algorithm:<8} {s.state:<8} "
                       f"{s.status}{note}")
        if not statuses:
            click.echo("no DKIM keys yet")
    bad = [s for s in statuses if s.state == "active" and s.status != "published"]
    if bad:
        raise UserError(f"{len(bad)} active key(s) not published correctly: "
                        + ", ".join(f"{s.selector}._domainkey.{s.domain} {s.status}"
                                    for s in bad))


@dkim.command()
@click.option("--domain", required=True, help="Signing domain.")
@click.option("--algorithm", type=click.Choice(keys.ALGORITHMS), default="rsa",
              show_default=True, help="Which key to rotate.")
@click.option("--activate", is_flag=True,
              help="Switch signing to the pending key now if its record is published.")
@nameserver_option
@timeout_option
@pass_ctx
def rotate(ctx: Ctx, domain: str, algorithm: str, activate: bool, nameserver: str | None,
           timeout: float) -> None:
    """Make a new (pending) key and print its record; --activate switches to it once published."""
    (d,) = _domains(ctx, domain)
    base = keys.key_dir(ctx.config)
    try:
        manifest = keys.load_manifest(base, d)
        pending = [k for k in manifest.pending() if k.algorithm == algorithm]
        if not activate:
            if pending:
                raise UserError(f"{d}: {pending[0].selector} is already pending; publish it and "
                                f"run `mailgw dkim rotate --domain {d} --activate`")
            entry, key = keys.add_key(base, d, keys.new_selector(manifest, algorithm), algorithm)
            click.echo(f"; new {algorithm} key {entry.selector} for {d} ({entry.state}): "
                       "publish this record, then run `mailgw dkim check` or "
                       f"`mailgw dkim rotate --domain {d} --activate`")
            click.echo(keys.zone_line(d, entry.selector, keys.txt_record(algorithm, key)))
            return
        if not pending:
            raise UserError(f"{d}: no pending {algorithm} key; run `mailgw dkim rotate "
                            f"--domain {d}` first")
        entry = pending[0]
        resolver = dnscheck.make_resolver(nameserver, timeout, ctx.config.gateway.nameservers)
        st = dnscheck.check_key(resolver, base, d, entry)
        if st.status != "published":
            raise UserError(f"{d}: {entry.selector} is not published yet ({st.status}: "
                            f"{st.detail}); signing stays with the current key")
        old = keys.activate(base, d, entry.selector)
    except (DkimError, OSError) as exc:
        raise UserError(str(exc)) from None
    retired = f"; {old.selector} retired (remove it with `mailgw dkim remove --domain {d} " \
              f"--selector {old.selector}` once mail signed with it is delivered)" if old else ""
    click.echo(f"{d}: signing with {entry.selector} now{retired}")


@dkim.command()
@click.option("--domain", required=True, help="Signing domain.")
@click.option("--selector", required=True, help="The retired (or pending) key to remove.")
@pass_ctx
def remove(ctx: Ctx, domain: str, selector: str) -> None:
    """Forget a retired key and delete its file (then delete its DNS record)."""
    (d,) = _domains(ctx, domain)
    try:
        entry = keys.remove(keys.key_dir(ctx.config), d, selector.strip().lower())
    except DkimError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"{d}: removed {entry.selector} ({entry.state}); delete "
               f"{keys.record_name(d, entry.selector)} from DNS")


@dkim.command("list")
@click.option("--domain", default=None, help="Only this signing domain.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def list_cmd(ctx: Ctx, domain: str | None, as_json: bool) -> None:
    """List the keys of every signing domain with their state."""
    base = keys.key_dir(ctx.config)
    try:
        rows = [{"domain": d, **keys.describe(e)}
                for d in _domains(ctx, domain) for e in keys.load_manifest(base, d).keys]
    except DkimError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['domain']:<24} {r['selector']:<16} {r['algorithm']:<8} {r['state']:<8} "
                   f"{r['created']}")
    if not rows:
        click.echo("no DKIM keys yet")
