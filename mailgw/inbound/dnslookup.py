"""Bounded DNS lookups for the inbound checks, over one synchronous dnspython resolver.

Every lookup of one message shares a time budget (`Lookup`): each query may take at most the
resolver's lifetime and never more than what is left of the budget, so a message's checks end in
bounded time however many lookups SPF asks for. NXDOMAIN and "no records" are answers (empty);
a timeout, SERVFAIL or a spent budget is `DnsTempError`. The resolver is injectable so that tests
can point it at a DNS server on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import dns.exception
import dns.name
import dns.rdata
import dns.resolver

from mailgw import resolvers


class DnsTempError(Exception):
    """A lookup could not be answered now (timeout, server failure, time budget spent)."""


def make_resolver(timeout: float = 5.0, nameservers: Sequence[str] | None = None,
                  port: int = 53) -> dns.resolver.Resolver:
    """A resolver whose every query ends within `timeout` seconds; `nameservers` overrides
    the system's resolv.conf (tests: ["127.0.0.1"] and the test server's port)."""
    resolver: dns.resolver.Resolver = resolvers.make(dns.resolver.Resolver, timeout,
                                                     nameservers, port)
    return resolver


class Lookup:
    """The lookups of one message: one resolver, one deadline, a log of what failed."""

    def __init__(self, resolver: dns.resolver.Resolver, budget: float) -> None:
        self.resolver = resolver
        self.deadline = time.monotonic() + budget
        self.failures: list[str] = []

    def resolve(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        """The records of `name`/`rdtype`; [] when the name or the records do not exist."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._fail(f"{name}/{rdtype}: time budget for DNS lookups spent")
        lifetime = min(float(self.resolver.lifetime), remaining)
        try:
            answer = self.resolver.resolve(name, rdtype, search=False, lifetime=lifetime,
                                           raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.SyntaxError, dns.name.NameTooLong):
            # A name that cannot be asked for (from a forged signature, say) has no records.
            return []
        except dns.exception.Timeout:
            raise self._fail(f"{name}/{rdtype}: DNS lookup timed out") from None
        except dns.exception.DNSException as exc:
            raise self._fail(f"{name}/{rdtype}: DNS lookup failed ({type(exc).__name__})") \
                from None
        return list(answer.rrset) if answer.rrset is not None else []

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record of `name` with its strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
        return [b"".join(r.strings) for r in self.resolve(name, "TXT")]  # type: ignore[attr-defined]

    def _fail(self, message: str) -> DnsTempError:
        self.failures.append(message)
        return DnsTempError(message)
