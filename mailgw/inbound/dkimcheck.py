"""DKIM verification (RFC 6376) of every signature of an incoming message, with dkimpy.

dkimpy's `dnsfunc` is answered by our bounded `Lookup`. A DNS failure leaves dkimpy as an
exception it does not catch, so it becomes `temperror` for that signature instead of dkimpy's
quiet "invalid". Results per signature: pass, fail (the signature or body hash does not match),
permerror (no key, bad key, malformed or expired signature), temperror.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dkim

from mailgw.inbound.dnslookup import DnsTempError, Lookup

# dkimpy logs every failed signature at ERROR; forged mail is routine here, not our error.
_quiet = logging.getLogger("mailgw.inbound.dkim")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


# Each signature costs a parse, a lookup and a hash: a message cannot make us do unbounded work.
MAX_SIGNATURES = 8


@dataclass(frozen=True)
class DkimResult:
    """The result of one DKIM-Signature field."""

    result: str          # pass | fail | permerror | temperror
    domain: str          # d=
    selector: str        # s=
    b: str               # the first characters of b= (RFC 6008 header.b)
    reason: str = ""


def _tags(sig: dict[bytes, bytes]) -> tuple[str, str, str]:
    def text(tag: bytes) -> str:
        return sig.get(tag, b"").decode("ascii", "replace")

    b = "".join(text(b"b").split())
    return text(b"d").lower().rstrip("."), text(b"s"), b[:12]


def _verify_one(raw: bytes, idx: int, lookup: Lookup) -> DkimResult:
    asked: list[bytes | None] = []

    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        qname = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        records = [t for t in lookup.txt(qname) if t]
        # RFC 6376 §3.6.2.2: several records give undefined results; we take the first.
        asked.append(records[0] if records else None)
        return asked[-1]

    d = dkim.DKIM(raw, logger=_quiet)
    sig: dict[bytes, bytes] = {}
    try:
        prep = d.verify_headerprep(idx)
        if prep:
            sig = prep[0]
        ok = d.verify(idx=idx, dnsfunc=dnsfunc)
    except DnsTempError as exc:
        return DkimResult("temperror", *_tags(sig), reason=str(exc))
    except dkim.ValidationError as exc:
        kind = "fail" if "body hash mismatch" in str(exc) else "permerror"
        return DkimResult(kind, *_tags(sig), reason=str(exc))
    except dkim.DKIMException as exc:
        return DkimResult("permerror", *_tags(sig), reason=str(exc))
    tags = _tags(sig or getattr(d, "signature_fields", {}) or {})
    if ok:
        return DkimResult("pass", *tags)
    if not asked or asked[-1] is None:
        return DkimResult("permerror", *tags, reason="no key for signature")
    if getattr(d, "pk", None) is None:
        return DkimResult("permerror", *tags, reason="unusable key record")
    return DkimResult("fail", *tags, reason="signature did not verify")


def check_dkim(raw: bytes, lookup: Lookup) -> list[DkimResult]:
    """One result per DKIM-Signature, top to bottom; [] when the message has none."""
    try:
        count = sum(1 for name, _ in dkim.DKIM(raw, logger=_quiet).headers
                    if name.lower() == b"dkim-signature")
    except dkim.DKIMException:
        return []
    results = [_verify_one(raw, i, lookup) for i in range(min(count, MAX_SIGNATURES))]
    if count > len(results):
        results.append(DkimResult("permerror", "", "", "",
                                  reason=f"{count - len(results)} more signatures not checked"))
    return results
