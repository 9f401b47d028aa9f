"""`InboundChecker`: the inbound checks with their settings bound once from the configuration.

The MX listener makes one at start-up (`InboundChecker.from_config(config)`) and, per message,
runs `checker.check(...)` in a worker thread; the resolver is shared (dnspython's synchronous
resolver keeps no per-query state on the object).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dns.resolver

from mailgw.inbound.dnslookup import make_resolver
from mailgw.inbound.headers import remove_ours
from mailgw.inbound.lookalike import imitated_internal
from mailgw.inbound.verdict import InboundVerdict, check_message
from mailgw.resolvers import configured_servers


@dataclass
class InboundChecker:
    """Everything `check_message` needs except the message and its envelope."""

    authserv_id: str
    internal_domains: list[str]
    resolver: dns.resolver.Resolver
    budget: float = 20.0
    rand: Callable[[], float] = field(default=random.random)

    @classmethod
    def from_config(cls, config: Any, resolver: dns.resolver.Resolver | None = None
                    ) -> InboundChecker:
        """mx.authserv_id (else the gateway host name), gateway.domains, mx.dns_timeout per
        lookup and mx.auth_timeout per message; `resolver` overrides the system's (tests)."""
        checker = cls(authserv_id=config.mx.authserv_id or config.hostname,
                      internal_domains=list(config.gateway.domains),
                      resolver=resolver or make_resolver(config.mx.dns_timeout,
                                                         *configured_servers(config)),
                      budget=config.mx.auth_timeout)
        # Build the look-alike tables now (most of a second) rather than on the first message.
        imitated_internal("warm-up@example.invalid", checker.internal_domains)
        return checker

    def check(self, raw: bytes, *, client_ip: str, helo: str, mail_from: str) -> InboundVerdict:
        """`check_message` with the bound settings (blocking: run it in a worker thread)."""
        return check_message(raw, client_ip=client_ip, helo=helo, mail_from=mail_from,
                             authserv_id=self.authserv_id,
                             internal_domains=self.internal_domains, resolver=self.resolver,
                             budget=self.budget, rand=self.rand)

    def remove_ours(self, raw: bytes) -> bytes:
        """`raw` without forged Authentication-Results that claim our authserv-id."""
        return remove_ours(raw, self.authserv_id)
