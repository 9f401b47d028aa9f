"""Address classes: internal, government, free webmail or other, from an envelope address.

An envelope address (MAIL FROM / RCPT TO) is normalised before it is classified: surrounding
whitespace and `<>` removed (from a pasted `"Name" <addr>` only the part inside the last `<>`
counts: a display name is only a name), a source route dropped, the domain lower-cased, one
trailing dot removed and converted by UTS #46 (the `idna` package) to its ASCII form, so
`xn--` and Unicode spellings of one domain are the same domain. The local part never decides
a class; sub-addressing (`user+tag`) is removed for address matching.

Classes (a set, since internal domains are government domains too):
- internal: a gateway domain or a subdomain of one, on whole labels;
- government: `gov.vn`, `*.gov.vn`, `chinhphu.vn`, `*.chinhphu.vn` (and every internal domain);
- free_webmail: on the webmail list itself (subdomains and look-alikes are not);
- other: none of the above.
Look-alike domains are a separate finding (`policies.classifiers.lookalike`), never webmail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import idna

from policies.classifiers.lookalike import LookalikeDetector
from policies.classifiers.webmail import WebmailList

INTERNAL = "internal"
GOVERNMENT = "government"
FREE_WEBMAIL = "free_webmail"
OTHER = "other"
CLASSES = (INTERNAL, GOVERNMENT, FREE_WEBMAIL, OTHER)

_GOVERNMENT_SUFFIXES = ("gov.vn", "chinhphu.vn")


@dataclass(frozen=True)
class Address:
    """One envelope address, normalised and classified."""

    raw: str
    local: str
    domain: str            # ASCII (punycode), lower case, no trailing dot
    domain_unicode: str    # the same domain for people to read
    classes: frozenset[str]
    lookalike_of: str = ""  # the internal or webmail domain it imitates, "" when none

    @property
    def address(self) -> str:
        """`local@domain` with the sub-address tag removed (what allow-lists compare)."""
        if not self.domain:
            return self.local
        return f"{self.local.split('+', 1)[0]}@{self.domain}"

    def is_a(self, cls: str) -> bool:
        return cls in self.classes


def split_address(raw: str) -> tuple[str, str]:
    """(local part, domain as written) of an envelope address; ("", "") for the null sender."""
    s = raw.strip()
    if "<" in s:
        # A pasted header form: only what sits inside the last <...> is the address.
        s = s[s.rfind("<") + 1:]
        s = s.split(">", 1)[0]
    s = s.strip().strip("<>").strip()
    if s.startswith("@") and ":" in s:
        s = s.split(":", 1)[1]  # RFC 5321 source route: @relay1,@relay2:user@domain
    local, at, domain = s.rpartition("@")
    if not at:
        return s, ""
    return local.strip().lower(), domain.strip()


def normalize_domain(domain: str) -> tuple[str, str]:
    """(ASCII form, Unicode form) of a domain: lower case, one trailing dot gone, UTS #46."""
    d = domain.strip()
    if d.endswith("."):
        d = d[:-1]
    d = d.lower()
    if not d:
        return "", ""
    if d.isascii() and "xn--" not in d:
        # Plain ASCII: UTS #46 would only lower-case it (or refuse it, and we keep it as is).
        return d, d
    try:
        ascii_form = idna.encode(d, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError:
        # Not a valid IDN: keep the lower-cased text; it still gets a class (most likely other).
        return d, d
    try:
        unicode_form = idna.decode(ascii_form)
    except idna.IDNAError:
        unicode_form = ascii_form
    return ascii_form, unicode_form


def is_under(domain: str, parent: str) -> bool:
    """True when `domain` is `parent` or a subdomain of it, on whole labels."""
    return domain == parent or domain.endswith("." + parent)


class AddressClassifier:
    """Classifies envelope addresses against the gateway domains and the webmail list."""

    # Addresses classified recently, by their raw text (envelope addresses repeat: the same
    # senders, the same partners). Bounded: emptied when full.
    CACHE_SIZE = 4096

    def __init__(self, domains: Iterable[str], webmail: WebmailList | None = None) -> None:
        self.domains = tuple(normalize_domain(d)[0] for d in domains if d.strip())
        self.webmail = webmail if webmail is not None else WebmailList()
        self.lookalike = LookalikeDetector(self.domains, self.webmail)
        self._seen: dict[str, Address] = {}

    def domain_classes(self, domain: str) -> frozenset[str]:
        """The classes of an already normalised (ASCII, lower case) domain."""
        classes: set[str] = set()
        if domain and any(is_under(domain, d) for d in self.domains):
            classes.update((INTERNAL, GOVERNMENT))
        if domain and any(is_under(domain, g) for g in _GOVERNMENT_SUFFIXES):
            classes.add(GOVERNMENT)
        if domain in self.webmail:
            classes.add(FREE_WEBMAIL)
        return frozenset(classes or {OTHER})

    def classify(self, raw: str) -> Address:
        """The normalised, classified address (Address is immutable, so a cached one is shared).

        A look-alike check of an outside domain costs ~15 us; a repeated address costs a lookup.
        """
        found = self._seen.get(raw)
        if found is None:
            found = self._classify(raw)
            if len(self._seen) >= self.CACHE_SIZE:
                self._seen.clear()
            self._seen[raw] = found
        return found

    def _classify(self, raw: str) -> Address:
        local, written = split_address(raw)
        domain, domain_unicode = normalize_domain(written)
        classes = self.domain_classes(domain)
        lookalike = ""
        if domain and not classes & {INTERNAL, FREE_WEBMAIL}:
            lookalike = self.lookalike.imitated(written.strip().rstrip("."), domain_unicode)
        return Address(raw, local, domain, domain_unicode, classes, lookalike)
