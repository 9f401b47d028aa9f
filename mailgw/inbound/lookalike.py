"""Look-alike internal domains in the header From, with the policy engine's own detector.

The detection itself is `policies.classifiers.addresses.AddressClassifier` (UTS #39 skeletons and
typing tricks, `policies.classifiers.lookalike`); here we only keep the findings that imitate an
internal domain, also look at the organisational domain (so `lamthao.phuth0.gov.vn` is caught
like `phuth0.gov.vn`), catch an internal address written as the display name of an outside
address (`"chutich@phutho.gov.vn" <x@evil.example>`, which most clients show as if it were the
sender), and write the warning the recipient sees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.header import decode_header, make_header
from functools import lru_cache

from mailgw.inbound.dmarc import org_domain
from policies.classifiers.addresses import AddressClassifier, is_under

WARNING_HEADER = "X-Mailgw-Warning"


@lru_cache(maxsize=8)
def _classifier(domains: tuple[str, ...]) -> AddressClassifier:
    # Building the detector computes skeletons of every protected domain: once per domain set.
    return AddressClassifier(domains)


def classifier(internal_domains: Sequence[str]) -> AddressClassifier:
    return _classifier(tuple(internal_domains))


def imitated_internal(address: str, internal_domains: Sequence[str]) -> str:
    """The internal domain that the domain of `address` imitates, or ""."""
    c = classifier(internal_domains)
    found = c.classify(address)
    candidates = [found.lookalike_of]
    org = org_domain(found.domain) if found.domain else ""
    if not found.lookalike_of and org and org != found.domain and not c.domain_classes(org) & {
            "internal", "free_webmail"}:
        candidates.append(c.classify(f"x@{org}").lookalike_of)
    for imitated in candidates:
        if imitated and any(is_under(imitated, d) for d in c.domains):
            return imitated
    return ""


_ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"'(),;:@]+@([^\s<>\"'(),;:@]+)")


def display_name_claims(name: str, internal_domains: Sequence[str]) -> str:
    """The internal domain of an address written in a display name (RFC 2047 decoded), or ""."""
    try:
        text = str(make_header(decode_header(name)))
    except (ValueError, LookupError):
        text = name  # undecodable words: look at the text as it came
    c = classifier(internal_domains)
    for m in _ADDRESS_IN_TEXT.finditer(text):
        found = c.classify(m.group(0))
        if found.is_a("internal"):
            return next(d for d in c.domains if is_under(found.domain, d))
    return ""


def warning_text(domain: str, imitated: str) -> str:
    """The line for the recipient: Vietnamese with diacritics, then English."""
    return (f"CẢNH BÁO: thư này gửi từ tên miền {domain}, giả dạng tên miền nội bộ {imitated} "
            f"nhưng KHÔNG phải {imitated}. Không mở tệp đính kèm, không bấm liên kết, không trả "
            f"lời. / WARNING: this message comes from {domain}, which imitates the internal "
            f"domain {imitated} but is NOT {imitated}. Do not open attachments, follow links "
            f"or reply.")
