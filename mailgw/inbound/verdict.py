"""`check_message`: SPF, DKIM and DMARC of one incoming message and the decisions that follow.

Decisions, in the order the MX listener applies them:
- `temporary`: a DNS failure that could change the outcome (DMARC policy lookup, or an SPF/DKIM
  temperror in an identity that could have aligned) -> 451 4.4.3, never acceptance of a forgery
  and never a 5xx for our trouble;
- `action`, in the policy vocabulary allow | flag | quarantine | reject, with `reasons`:
  `spoofed_internal_sender` (header From internal without an aligned SPF or DKIM pass, whether
  or not the domain publishes DMARC) -> quarantine; `dmarc_policy` (an outside domain's DMARC
  fail with disposition quarantine or reject, after pct=) -> that disposition;
  `lookalike_domain` (From imitates an internal domain, or shows an internal address as the
  display name of an outside one) -> at least flag, with a warning line.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from email.utils import getaddresses
from typing import Any

import dns.resolver

from mailgw.inbound import headers
from mailgw.inbound.dkimcheck import DkimResult, check_dkim
from mailgw.inbound.dmarc import DmarcResult, check_dmarc
from mailgw.inbound.dnslookup import Lookup
from mailgw.inbound.lookalike import (
    WARNING_HEADER,
    classifier,
    display_name_claims,
    imitated_internal,
    warning_text,
)
from mailgw.inbound.spfcheck import SpfResult, check_spf
from policies import ACTIONS  # allow < flag < quarantine < reject


@dataclass
class InboundVerdict:
    """What the checks found and what the listener should do about it."""

    spf: SpfResult
    dkim: list[DkimResult]
    dmarc: DmarcResult
    from_domains: list[str]            # header From domains (ASCII, lower case)
    authentication_results: str        # the field to prepend, no final CRLF
    temporary: bool = False            # answer 451 4.4.3 (DNS_TEMPFAIL), decide nothing else
    temporary_reason: str = ""
    spoofed_internal_sender: bool = False
    lookalike_domain: bool = False
    lookalike_of: str = ""             # the internal domain imitated
    warning: str = ""                  # text for the recipient (X-Mailgw-Warning), "" if none
    action: str = "allow"              # allow | flag | quarantine | reject
    reasons: list[str] = field(default_factory=list)

    def header_lines(self) -> list[bytes]:
        """Header fields to prepend (UTF-8, CRLF): Authentication-Results, then the warning."""
        lines = [self.authentication_results]
        if self.warning:
            lines.append(headers.encoded_field(WARNING_HEADER, self.warning))
        return [(line + "\r\n").encode("utf-8") for line in lines]

    def apply(self, raw: bytes, authserv_id: str) -> bytes:
        """`raw` without forged Authentication-Results of ours, with our header lines on top."""
        return b"".join(self.header_lines()) + headers.remove_ours(raw, authserv_id)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the trail and logs."""
        return asdict(self)


def _raise(verdict: InboundVerdict, action: str, reason: str) -> None:
    verdict.reasons.append(reason)
    if ACTIONS.index(action) > ACTIONS.index(verdict.action):
        verdict.action = action


def _from_addresses(raw: bytes) -> list[tuple[str, str]]:
    return [(name, addr) for name, addr in getaddresses(headers.values(raw, "from")) if addr]


def _reason(text: str) -> str:
    return f" reason={headers.pvalue(text[:80])}" if text else ""


def _ar_parts(spf: SpfResult, dkim: Sequence[DkimResult], dmarc: DmarcResult) -> list[str]:
    ident = "smtp.mailfrom" if spf.scope == "mailfrom" else "smtp.helo"
    parts = [f"spf={spf.result} {ident}={headers.pvalue(spf.identity or 'unknown')}"]
    for d in dkim or []:
        why = _reason(d.reason) if d.result != "pass" else ""
        props = f" header.d={headers.pvalue(d.domain)}" if d.domain else ""
        props += f" header.s={headers.pvalue(d.selector)}" if d.selector else ""
        props += f" header.b={headers.pvalue(d.b[:8])}" if d.b else ""
        parts.append(f"dkim={d.result}{why}{props}")
    if not dkim:
        parts.append("dkim=none")
    policy = f" (p={dmarc.policy} dis={dmarc.disposition})" if dmarc.policy else ""
    target = f" header.from={headers.pvalue(dmarc.from_domain)}" if dmarc.from_domain else ""
    parts.append(f"dmarc={dmarc.result}{policy}{target}")
    return parts


def check_message(raw: bytes, *, client_ip: str, helo: str, mail_from: str, authserv_id: str,
                  internal_domains: Sequence[str], resolver: dns.resolver.Resolver,
                  budget: float = 20.0,
                  rand: Callable[[], float] = random.random) -> InboundVerdict:
    """Check one message received by the MX listener (blocking: run it in a worker thread).

    `resolver` bounds each lookup (its lifetime, see `make_resolver`); `budget` bounds all the
    lookups of this message together. `rand` draws pct= samples in [0, 1).
    """
    if not authserv_id.strip():
        raise ValueError("authserv_id is required (mx.authserv_id or the gateway host name)")
    lookup = Lookup(resolver, budget)
    spf = check_spf(lookup, client_ip, mail_from, helo)
    dkim = check_dkim(raw, lookup)

    c = classifier(internal_domains)
    addresses = _from_addresses(raw)
    found = [c.classify(a) for _name, a in addresses]
    domains = list(dict.fromkeys(a.domain for a in found if a.domain))
    internal = any(a.is_a("internal") for a in found)

    if len(domains) == 1:
        dmarc = check_dmarc(lookup, domains[0], spf, dkim, rand)
    else:
        # No From domain, or several: DMARC cannot name one author domain (RFC 7489 §6.6.1).
        why = "no From address" if not domains else "several From domains"
        dmarc = DmarcResult("permerror", ",".join(domains), auth="fail", reason=why)
    ar = headers.authentication_results(authserv_id, _ar_parts(spf, dkim, dmarc))
    verdict = InboundVerdict(spf, dkim, dmarc, domains, ar)

    # An internal From must align whatever our own DMARC record says (or whether it could be
    # read): only its alignment decides. An outside From gets its owner's DMARC policy.
    if dmarc.auth == "temperror" if internal else dmarc.result == "temperror":
        verdict.temporary = True
        verdict.temporary_reason = dmarc.reason or "; ".join(lookup.failures)
    elif internal and dmarc.auth == "fail":
        verdict.spoofed_internal_sender = True
        _raise(verdict, "quarantine", "spoofed_internal_sender")
    elif not internal and dmarc.result == "fail" and dmarc.disposition != "none":
        _raise(verdict, dmarc.disposition, "dmarc_policy")
    for (name, _), a in zip(addresses, found, strict=True):
        if a.is_a("internal"):
            continue
        imitated = (imitated_internal(a.raw, internal_domains)
                    or display_name_claims(name, internal_domains))
        if imitated:
            verdict.lookalike_domain = True
            verdict.lookalike_of = imitated
            verdict.warning = warning_text(a.domain_unicode or a.domain, imitated)
            _raise(verdict, "flag", "lookalike_domain")
            break
    return verdict
