"""Is each DKIM key published? TXT lookups with dnspython, compared with the key on disk.

Per domain and selector the answer is `published` (a DKIM record with this key's p= and k=),
`missing` (no such name or no DKIM record there), `mismatched` (a DKIM record with another key
or algorithm) or `error` (timeout, SERVFAIL: try again). `check()` also promotes each pending key
whose record is published (rotation: see `mailgw.dkim.keys`), since only then is it safe to sign
with it. Blocking: called by `mailgw dkim` commands, never on the gateway's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.resolver

from mailgw import resolvers
from mailgw.config import ConfigError, parse_hostport, split_nameservers
from mailgw.dkim import keys
from mailgw.dkim.errors import DkimError


@dataclass(frozen=True)
class KeyStatus:
    """The DNS state of one key."""

    domain: str
    selector: str
    algorithm: str
    state: str  # the key's manifest state (active, pending, retired)
    status: str  # published, missing, mismatched, error
    detail: str = ""
    activated: bool = False


def make_resolver(nameserver: str | None = None, timeout: float = 5.0,
                  default: list[str] | None = None) -> dns.resolver.Resolver:
    """A resolver: `nameserver` (`IP`, `IP:port` or `[IPv6]:port`), else the `default` list
    (`gateway.nameservers`), else the system's."""
    if nameserver:
        if nameserver.count(":") == 1 or nameserver.startswith("["):
            try:
                host, port = parse_hostport(nameserver, "--nameserver")
            except ConfigError as exc:
                raise DkimError(str(exc)) from None
        else:
            host, port = nameserver, 53
        servers = [host]
    else:
        servers, port = split_nameservers(default or [])
    resolver: dns.resolver.Resolver = resolvers.make(dns.resolver.Resolver, timeout,
                                                     servers or None, port)
    return resolver


def parse_tags(record: str) -> dict[str, str]:
    """`v=DKIM1; k=rsa; p=...` as a dict (whitespace inside values removed, RFC 6376 3.2)."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def lookup(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """The TXT texts at `name` (each record's strings joined); [] if there are none."""
    try:
        answer = resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(r.strings).decode("ascii", "replace") for r in answer]


def check_key(resolver: dns.resolver.Resolver, base: Path, domain: str,
              entry: keys.KeyEntry) -> KeyStatus:
    """Compare the published record of one key with the key file."""
    def status(s: str, detail: str = "") -> KeyStatus:
        return KeyStatus(domain, entry.selector, entry.algorithm, entry.state, s, detail)

    try:
        key = keys.load_private_key(keys.key_path(base, domain, entry), domain, entry.algorithm)
    except DkimError as exc:
        return status("error", str(exc))
    name = keys.record_name(domain, entry.selector)
    try:
        texts = lookup(resolver, name)
    except dns.exception.DNSException as exc:
        return status("error", f"{name}: {type(exc).__name__}: {exc}")
    records = [parse_tags(t) for t in texts]
    records = [r for r in records if "p" in r and r.get("v", "DKIM1") == "DKIM1"]
    if not records:
        return status("missing", f"no DKIM TXT record at {name}")
    want = keys.public_b64(key)
    for r in records:
        if r.get("p") == want and r.get("k", "rsa") == entry.algorithm:
            return status("published")
    return status("mismatched", f"{name} publishes another key or algorithm than "
                                f"{keys.key_path(base, domain, entry)}")


def check(base: Path, domains: list[str], resolver: dns.resolver.Resolver,
          promote: bool = True) -> list[KeyStatus]:
    """The status of every key of `domains`; published pending keys become active."""
    out: list[KeyStatus] = []
    for domain in domains:
        manifest = keys.load_manifest(base, domain)
        for entry in manifest.keys:
            st = check_key(resolver, base, domain, entry)
            if promote and entry.state == "pending" and st.status == "published":
                keys.activate(base, domain, entry.selector)
                st = KeyStatus(st.domain, st.selector, st.algorithm, "active", st.status,
                               "was pending: signing switches to it now", activated=True)
            out.append(st)
    return out
