"""Next-hop routing: which transport a recipient domain is delivered by.

A next hop is written `maildir:PATH`, `smtp:[host]:port` (the brackets mean: no MX lookup, as in
Postfix) or `mx` (look up the domain's MX records). The route table maps a domain (and, unless a
more specific route exists, its subdomains) to a next hop; everything else takes the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class NextHop:
    kind: str  # "maildir" | "smtp" | "mx"
    host: str = ""
    port: int = 25
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "maildir":
            return f"maildir:{self.path}"
        if self.kind == "smtp":
            return f"smtp:[{self.host}]:{self.port}"
        return "mx"


def parse_next_hop(text: str) -> NextHop:
    """Parse a next-hop string; ValueError says what is expected."""
    text = text.strip()
    if text == "mx":
        return NextHop("mx")
    if text.startswith("maildir:"):
        path = text[len("maildir:"):]
        if not path:
            raise ValueError("maildir: needs a directory, e.g. maildir:var/delivered")
        return NextHop("maildir", path=path)
    if text.startswith("smtp:"):
        rest = text[len("smtp:"):]
        if rest.startswith("["):
            host, sep, tail = rest[1:].partition("]")
            if not sep:
                raise ValueError(f"{text!r}: missing ']' in smtp:[host]:port")
            port_s = tail[1:] if tail.startswith(":") else (tail or "25")
        else:
            host, _, port_s = rest.rpartition(":") if ":" in rest else (rest, "", "25")
        if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ValueError(f"{text!r}: expected smtp:[host]:port")
        return NextHop("smtp", host=host, port=int(port_s))
    raise ValueError(f"{text!r}: expected maildir:PATH, smtp:[host]:port or mx")


def route_for(domain: str, routes: Mapping[str, str], default: str) -> NextHop:
    """The next hop for `domain`: the most specific route (exact, then parents), else default."""
    domain = domain.lower().rstrip(".")
    labels = domain.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in routes:
            return parse_next_hop(routes[candidate])
    return parse_next_hop(default)
