"""SPF (RFC 7208) for the MX listener with pyspf, its DNS answered by our bounded `Lookup`.

pyspf has no per-call DNS argument; its documented seam is the module function
`spf.DNSLookup`, which its own tests replace. We replace it once with a dispatcher that uses the
`Lookup` of the current thread (each message is checked in one worker thread) and falls back to
pyspf's own function elsewhere, so concurrent checks with different resolvers never mix.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import spf

from mailgw.inbound.dnslookup import DnsTempError, Lookup
from policies.classifiers.addresses import normalize_domain

_local = threading.local()
_pyspf_lookup = spf.DNSLookup


@dataclass(frozen=True)
class SpfResult:
    """The SPF result for one identity: MAIL FROM, or HELO for the null sender."""

    result: str        # pass | fail | softfail | neutral | none | permerror | temperror
    scope: str         # mailfrom | helo
    identity: str      # the address (mailfrom) or host name (helo) checked
    domain: str        # the domain whose policy was checked (DMARC aligns on it)
    reason: str = ""


def _records(lookup: Lookup, name: str, qtype: str) -> list[tuple[tuple[str, str], Any]]:
    """Answers in the shape pyspf's own dnspython lookup returns."""
    out: list[tuple[tuple[str, str], Any]] = []
    try:
        rdatas = lookup.resolve(name, qtype)
    except DnsTempError as exc:
        raise spf.TempError(f"DNS {exc}") from None
    for r in rdatas:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), r.address))  # type: ignore[attr-defined]
        elif qtype == "MX":
            out.append(((name, qtype), (r.preference, r.exchange)))  # type: ignore[attr-defined]
        elif qtype == "PTR":
            out.append(((name, qtype), r.target.to_text(True)))  # type: ignore[attr-defined]
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), r.strings))  # type: ignore[attr-defined]
    return out


def _dispatch(name: str, qtype: str, strict: Any = True, timeout: float = 30) -> Any:
    lookup: Lookup | None = getattr(_local, "lookup", None)
    if lookup is None:
        return _pyspf_lookup(name, qtype, strict, timeout)
    return _records(lookup, name, qtype)


spf.DNSLookup = _dispatch


def check_spf(lookup: Lookup, client_ip: str, mail_from: str, helo: str) -> SpfResult:
    """Evaluate SPF for the envelope sender (or `postmaster@<helo>` for the null sender)."""
    scope = "mailfrom" if mail_from else "helo"
    identity = mail_from if mail_from else helo
    local, _, written = mail_from.rpartition("@") if mail_from else ("", "", helo)
    # The ASCII (A-label) form, as DNS and DMARC alignment know the domain.
    domain = normalize_domain(written)[0]
    if not domain:
        return SpfResult("none", scope, identity, "", "no identity to check")
    _local.lookup = lookup
    try:
        # The budget is enforced by `lookup`; pyspf's own limit only has to be no tighter.
        query = spf.query(i=client_ip, s=f"{local}@{domain}" if mail_from else "",
                          h=helo if mail_from else domain, timeout=3600)
        result, _code, explanation = query.check()
    except (spf.PermError, ValueError) as exc:  # inputs pyspf cannot parse (a bad IP, say)
        return SpfResult("permerror", scope, identity, domain, str(exc))
    finally:
        _local.lookup = None
    return SpfResult(str(result), scope, identity, domain, str(explanation))
