"""DNS resolvers made one way for every lookup the gateway makes (delivery's MX routing,
inbound SPF/DKIM/DMARC checks, `mailgw dkim check`): the servers of `gateway.nameservers`, or
the system's resolv.conf when it is empty, and one timeout for each query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailgw.config import split_nameservers


def make(cls: Any, timeout: float, nameservers: Sequence[str] | None = None,
         port: int = 53) -> Any:
    """A `cls` (dnspython's Resolver, sync or async) asking `nameservers` on `port`, else the
    system's servers, each query ending within `timeout` seconds."""
    resolver = cls(configure=not nameservers)
    if nameservers:
        resolver.nameservers = list(nameservers)
        resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def configured_servers(config: Any) -> tuple[list[str] | None, int]:
    """`gateway.nameservers` as (servers, port) for `make`; no servers: resolv.conf."""
    hosts, port = split_nameservers(list(config.gateway.nameservers))
    return (hosts or None), port
