"""DMARC (RFC 7489) for the MX listener: policy discovery, identifier alignment, p/sp/pct.

Discovery asks `_dmarc.<From domain>`, then `_dmarc.<organisational domain>` (Public Suffix
List from the `publicsuffixlist` package, its bundled snapshot, never fetched at run time).
Alignment is computed even when no record exists, because an internal From domain must align
whatever it publishes (see `verdict`). A DNS failure in the policy lookup, or in an SPF/DKIM
result that could have aligned when nothing else did, is `temperror`: we cannot tell yet.
pct sampling uses the `rand` function given (tests pass a fixed one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

from mailgw.inbound.dkimcheck import DkimResult
from mailgw.inbound.dnslookup import DnsTempError, Lookup
from mailgw.inbound.spfcheck import SpfResult

# RFC 7489 §6.6.4: a message not sampled by pct= gets the next less severe policy.
_SOFTER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def org_domain(domain: str) -> str:
    """The organisational domain (RFC 7489 §3.2): the registrable part, else the name itself."""
    domain = domain.lower().rstrip(".")
    return _psl().privatesuffix(domain) or domain


def aligned(a: str, b: str, mode: str) -> bool:
    """Identifier alignment: strict needs the same name, relaxed the same org domain."""
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    if not a or not b:
        return False
    return a == b if mode == "s" else org_domain(a) == org_domain(b)


@dataclass(frozen=True)
class DmarcRecord:
    """The tags we use of one DMARC record, and where it was found."""

    domain: str         # the name under _dmarc. that held it
    p: str
    sp: str
    adkim: str
    aspf: str
    pct: int


@dataclass(frozen=True)
class DmarcResult:
    """The DMARC evaluation of the header From domain."""

    result: str              # pass | fail | none | temperror | permerror
    from_domain: str
    record_domain: str = ""  # where the policy was found ("" when none)
    policy: str = ""         # the policy that applies to from_domain (p= or sp=)
    disposition: str = "none"  # what to do after pct sampling: none | quarantine | reject
    sampled: bool = True     # False when pct= left this message out
    spf_aligned: bool = False
    dkim_aligned: bool = False
    auth: str = "fail"       # pass | fail | temperror: alignment, with or without a record
    reason: str = ""


def parse_record(text: str, domain: str) -> DmarcRecord | None:
    """The record's tags, or None when it is not a usable DMARC record."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    if tags.get("v") != "DMARC1":
        return None
    p = tags.get("p", "").lower()
    if p not in ("none", "quarantine", "reject"):
        # §6.6.3: an invalid or missing p= with a valid rua= is p=none; we treat every such
        # record as p=none (monitoring), which never makes us act on someone else's typo.
        p = "none"
    sp = tags.get("sp", "").lower()
    sp = sp if sp in ("none", "quarantine", "reject") else p

    def mode(tag: str) -> str:
        return "s" if tags.get(tag, "r").lower() == "s" else "r"

    try:
        pct = min(100, max(0, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    return DmarcRecord(domain, p, sp, mode("adkim"), mode("aspf"), pct)


def _record_at(lookup: Lookup, domain: str) -> DmarcRecord | None:
    texts = [t.decode("utf-8", "replace") for t in lookup.txt(f"_dmarc.{domain}")]
    texts = [t for t in texts if t.replace(" ", "").startswith("v=DMARC1")]
    if len(texts) != 1:
        return None  # §6.6.3: none or several records: no DMARC policy here
    return parse_record(texts[0], domain)


def discover(lookup: Lookup, from_domain: str) -> DmarcRecord | None:
    """The record for `from_domain` (its own, else its organisational domain's)."""
    record = _record_at(lookup, from_domain)
    if record is None:
        org = org_domain(from_domain)
        if org != from_domain:
            record = _record_at(lookup, org)
    return record


def _authenticate(spf: SpfResult, dkim: Sequence[DkimResult], from_domain: str,
                  aspf: str, adkim: str) -> tuple[str, bool, bool]:
    spf_ok = spf.result == "pass" and aligned(spf.domain, from_domain, aspf)
    dkim_ok = any(d.result == "pass" and aligned(d.domain, from_domain, adkim) for d in dkim)
    if spf_ok or dkim_ok:
        return "pass", spf_ok, dkim_ok
    # Only a temporary error in an identity that would have aligned can still change the answer.
    pending = (spf.result == "temperror" and aligned(spf.domain, from_domain, aspf)) or any(
        d.result == "temperror" and aligned(d.domain, from_domain, adkim) for d in dkim)
    return ("temperror" if pending else "fail"), False, False


def check_dmarc(lookup: Lookup, from_domain: str, spf: SpfResult, dkim: Sequence[DkimResult],
                rand: Callable[[], float]) -> DmarcResult:
    """Evaluate DMARC for the (one, ASCII, lower-case) header From domain."""
    auth, spf_ok, dkim_ok = _authenticate(spf, dkim, from_domain, "r", "r")
    try:
        record = discover(lookup, from_domain)
    except DnsTempError as exc:
        # Unknown policy: only a pass under strict alignment passes under every policy.
        strict, s_spf, s_dkim = _authenticate(spf, dkim, from_domain, "s", "s")
        if strict == "pass":
            return DmarcResult("pass", from_domain, auth="pass", spf_aligned=s_spf,
                               dkim_aligned=s_dkim, reason=f"policy unknown: {exc}")
        return DmarcResult("temperror", from_domain, auth=auth, spf_aligned=spf_ok,
                           dkim_aligned=dkim_ok, reason=str(exc))
    if record is None:
        return DmarcResult("none", from_domain, auth=auth, spf_aligned=spf_ok,
                           dkim_aligned=dkim_ok, reason="no DMARC record")
    auth, spf_ok, dkim_ok = _authenticate(spf, dkim, from_domain, record.aspf, record.adkim)
    policy = record.p if record.domain == from_domain else record.sp
    base = DmarcResult(auth, from_domain,
                       record_domain=record.domain, policy=policy, spf_aligned=spf_ok,
                       dkim_aligned=dkim_ok, auth=auth)
    if auth == "pass":
        return base
    if auth == "temperror":
        return replace(base, reason="SPF or DKIM temporary error")
    sampled = record.pct >= 100 or rand() * 100 < record.pct
    return replace(base, disposition=policy if sampled else _SOFTER[policy], sampled=sampled,
                   reason="no aligned SPF or DKIM pass")
