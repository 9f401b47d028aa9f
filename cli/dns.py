"""`mailgw dns records --domain D`: recommended SPF and DMARC records, with what each does.

Thin: the records and their Vietnamese/English explanations come from `mailgw.dkim.records`;
the DKIM records themselves are printed by `mailgw dkim dns`.
"""

from __future__ import annotations

import ipaddress
import json

import click

from cli.main import UserError
from mailgw.dkim import records


@click.group()
def dns() -> None:
    """DNS records a mail domain should publish."""


@dns.command("records")
@click.option("--domain", required=True, help="The mail domain.")
@click.option("--ip", "ips", multiple=True, metavar="IP[/LEN]",
              help="Address(es) the gateway sends from (default: the domain's MX hosts).")
@click.option("--dmarc-policy", type=click.Choice(["none", "quarantine", "reject"]),
              default="quarantine", show_default=True, help="DMARC p= value.")
@click.option("--report-to", default="", metavar="ADDR",
              help="DMARC aggregate report address (default: dmarc-reports@DOMAIN).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def records_cmd(domain: str, ips: tuple[str, ...], dmarc_policy: str, report_to: str,
                as_json: bool) -> None:
    """Print recommended SPF and DMARC records (Vietnamese and English explanations)."""
    d = domain.strip().lower().rstrip(".")
    if not d or "@" in d or " " in d:
        raise UserError(f"{domain!r} is not a domain name")
    for ip in ips:
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            raise UserError(f"--ip {ip!r} is not an IP address or network") from None
    recs = records.recommended(d, list(ips), dmarc_policy, report_to)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in recs], ensure_ascii=False, indent=2))
        return
    for r in recs:
        click.echo(f"; {r.kind}")
        click.echo(f"; VI: {r.vi}")
        click.echo(f"; EN: {r.en}")
        click.echo(f'{r.name} 3600 IN TXT "{r.text}"')
        click.echo("")
