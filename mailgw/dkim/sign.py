"""DKIM-Signature headers: dkimpy canonicalises and builds the header, `cryptography` signs.

dkimpy's own RSA is pure Python (about 88 signatures per second for a 10 KB message on one core);
here the same steps as `dkim.DKIM.sign()` + `gen_header()` run with dkimpy's building blocks
(`rfc822_parse`, the relaxed canonicalisation, `hash_headers`, `fold`), and only the private-key
operation is OpenSSL's: RSASSA-PKCS1-v1_5 over the SHA-256 header hash, or Ed25519 over that hash
(RFC 8463). PKCS#1 v1.5 is deterministic, so for the same key and `t=` the header is byte for byte
what dkimpy would make (a test checks this).

Header list: the RFC 6376 recommended set (dkimpy's `DKIM.SHOULD`), each instance present, and
each normally-single header in `OVERSIGN` once more than it occurs, so that none can be added after
signing without breaking the signature. A message with no From, two From or two Subject headers
is refused (`DkimRefused`): a verifier could show the unsigned one.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from collections.abc import Sequence

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim.canonicalization import (
    CanonicalizationPolicy,
    compress_whitespace,
    correct_empty_body,
    strip_trailing_lines,
    strip_trailing_whitespace,
)

from mailgw.dkim.errors import DkimRefused
from mailgw.dkim.keys import PrivateKey
from mailgw.pipeline.mail import CRLFBytes, is_canonical_crlf

HEADER_NAME = b"DKIM-Signature"
RECOMMENDED: tuple[bytes, ...] = tuple(dkim.DKIM.SHOULD)
OVERSIGN: tuple[bytes, ...] = (b"from", b"to", b"cc", b"subject", b"date", b"reply-to",
                               b"message-id", b"mime-version", b"content-type")
SINGLE: tuple[bytes, ...] = (b"from", b"subject")
POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")

Headers = list[list[bytes]]  # dkimpy's parsed form: [name, value-with-CRLF]


def parse(message: bytes) -> tuple[Headers, bytes]:
    """Headers and body as dkimpy reads them (either line ending accepted).

    dkimpy splits the whole message into lines to find the body; for a message with CRLF line
    endings only (what the gateway stores), the body is the bytes after the first empty line as
    they are, so only the header block is given to dkimpy's parser.
    """
    head = message
    body: bytes | None = None
    if is_canonical_crlf(message):
        if message.startswith(b"\r\n"):
            head, body = b"", message[2:]
        else:
            cut = message.find(b"\r\n\r\n")
            head, body = (message, b"") if cut < 0 else (message[:cut + 2], message[cut + 4:])
    try:
        headers, rest = dkim.rfc822_parse(head)
    except dkim.MessageFormatError as exc:
        raise DkimRefused(f"the header cannot be parsed for signing: {exc}") from None
    return headers, rest if body is None else body


def header_list(headers: Headers) -> list[bytes]:
    """The h= list: recommended headers as often as they occur, OVERSIGN ones once more."""
    counts = Counter(name.lower() for name, _ in headers)
    if counts[b"from"] == 0:
        raise DkimRefused("the message has no From header")
    for name in SINGLE:
        if counts[name] > 1:
            raise DkimRefused(f"the message has {counts[name]} {name.decode().title()} headers")
    names = list(RECOMMENDED) + [n for n in OVERSIGN if n not in RECOMMENDED]
    out: list[bytes] = []
    for name in names:
        out += [name] * (counts[name] + (1 if name in OVERSIGN else 0))
    return out


# Bodies above this are canonicalised and hashed in pieces of about this size (see
# _hash_relaxed_in_pieces).
PIECE = 1 << 20


def body_hash(body: bytes, piece: int = PIECE) -> bytes:
    """bh=: base64 SHA-256 of the relaxed-canonical body (the same for RSA and Ed25519)."""
    hasher = hashlib.sha256()
    if len(body) <= piece:
        hasher.update(relaxed_body(body))
    else:
        _hash_relaxed_in_pieces(hasher, body, piece)
    return base64.b64encode(hasher.digest())


def _hash_relaxed_in_pieces(hasher: hashlib._Hash, body: bytes, piece: int) -> None:
    """Feed `hasher` what relaxed_body(body) would return, without making it.

    For a 20 MB body the whole-body passes (regexes, copies) each held the GIL for tens of
    milliseconds in the signing thread, and the event loop of every session waited for them.
    Pieces end just after a CRLF, so no run of white space and no line end is cut; each is
    canonicalised alone. Trailing empty lines (RFC 6376 3.4.4) may span pieces: their CRLFs are
    held back until text follows them; at the end one line end is kept, and an empty result
    stays empty, as dkimpy's strip_trailing_lines and correct_empty_body do.
    """
    view = memoryview(body)
    pending = 0  # CRLFs seen at the end of the text so far, not yet fed
    fed = False
    start = 0
    while start < len(body):
        cut = body.find(b"\r\n", start + piece)
        end = len(body) if cut < 0 else cut + 2
        chunk: bytes | memoryview = view[start:end]
        if _needs_relaxing(body, start, end):
            chunk = _relaxed_lines(bytes(chunk))
        core = len(chunk)
        while core >= 2 and chunk[core - 2:core] == b"\r\n":
            core -= 2
        if core:
            hasher.update(b"\r\n" * pending)
            hasher.update(chunk[:core])
            pending, fed = 0, True
        pending += (len(chunk) - core) // 2
        start = end
    if fed:
        hasher.update(b"\r\n")


def _needs_relaxing(body: bytes, start: int = 0, end: int | None = None) -> bool:
    """A tab, a run of spaces or a space before a line end in body[start:end]: only then do
    dkimpy's regex passes change anything. (A piece ends after a CRLF, so none of these spans
    two pieces.)"""
    return any(body.find(s, start, end) >= 0 for s in (b"\t", b"  ", b" \r\n"))


def _relaxed_lines(chunk: bytes) -> bytes:
    """The per-line part of relaxed body canonicalisation (dkimpy's two regex passes)."""
    return compress_whitespace(strip_trailing_whitespace(chunk))


def relaxed_body(body: bytes) -> bytes:
    """dkimpy's relaxed body canonicalisation, without its two regex passes when they would
    change nothing: no tab, no run of spaces and no space before a line end (most mail)."""
    if _needs_relaxing(body):
        return bytes(POLICY.canonicalize_body(body))
    return bytes(correct_empty_body(strip_trailing_lines(body)))


def signature_header(headers: Headers, bh: bytes, include: Sequence[bytes], domain: str,
                     selector: str, key: PrivateKey, *, now: int | None = None,
                     linesep: bytes = b"\r\n") -> bytes:
    """One `DKIM-Signature: ...` header line (folded, ending in `linesep`)."""
    algorithm = b"rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else b"ed25519-sha256"
    d = domain.encode("ascii")
    include = [h.lower() for h in include]
    fields = [
        (b"v", b"1"), (b"a", algorithm), (b"c", b"relaxed/relaxed"), (b"d", d),
        (b"i", b"@" + d), (b"q", b"dns/txt"), (b"s", selector.encode("ascii")),
        (b"t", str(int(time.time()) if now is None else now).encode("ascii")),
        (b"h", b" : ".join(include)), (b"bh", bh),
        # As dkimpy: a long placeholder puts b= on its own line, so filling it in later does
        # not refold the tags before it.
        (b"b", b"0" * 60),
    ]
    value = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(HEADER_NAME))
    value = dkim.RE_BTAG.sub(b"\\1", value)
    hasher = hashlib.sha256()
    dkim.hash_headers(hasher, POLICY, POLICY.canonicalize_headers(headers), include,
                      (HEADER_NAME, b" " + value), dict(fields))
    fields[-1] = (b"b", base64.b64encode(_sign_digest(key, hasher.digest())))
    value = dkim.fold(b"; ".join(b"=".join(f) for f in fields) + linesep,
                      namelen=len(HEADER_NAME), linesep=linesep)
    return HEADER_NAME + b": " + value


def _sign_digest(key: PrivateKey, digest: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    # RFC 8463: Ed25519 (pure) signs the SHA-256 hash of the canonical header data.
    return key.sign(digest)


def line_ending(message: bytes) -> bytes:
    """The message's own line ending, so the added header matches the rest."""
    end = message.find(b"\n")
    return b"\r\n" if end > 0 and message[end - 1:end] == b"\r" else b"\n"


def sign(message: bytes, domain: str, keys: Sequence[tuple[str, PrivateKey]],
         now: int | None = None) -> bytes:
    """The message with one DKIM-Signature per (selector, key) prepended, in that order."""
    headers, body = parse(message)
    return sign_parsed(message, headers, body, header_list(headers), domain, keys, now)


def signatures(message: bytes, headers: Headers, body: bytes, include: Sequence[bytes],
               domain: str, keys: Sequence[tuple[str, PrivateKey]],
               now: int | None = None) -> list[bytes]:
    """The DKIM-Signature header lines `sign_parsed` prepends, one per (selector, key)."""
    bh = body_hash(body)
    eol = line_ending(message)
    return [signature_header(headers, bh, include, domain, sel, key, now=now, linesep=eol)
            for sel, key in keys]


def sign_parsed(message: bytes, headers: Headers, body: bytes, include: Sequence[bytes],
                domain: str, keys: Sequence[tuple[str, PrivateKey]],
                now: int | None = None) -> bytes:
    """`sign()` for a message already parsed (and its header list already checked)."""
    sigs = signatures(message, headers, body, include, domain, keys, now)
    signed = b"".join(sigs) + message
    if type(message) is CRLFBytes and all(map(is_canonical_crlf, sigs)):
        return CRLFBytes(signed)  # no need to count its line ends again before sending
    return signed
