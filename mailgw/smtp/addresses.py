"""Envelope address checks for the SMTP listeners: parse, normalise, refuse relay tricks.

aiosmtpd hands the listener the MAIL FROM / RCPT TO path without its angle brackets; this module
turns it into an `Address` whose `domain` is the normalised final domain (lower case, IDN as
ASCII A-labels via UTS #46) on which every relay and ownership decision is made. Anything that
has ever been used to make a gateway relay somewhere else, or to make two parsers disagree about
where a message goes, is refused with an `AddressError` carrying a stable `code` and a short
ASCII `text` fit for an SMTP reply:

- `%`-hack `user%other.com@phutho.gov.vn`, bang path `other.com!user@phutho.gov.vn`,
- source route `@a,@b:user@c`, more than one `@`, quoted local part containing `@`, `%` or `!`,
- address literal `user@[1.2.3.4]` and bare IP domains `user@1.2.3.4`,
- trailing dot `user@phutho.gov.vn.` (also when spelled with a full-width dot),
- empty or oversized parts, whitespace, control characters, NUL, CR, LF,
- non-ASCII addresses unless the client declared SMTPUTF8.

Pure functions, no I/O: the listener maps an AddressError to its reply (e.g. 501 5.1.3).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import idna

from policies.classifiers.addresses import is_under

MAX_PATH = 254  # RFC 5321 path is 256 octets including the angle brackets
MAX_LOCAL = 64
MAX_DOMAIN = 253
MAX_LABEL = 63

# RFC 5322 atext; `%` and `!` are legal there but are exactly the relay tricks refused here.
_ATEXT = re.compile(r"[A-Za-z0-9#$&'*+\-/=?^_`{|}~\x80-\U0010ffff]+")
_LDH_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


class AddressError(ValueError):
    """An envelope address that is refused; `code` is stable, `text` is ASCII for the reply."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Address:
    """A checked envelope address. `domain` is the normalised final domain (ASCII, lower case)."""

    local: str  # as given (case preserved: RFC 5321 leaves it to the receiving domain)
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def key(self) -> str:
        """Case-insensitive form used to compare addresses (sender ownership, user lookup)."""
        return f"{self.local.lower()}@{self.domain}"


def parse_mail_from(path: str, *, utf8: bool = False) -> Address | None:
    """The MAIL FROM path; None for the null reverse-path `<>` (bounces)."""
    path = _strip_brackets(path)
    if path == "":
        return None
    return parse_address(path, utf8=utf8)


def parse_rcpt_to(path: str, *, utf8: bool = False) -> Address:
    """The RCPT TO path (never empty)."""
    return parse_address(_strip_brackets(path), utf8=utf8)


def parse_address(text: str, *, utf8: bool = False) -> Address:
    """Check and normalise `local@domain`; `utf8` is whether the client declared SMTPUTF8."""
    if not text:
        raise AddressError("empty", "Empty address")
    if any(_is_control(c) for c in text):
        raise AddressError("control_char", "Control characters (NUL, CR, LF...) in address")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise AddressError("too_long", "Address too long")
    if not utf8 and not text.isascii():
        raise AddressError("non_ascii", "Non-ASCII address without SMTPUTF8")
    if text.startswith("@"):
        raise AddressError("source_route", "Source routes are not accepted")
    local, domain = _split(text)
    return Address(_check_local(local), normalise_domain(domain))


def normalise_domain(domain: str) -> str:
    """The ASCII, lower-case form of a domain (IDN via UTS #46), or AddressError."""
    if not domain:
        raise AddressError("empty_domain", "Missing domain")
    if domain.startswith("["):
        raise AddressError("address_literal", "Address literals are not accepted")
    if domain.endswith("."):
        raise AddressError("trailing_dot", "Trailing dot in domain")
    if any(c.isspace() for c in domain):
        raise AddressError("bad_domain", "Invalid domain")
    if domain.isascii():
        ascii_domain = domain.lower()
    else:
        try:
            ascii_domain = idna.encode(domain, uts46=True, std3_rules=True,
                                       transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise AddressError("bad_domain", "Invalid international domain name") from None
        # UTS #46 maps look-alikes such as a full-width dot, so check the result again.
        if ascii_domain.endswith("."):
            raise AddressError("trailing_dot", "Trailing dot in domain")
    if len(ascii_domain) > MAX_DOMAIN:
        raise AddressError("too_long", "Domain too long")
    labels = ascii_domain.split(".")
    for label in labels:
        if not label:
            raise AddressError("bad_domain", "Empty label in domain")
        if len(label) > MAX_LABEL or not _LDH_LABEL.fullmatch(label):
            raise AddressError("bad_domain", "Invalid domain")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise AddressError("bad_domain", "Invalid international domain name") from None
    # An all-numeric top label is an IP address written without brackets: a literal in disguise.
    if labels[-1].isdigit():
        raise AddressError("address_literal", "IP addresses are not accepted as domains")
    return ascii_domain


def is_internal(domain: str, domains: list[str] | tuple[str, ...] | set[str]) -> bool:
    """True if `domain` is one of `domains` or a subdomain of one (whole labels only)."""
    d = domain.lower()
    return any(is_under(d, internal.lower()) for internal in domains)


def _is_control(c: str) -> bool:
    # Besides NUL/CR/LF and the other C0/C1 controls: invisible format characters (bidi
    # overrides, zero-width spaces), line/paragraph separators and unpaired surrogates, which
    # only ever serve to make an address look like another one.
    return ord(c) < 32 or unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _strip_brackets(path: str) -> str:
    if path.startswith("<") and path.endswith(">"):
        return path[1:-1]
    return path


def _split(text: str) -> tuple[str, str]:
    """Split at the one `@` that separates local part and domain, honouring a quoted local part."""
    if text.startswith('"'):
        end = _quoted_end(text)
        local, rest = text[:end], text[end:]
        if not rest.startswith("@"):
            raise AddressError("bad_local", "Invalid quoted local part")
        domain = rest[1:]
    else:
        local, at, domain = text.partition("@")
        if not at:
            raise AddressError("no_domain", "Address without domain")
    if "@" in domain:
        raise AddressError("multiple_at", "More than one @ in address")
    return local, domain


def _quoted_end(text: str) -> int:
    """Index just after the closing quote of the quoted string that starts `text`."""
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise AddressError("bad_local", "Unterminated quoted local part")


def _check_local(local: str) -> str:
    if not local:
        raise AddressError("empty_local", "Empty local part")
    if len(local.encode("utf-8", "surrogatepass")) > MAX_LOCAL:
        raise AddressError("too_long", "Local part too long")
    if local.startswith('"'):
        content = re.sub(r"\\(.)", r"\1", local[1:-1])
        if "@" in content:
            raise AddressError("quoted_at", "Quoted local part containing @ is not accepted")
        return _check_tricks(content, quoted=True)
    return _check_tricks(local, quoted=False)


def _check_tricks(local: str, *, quoted: bool) -> str:
    if "%" in local:
        raise AddressError("percent_hack", "Percent-hack addresses are not accepted")
    if "!" in local:
        raise AddressError("bang_path", "Bang paths are not accepted")
    if _is_dot_atom(local):
        # A quoted local part that needs no quotes is the same mailbox: use the plain form so
        # that `"chutich"@...` and `chutich@...` compare equal everywhere downstream.
        return local
    if not quoted or not local or any(c.isspace() and c != " " for c in local):
        raise AddressError("bad_local", "Invalid local part")
    escaped = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _is_dot_atom(s: str) -> bool:
    if any(c.isspace() for c in s):
        return False
    return bool(s) and all(_ATEXT.fullmatch(part) for part in s.split("."))
