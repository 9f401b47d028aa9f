"""Vietnamese text normalisation shared by every content classifier.

Classifiers compare text only after `normalize()`: Unicode NFC (decomposed and precomposed input
are the same), the old and the new tone placement made one (`HOÀ` = `HÒA`, `UỶ` = `ỦY`,
`thuý` = `thúy`), every dash variant turned into `-`, invisible characters dropped and runs of
spaces and tabs collapsed to one space. `fold()` adds a case fold that keeps Vietnamese letters
right (`Đ` -> `đ`, `Ố` -> `ố`), for the comparisons the policy says are case-insensitive.
"""

from __future__ import annotations

import re
import unicodedata

# Tone marks as combining characters (NFD): grave, acute, tilde, hook above, dot below.
_TONES = "\u0300\u0301\u0303\u0309\u0323"

# "oa", "oe" and "uy" with the tone written on the second vowel (the "new" placement, `hoà`,
# `uỷ`) are rewritten with the tone on the first vowel (the "old" one, `hòa`, `ủy`), which is the
# form the policy texts use. Only plain second vowels at the end of a syllable move: with a
# final consonant both styles write `hoạch`, `hoàng`, and `oặ` or `uyê` carry their own mark.
_END = r"(?![\u0300-\u036f\w])"
_TONE_SHIFT = re.compile(rf"([oO])([aAeE])([{_TONES}]){_END}|([uU])([yY])([{_TONES}]){_END}")

_DASHES = dict.fromkeys(
    map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-"
)
# Characters that render as nothing but would split a word: dropped.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
# Icelandic eth is the usual stand-in for Vietnamese Đ in legacy (TCVN3/VNI) conversions.
_LOOKALIKE_LETTERS = {ord("\u00d0"): "\u0110"}
_TABLE = {**_DASHES, **_INVISIBLE, **_LOOKALIKE_LETTERS}
_SPECIAL = re.compile("[" + re.escape("".join(map(chr, _TABLE))) + "]")

_SPACES = re.compile(r"[^\S\r\n]+")


def _shift_tone(m: re.Match[str]) -> str:
    if m.group(1):
        return m.group(1) + m.group(3) + m.group(2)
    return m.group(4) + m.group(6) + m.group(5)


# In NFC text, a tone placement to rewrite shows as o followed by a toned a or e, or u followed
# by a toned y, at the end of a syllable (exactly the pairs _TONE_SHIFT moves: `quả`, `quá`
# are not candidates); most lines have none and skip the decompose-recompose round trip.
# Written to begin with one character class, which the regex engine scans for quickly.
_TONED_AE = "àáảãạèéẻẽẹ" + "àáảãạèéẻẽẹ".upper()
_TONED_Y = "ỳýỷỹỵ" + "ỳýỷỹỵ".upper()
_CANDIDATE_TAIL = rf"(?<=[oO])[{_TONED_AE}](?!\w)|(?<=[uU])[{_TONED_Y}](?!\w)"
_CANDIDATE = re.compile(rf"[oOuU](?:{_CANDIDATE_TAIL})")


def tone_nfc(text: str) -> str:
    """NFC with one tone placement: `hoà`, `hòa` (and their NFD forms) all give `hòa`."""
    if text.isascii():
        return text
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if not _CANDIDATE.search(text):
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", _TONE_SHIFT.sub(_shift_tone, decomposed))


# What sends a non-ASCII line down the slow path of normalize(): a character of _TABLE or a
# tone placement to rewrite (_SPECIAL or _CANDIDATE), in one scan.
_SPECIAL_CHARS = _SPECIAL.pattern[1:-1]
_SLOW = re.compile(rf"[{_SPECIAL_CHARS}oOuU](?:{_CANDIDATE_TAIL}|(?<=[{_SPECIAL_CHARS}]))")


def normalize(text: str) -> str:
    """The form every classifier compares: NFC, one tone placement, `-` dashes, single spaces.

    Line breaks are kept (callers work line by line); leading and trailing spaces are removed.
    """
    if text.isascii():
        # Numbers, codes, English: nothing to translate or recompose.
        return " ".join(text.split()) if "\n" not in text and "\r" not in text \
            else _SPACES.sub(" ", text).strip()
    if unicodedata.is_normalized("NFC", text) and not _SLOW.search(text):
        # Most Vietnamese lines: nothing to translate, recompose or move; only the spaces
        # change, if any. Every white-space character but the ASCII space is unprintable, so
        # a printable line without a double, leading or trailing space is its own result
        # (a cheaper test than splitting a line of many words).
        if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
            return text
        return " ".join(text.split()) if "\n" not in text and "\r" not in text \
            else _SPACES.sub(" ", text).strip()
    if _SPECIAL.search(text):
        text = text.translate(_TABLE)
    text = tone_nfc(text)
    if "\n" not in text and "\r" not in text:
        return " ".join(text.split())  # the usual single line: faster than the regex
    return _SPACES.sub(" ", text).strip()


def display(text: str) -> str:
    """NFC with single spaces, tone placement untouched: how evidence quotes a line."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def fold(text: str) -> str:
    """`normalize()` plus a case fold, for comparisons the policy calls case-insensitive."""
    return normalize(text).casefold()


def is_upper_word(word: str) -> bool:
    """True for a word written in capitals (`TỈNH`, `HĐND`, `UBND`); digits alone are not."""
    return any(c.isalpha() for c in word) and word == word.upper()
