"""Look-alike domains: a domain made to pass for an internal or a webmail domain.

Two tests, both on domains that are neither internal, government nor webmail themselves:

1. UTS #39 confusable skeleton. The character data is the Unicode `confusables.txt` as shipped
   by the `confusable_homoglyphs` package (its JSON lists, for each character, the characters it
   is confusable with). Each entry of confusables.txt maps a source character to a prototype;
   the package stores both directions, so the prototype is the member whose own list is the
   larger one (or the ASCII one of a pair). skeleton(x) = NFD, map every character to its
   prototype, NFD again, then lower-case (domains are case-insensitive, and a capital `I`
   posing as `l` must be seen before the case is folded). `gmаil.com` (Cyrillic а),
   `gmaiI.com` and `phuth0.gov.vn` get the skeleton of the domain they imitate.
2. Typing tricks against the internal domains and the major webmail providers: the same
   letters without dots and hyphens (`phutho-gov.vn`, `phuthogov.vn`), one edit or a swap of
   two neighbours on the skeleton (`gmial.com`, `phuth.gov.vn`), and a protected domain used as
   the first labels of another (`phutho.gov.vn.example.com`, `gmail.com.vn`).

A government domain can be a look-alike too (`phuth0.gov.vn`): a forged sender can use any name.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policies.classifiers.webmail import WebmailList

_MARKS = "\u200e\u200f"


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    import confusable_homoglyphs

    path = os.path.join(os.path.dirname(confusable_homoglyphs.__file__), "confusables.json")
    with open(path, encoding="utf-8") as fh:
        data: dict[str, list[dict[str, str]]] = json.load(fh)
    table: dict[str, str] = {}
    for char, group in data.items():
        if len(char) != 1 or len(group) != 1:
            continue  # a prototype (it lists its sources) or a multi-character key
        target = group[0]["c"].strip(_MARKS)
        back = data.get(target, [])
        if len(back) > 1 or (len(back) == 1 and not char.isascii()) or len(target) > 1:
            table[char] = target
        elif len(back) == 1 and char.isascii() and target.isascii():
            # A pair of two ASCII characters: map both to the smaller so they meet.
            table[char] = min(char, target)
    return table


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of `text`, lower-cased (for domain comparison)."""
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    mapped = "".join(table.get(c, c) for c in decomposed)
    # The prototype of a capital letter may be a capital (0 -> O): map once more after lowering.
    lowered = unicodedata.normalize("NFD", mapped).lower()
    return "".join(table.get(c, c) for c in lowered).lower()


def _squash(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def _within_one_edit(a: str, b: str) -> bool:
    """Optimal string alignment distance <= 1 (one insert, delete, substitute or swap)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (len(diff) == 2 and diff[1] == diff[0] + 1
                and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if la > lb:
        a, b = b, a
    # b is one longer: deleting one character of b must give a.
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


@lru_cache(maxsize=8)
def webmail_skeletons(domains: frozenset[str]) -> dict[str, str]:
    """skeleton -> domain for a whole webmail list (read-only; shared by every detector of it).

    ~4,800 skeletons take about 15 ms: built once per list and process, not per classifier.
    """
    return {skeleton(d): d for d in sorted(domains)}


class LookalikeDetector:
    """`imitated(written, unicode_domain)` -> the protected domain imitated, or ""."""

    # Below this many letters one edit is too likely to be an ordinary other name.
    MIN_EDIT_LEN = 5

    def __init__(self, internal: Iterable[str], webmail: WebmailList) -> None:
        self.internal = tuple(internal)
        self.webmail = webmail
        self.protected = self.internal + tuple(webmail.major)
        skeletons = [(skeleton(d), d) for d in self.protected]
        self._skeletons = dict(skeletons)
        self._squashed = {_squash(skel): d for skel, d in skeletons}
        self._editable = [(d, _squash(skel)) for skel, d in skeletons
                          if len(d.split(".", 1)[0]) >= self.MIN_EDIT_LEN]
        self._webmail_skeletons: dict[str, str] | None = None

    def _all_webmail_skeletons(self) -> dict[str, str]:
        if self._webmail_skeletons is None:
            self._webmail_skeletons = webmail_skeletons(self.webmail.domains)
        return self._webmail_skeletons

    def imitated(self, written: str, domain_unicode: str) -> str:
        for form in dict.fromkeys((written, domain_unicode)):
            skel = skeleton(form)
            hit = self._skeletons.get(skel) or self._all_webmail_skeletons().get(skel)
            if hit and hit != domain_unicode:
                return hit
            squashed = _squash(skel)
            hit = self._squashed.get(squashed)
            if hit and hit != domain_unicode:
                return hit
            for skel_prot, prot in self._skeletons.items():
                if skel.startswith(skel_prot + "."):
                    return prot
            for prot, prot_sq in self._editable:
                if _within_one_edit(squashed, prot_sq):
                    return prot
        return ""
