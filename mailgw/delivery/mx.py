"""MX transport: find the domain's mail hosts in DNS (dnspython, async) and try them in order.

MX records by preference (equal preferences shuffled, RFC 5321 §5.1), else the domain's own A/AAAA
records (implicit MX). A null MX (`0 .`, RFC 7505) or a domain that does not exist is a permanent
failure; a DNS timeout or server failure is temporary. A host that cannot be reached is skipped for
the next one; the first host that answers the SMTP conversation decides. The resolver is injectable
(nameserver address and port) so that tests can use a DNS server on 127.0.0.1.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from mailgw import resolvers
from mailgw.delivery import smtp
from mailgw.delivery.result import Result, permanent, temporary


class DnsFailure(Exception):
    """A lookup failed; `permanent` says whether retrying can help."""

    def __init__(self, message: str, permanent: bool, code: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code or ("550 5.1.2" if permanent else "451 4.4.3")


class MxResolver:
    """Mail-host lookups with one timeout; `nameservers` overrides the system's resolv.conf."""

    def __init__(self, timeout: float = 10.0, nameservers: Sequence[str] | None = None,
                 port: int = 53) -> None:
        self.resolver: dns.asyncresolver.Resolver = resolvers.make(
            dns.asyncresolver.Resolver, timeout, nameservers, port)

    async def _query(self, name: str, rdtype: str) -> list[dns.rdata.Rdata] | None:
        """Answers, or None when the name exists without records of that type."""
        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise DnsFailure(f"{name}: domain does not exist (NXDOMAIN)", permanent=True) from None
        except dns.resolver.NoAnswer:
            return None
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
            raise DnsFailure(f"{name}/{rdtype}: DNS lookup timed out", permanent=False) from None
        except (dns.resolver.NoNameservers, dns.exception.DNSException) as exc:
            raise DnsFailure(f"{name}/{rdtype}: DNS lookup failed: {exc}", permanent=False) \
                from None
        return list(answer)

    async def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of `host`; [] if it has none."""
        out: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                out += [r.to_text() for r in (await self._query(host, rdtype) or [])]
            except DnsFailure:
                # One family failing is not fatal while the other one answers.
                if rdtype == "A":
                    continue
        return out

    async def mail_hosts(self, domain: str) -> list[str]:
        """Mail host names for `domain` in the order to try them."""
        records = await self._query(domain, "MX")
        if records is None:
            return [domain]  # implicit MX: the domain itself (RFC 5321 §5.1)
        mx = [(r.preference, r.exchange.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
              for r in records]
        if any(name in ("", ".") for _, name in mx):
            raise DnsFailure(f"{domain}: the domain accepts no mail (null MX)", permanent=True,
                             code="556 5.1.10")
        random.shuffle(mx)
        mx.sort(key=lambda pm: pm[0])
        return [name for _, name in mx]


async def send(resolver: MxResolver, domain: str, mail_from: str, recipients: Sequence[str],
               content: bytes, *, port: int = 25, helo: str, require_tls: bool = False,
               connect_timeout: float = 30.0, command_timeout: float = 300.0,
               tls_context: ssl.SSLContext | None = None,
               cache: smtp.ConnectionCache | None = None) -> tuple[dict[str, Result], str]:
    """Deliver to `domain`'s mail hosts; per-recipient Results and the host that answered."""

    def all_(result: Result) -> dict[str, Result]:
        return dict.fromkeys(recipients, result)

    try:
        hosts = await resolver.mail_hosts(domain)
    except DnsFailure as exc:
        return all_((permanent if exc.permanent else temporary)(f"{exc.code} {exc}")), ""
    tried: list[str] = []
    for host in hosts:
        try:
            addrs = await resolver.addresses(host)
        except DnsFailure as exc:
            if exc.permanent and len(hosts) == 1 and host == domain:
                return all_(permanent(f"550 5.1.2 {exc}")), host
            tried.append(f"{host}: {exc}")
            continue
        if not addrs:
            tried.append(f"{host}: no address")
            continue
        for addr in addrs:
            try:
                results = await smtp.send(addr, port, mail_from, recipients, content, helo=helo,
                                          require_tls=require_tls,
                                          connect_timeout=connect_timeout,
                                          command_timeout=command_timeout,
                                          tls_context=tls_context, raise_on_connect_failure=True,
                                          cache=cache)
            except smtp.ConnectFailed as exc:
                tried.append(str(exc))
                continue
            return results, f"{host}[{addr}]:{port}"
    reason = "; ".join(tried[-3:]) or "no mail host"
    return all_(temporary(f"451 4.4.1 no mail host of {domain} reachable ({reason})")), ""
