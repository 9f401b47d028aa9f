"""The MIME walk: every part of the message and of attached messages, with the parser's doubts.

The stdlib parser (`email.policy.default`) gives one reading of the message. Where another mail
client could read the same bytes differently (duplicate Content-Type, missing or wrong boundary,
content in the preamble or epilogue, a transfer encoding on a multipart, junk in base64), the walk
records a Defect with `ambiguous=True` and also examines the other plausible reading, so content
hidden for one parser is still found.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections import Counter
from email import errors
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32, default
from email.utils import collapse_rfc2231_value
from typing import cast

from . import files
from .context import Run
from .sniff import extension
from .text import clean, decode_text

# compat32: the modern policy parses every header into objects and costs several times more;
# the few header values we need are decoded below.
_PARSER = BytesParser(policy=compat32)
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_EW_GAP = re.compile(r"(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)\s+(?==\?[^?\s]+\?[bBqQ]\?)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_KNOWN_CTE = _IDENTITY | {"base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue", "uue"}
_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200}?)(--)?[ \t\r]*$", re.MULTILINE)
_HEADER_BLOCK = re.compile(r"^Content-Type:", re.IGNORECASE | re.MULTILINE)
_BINARY_MAGIC = (b"%PDF-", b"PK\x03\x04", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07",
                 b"\xd0\xcf\x11\xe0", b"\x78\x9f\x3e\x22")

# Parser defects and what they mean for us: (code, ambiguous).
_DEFECTS: dict[type, tuple[str, bool]] = {
    errors.StartBoundaryNotFoundDefect: ("missing_boundary", True),
    errors.NoBoundaryInMultipartDefect: ("missing_boundary", True),
    errors.CloseBoundaryNotFoundDefect: ("missing_close_boundary", False),
    errors.MultipartInvariantViolationDefect: ("multipart_invariant", True),
    errors.FirstHeaderLineIsContinuationDefect: ("malformed_header", True),
    errors.MissingHeaderBodySeparatorDefect: ("malformed_header", True),
    errors.MisplacedEnvelopeHeaderDefect: ("malformed_header", True),
    errors.InvalidBase64CharactersDefect: ("base64_junk", True),
    errors.InvalidBase64PaddingDefect: ("base64_padding", False),
    errors.InvalidBase64LengthDefect: ("base64_length", True),
    errors.InvalidMultipartContentTransferEncodingDefect: (
        "multipart_with_transfer_encoding", True
    ),
}


def _str(value: str) -> str:
    """Undo the surrogate escapes of raw 8-bit header bytes (UTF-8 or Vietnamese code pages)."""
    try:
        value.encode("utf-8")
        return clean(value)
    except UnicodeEncodeError:
        return clean(decode_text(value.encode("utf-8", "surrogateescape"), "utf-8")[0])


def _encoded_word(match: re.Match[str]) -> str:
    charset, encoding, text = match.group(1).split("*")[0], match.group(2).lower(), match.group(3)
    try:
        if encoding == "b":
            data = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            data = quopri.decodestring(text.replace("_", " ").encode("ascii"), header=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return match.group(0)
    return decode_text(data, charset)[0]


def decode_words(value: str) -> str:
    """Unfold a header value and decode its RFC 2047 encoded words; broken words stay as sent.

    Done by hand rather than with email.header.decode_header, which garbles values that mix
    raw UTF-8 and encoded words.
    """
    value = _str(_FOLD.sub("", str(value)))
    if "=?" in value:
        # White space between two encoded words is not part of the text (RFC 2047 section 6.2).
        value = _EW_GAP.sub(r"\1", value)
        value = _ENCODED_WORD.sub(_encoded_word, value)
    return clean(value).strip()


def decoded_headers(msg: Message) -> list[tuple[str, str]]:
    """The header fields in order, decoded (RFC 2047) to str."""
    # raw_items(): compat32's items() turns raw 8-bit (UTF-8) header bytes into U+FFFD.
    return [(_str(name).strip(), decode_words(value)) for name, value in msg.raw_items()]


def parse_message(raw: bytes) -> Message:
    """The stdlib parser's reading of `raw` (compat32).

    For a message that is neither multipart nor message/*, the parser makes the whole body
    one payload: then only the header block goes through it, and the body becomes the payload
    it would have made. Its line-by-line loop over a 10 KB body was about 4 % of the gateway's
    CPU per message. Whenever the header block alone reads differently (lines left over after
    its end: a bare CR or LF, or a line that is no header field, ended it earlier), the whole
    message is parsed as before. tests/policies/test_parse_message.py compares both readings.
    """
    end = raw.find(b"\r\n\r\n")
    if end >= 0:
        msg = _PARSER.parsebytes(raw[:end + 4], headersonly=True)
        if msg.get_payload() == "" and msg.get_content_maintype() not in ("multipart", "message"):
            # What BytesParser decodes the whole message with, byte by byte.
            msg.set_payload(raw[end + 4:].decode("ascii", "surrogateescape"))
            return msg
    return _PARSER.parsebytes(raw)


def walk_message(run: Run, raw: bytes, prefix: str, depth: int, top: bool = False) -> None:
    """Parse `raw` as a message and walk it; `prefix` starts every part label."""
    try:
        msg = parse_message(run.blobs.collapse(raw))
    except RecursionError:
        run.defect(prefix + "message", "nesting_too_deep", "parser recursion limit")
        return
    except Exception as exc:
        run.defect(prefix + "message", "unreadable", f"{type(exc).__name__}: {exc}")
        return
    if top:
        run.result.headers = decoded_headers(msg)
        if b"\n" in raw[:65536] and b"\r\n" not in raw[:65536]:
            run.defect("message", "bare_lf", "lines end in LF only")
    _walk(run, msg, prefix, depth, "")


def _reread(run: Run, raw: bytes, prefix: str, depth: int, where: str) -> None:
    """Parse bytes again for another reading, a limited number of times per message: nested
    ambiguities would otherwise multiply the work."""
    run.rereads += 1
    if run.rereads > run.limits.max_rereads:
        run.defect(where, "too_many_parts", f"more than {run.limits.max_rereads} re-readings")
        return
    walk_message(run, raw, prefix, depth)


def _where(prefix: str, path: str) -> str:
    return f"{prefix}part {path}" if path else f"{prefix}message"


def _record_defects(run: Run, part: Message, where: str) -> None:
    for defect in part.defects:
        code, ambiguous = _DEFECTS.get(type(defect), ("parser_defect", False))
        run.defect(where, code, f"{type(defect).__name__}: {defect}", ambiguous)


def _walk(run: Run, part: Message, prefix: str, depth: int, path: str) -> None:
    where = _where(prefix, path)
    if depth > run.limits.max_depth:
        run.defect(where, "nesting_too_deep", f"deeper than {run.limits.max_depth} levels")
        return
    if not run.count_part(where):
        return
    try:
        _walk_part(run, part, prefix, depth, path, where)
    except RecursionError:
        run.defect(where, "nesting_too_deep", "recursion limit")
    except Exception as exc:
        # Whatever breaks in one part must not hide the other parts.
        run.defect(where, "unreadable", f"{type(exc).__name__}: {exc}")
    _record_defects(run, part, where)


def _header_checks(run: Run, part: Message, where: str) -> str:
    """Flag duplicate and odd structural headers; returns the transfer encoding (lower case)."""
    counts = Counter(name.lower() for name in part)
    for name in ("content-type", "content-transfer-encoding", "content-disposition"):
        if counts[name] > 1:
            code = "duplicate_content_type" if name == "content-type" else "duplicate_header"
            run.defect(where, code, f"{counts[name]} {name} fields", ambiguous=True)
    raw_cte = str(part.get("content-transfer-encoding", "") or "").strip()
    cte = raw_cte.lower()
    if cte not in _KNOWN_CTE:
        run.defect(where, "unknown_transfer_encoding", raw_cte, ambiguous=True)
    elif raw_cte != cte:
        # Legal (the value is case-insensitive) but a known trick against naive scanners.
        run.defect(where, "transfer_encoding_case", raw_cte)
    return cte


def _walk_part(run: Run, part: Message, prefix: str, depth: int, path: str, where: str) -> None:
    cte = _header_checks(run, part, where)
    ctype = part.get_content_type()
    _alternate_content_types(run, part, prefix, depth, path, where)
    if ctype in ("message/partial", "message/external-body"):
        # Content sent in pieces or kept elsewhere cannot be examined here; clients differ.
        run.defect(where, "partial_message", ctype, ambiguous=True)
    if not part.is_multipart():
        # A str body. Not fetched here: get_payload() of an 8-bit body re-encodes and
        # decodes all of it, and _leaf() asks for it only when it needs it.
        if part.get_content_maintype() == "multipart":
            _unsplit_multipart(run, part, str(part.get_payload()), prefix, depth, path, cte,
                               where)
            return
        _leaf(run, part, prefix, depth, path, cte, where)
        return
    payload = cast(list, part.get_payload())  # is_multipart(): the list of parts
    if ctype.startswith("message/"):
        _attached_message(run, part, payload, prefix, depth, path, cte, where)
        return
    if cte not in _IDENTITY:
        run.defect(where, "multipart_with_transfer_encoding", cte, ambiguous=True)
    _outside_text(run, part.preamble, f"{prefix}body (preamble)", "content_in_preamble",
                  depth, where)
    _outside_text(run, part.epilogue, f"{prefix}body (epilogue)", "content_in_epilogue",
                  depth, where)
    _boundary_collisions(run, part, payload, where)
    for number, sub in enumerate(payload, 1):
        _walk(run, sub, prefix, depth + 1, f"{path}.{number}" if path else str(number))


def _boundary_collisions(run: Run, part: Message, payload: list, where: str) -> None:
    """A nested boundary equal to, or a prefix of, its parent's: parsers split such bodies
    differently (RFC 2046 forbids it; some match boundaries as prefixes)."""
    outer = str(part.get_param("boundary") or "")
    if not outer:
        return
    for sub in payload:
        if not isinstance(sub, Message) or sub.get_content_maintype() != "multipart":
            continue
        inner = str(sub.get_param("boundary") or "")
        if inner and (inner.startswith(outer) or outer.startswith(inner)):
            run.defect(where, "boundary_collision", f"{outer!r} and {inner!r}", ambiguous=True)


def _attached_message(run: Run, part: Message, payload: list, prefix: str, depth: int, path: str,
                      cte: str, where: str) -> None:
    label = f"{prefix}attached message"
    inner = payload[0] if payload else None
    if not isinstance(inner, Message):
        return
    if cte not in _IDENTITY:
        # message/rfc822 must not be encoded, but some clients do it: decode and read it again.
        run.defect(where, "message_with_transfer_encoding", cte, ambiguous=True)
        body = _undo_transfer_encoding(run.blobs.restore_bytes(inner.as_bytes()), cte)
        if body is not None:
            _reread(run, body, label + " > ", depth + 1, where)
            return
    files.record_message(run, part, label, inner)
    _walk(run, inner, label + " > ", depth + 1, "")


def _undo_transfer_encoding(data: bytes, cte: str) -> bytes | None:
    try:
        if cte == "base64":
            return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", data) + b"==", validate=False)
        if cte == "quoted-printable":
            return quopri.decodestring(data)
    except (binascii.Error, ValueError):
        return None
    return None


def _outside_text(run: Run, text: str | None, label: str, code: str, depth: int,
                  where: str) -> None:
    """Preamble and epilogue: shown by some clients, ignored by others."""
    if not text or not text.strip():
        return
    text = run.blobs.restore(text)
    stripped = text.strip()
    # The usual "This is a multi-part message in MIME format." notice is not a hiding place.
    trivial = len(stripped) < 200 and "\n" not in stripped and "begin " not in stripped
    if not trivial:
        run.defect(where, code, f"{len(stripped)} characters", ambiguous=True)
    raw = text.encode("utf-8", "surrogateescape")
    files.text_document(run, raw, label, None, False, depth)
    match = _HEADER_BLOCK.search(text)
    if match:
        # A whole MIME part hidden where the parser does not look: read it as a message.
        _reread(run, raw[len(text[: match.start()].encode("utf-8", "surrogateescape")):],
                label + " > ", depth + 1, where)


def _unsplit_multipart(run: Run, part: Message, body: str, prefix: str, depth: int, path: str,
                       cte: str, where: str) -> None:
    """A multipart the parser could not split (no boundary, wrong boundary, encoded body)."""
    body = run.blobs.restore(body)
    raw = body.encode("utf-8", "surrogateescape")
    ctype_field = str(part.get("content-type", "multipart/mixed"))
    if cte not in _IDENTITY:
        run.defect(where, "multipart_with_transfer_encoding", cte, ambiguous=True)
        decoded = _undo_transfer_encoding(raw, cte)
        if decoded is not None:
            raw = decoded
            body = raw.decode("utf-8", "surrogateescape")
            rebuilt = f"Content-Type: {ctype_field}\r\n\r\n".encode("utf-8", "surrogateescape")
            before = len(run.result.documents) + len(run.result.attachments)
            _reread(run, rebuilt + raw, prefix, depth + 1, where)
            if len(run.result.documents) + len(run.result.attachments) > before:
                return
    run.defect(where, "missing_boundary", "multipart body not split by its boundary",
               ambiguous=True)
    candidates = Counter(m.group(1) for m in _BOUNDARY_LINE.finditer(body))
    declared = part.get_param("boundary")
    for boundary, _ in candidates.most_common(3):
        if boundary == declared:
            continue
        # Read it with the boundary its lines actually use, as a lenient client would.
        run.defect(where, "other_boundary", f"body uses boundary {boundary!r}", ambiguous=True)
        header = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        _reread(run, header.encode("utf-8", "surrogateescape") + raw, prefix, depth + 1, where)
        return
    files.text_document(run, raw, f"{prefix}body", part.get_content_charset(), False, depth)


def _alternate_content_types(run: Run, part: Message, prefix: str, depth: int, path: str,
                             where: str) -> None:
    """With several Content-Type fields (or boundary parameters), also read the part as each
    of the others says."""
    fields = [str(f) for f in part.get_all("content-type") or []]
    boundaries = _repeated_parameters(run, part, "content-type", where).get("boundary", [])
    # The stdlib takes the first boundary parameter; other parsers take the last.
    fields += [f'{part.get_content_type()}; boundary="{b}"' for b in boundaries[1:]]
    if len(fields) < 2:
        return
    first = fields[0].split(";")[0].strip().lower()
    body = _raw_body(part)
    if body is None:
        return
    body = run.blobs.restore_bytes(body)
    if not body:
        return
    for other in fields[1:]:
        if other.split(";")[0].strip().lower() == first and "boundary" not in other:
            continue
        headers = [(k, v) for k, v in part.raw_items() if k.lower() != "content-type"]
        text = "".join(f"{k}: {v}\r\n" for k, v in headers) + f"Content-Type: {other}\r\n\r\n"
        _reread(run, text.encode("utf-8", "surrogateescape") + body,
                f"{prefix}other reading > ", depth + 1, where)


def _repeated_parameters(run: Run, part: Message, header: str,
                         where: str) -> dict[str, list[str]]:
    """Parameters given more than once in a field (`name`: every value), recorded as ambiguous."""
    values: dict[str, list[str]] = {}
    try:
        params = part.get_params(header=header) or []
    except Exception:
        return {}
    for key, value in params[1:]:
        values.setdefault(key.lower().split("*")[0], []).append(collapse_rfc2231_value(value))
    repeated = {key: found for key, found in values.items() if len(found) > 1}
    for key, found in repeated.items():
        run.defect(where, "duplicate_parameter", f"{header} {key}: {' / '.join(found)}",
                   ambiguous=True)
    return repeated


def _name_checks(run: Run, part: Message, where: str) -> None:
    """Two file names for one part (repeated, or Content-Type name against Content-Disposition
    filename): clients show one or the other, and the extension decides the attachment type."""
    _repeated_parameters(run, part, "content-disposition", where)
    name = _param(part, "name", "content-type")
    filename = _param(part, "filename", "content-disposition")
    if name and filename and name != filename:
        ambiguous = extension(name) != extension(filename)
        run.defect(where, "filename_conflict", f"{name} / {filename}", ambiguous=ambiguous)


def _param(part: Message, key: str, header: str) -> str:
    """One parameter, RFC 2231 and RFC 2047 decoded."""
    try:
        value = part.get_param(key, header=header)
        return decode_words(collapse_rfc2231_value(value)) if value else ""
    except Exception:
        return ""


def _raw_body(part: Message) -> bytes | None:
    """The body of a part as transmitted (for re-reading it under another Content-Type)."""
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    try:
        whole = part.as_bytes(policy=compat32.clone(max_line_length=0))
    except Exception:
        return None
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in whole:
            return whole.split(separator, 1)[1]
    return None


def _leaf(run: Run, part: Message, prefix: str, depth: int, path: str, cte: str,
          where: str) -> None:
    # The body as parsed, only when it is looked at (for an 8-bit body get_payload() encodes
    # and decodes all of it).
    raw = part.get_payload() if run.blobs.runs or cte == "base64" else None
    if isinstance(raw, str) and run.blobs.runs:
        restored = run.blobs.restore(raw)
        if restored is not raw:
            raw = restored
            part.set_payload(raw)
    if cte == "base64" and isinstance(raw, str) and _has_base64_junk(raw):
        run.defect(where, "base64_junk", "characters outside the base64 alphabet",
                   ambiguous=True)
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        run.defect(where, "unreadable", f"transfer encoding: {exc}")
        data = None
    if not isinstance(data, bytes):
        data = b""
    if len(data) > run.limits.max_file_size:
        run.defect(where, "size_limit", f"{len(data)} bytes in one part")
        data = data[: run.limits.max_file_size]
    if not run.charge(where, len(data)):
        return
    filename = _filename(run, part, where)
    _name_checks(run, part, where)
    ctype = part.get_content_type()
    disposition = part.get_content_disposition()
    if ctype in ("text/plain", "text/html") and not filename and disposition != "attachment":
        label = f"{prefix}body" if ctype == "text/plain" else f"{prefix}body (html)"
        if data.startswith(_BINARY_MAGIC):
            # A file disguised as the text body: examine it as the file it is.
            files.examine(run, data, label, "", ctype, depth)
            return
        files.text_document(run, data, label, part.get_content_charset(), ctype == "text/html",
                            depth)
        return
    name = filename or f"({ctype})"
    files.examine(run, data, f"{prefix}attachment {name}", filename, ctype, depth,
                  charset=part.get_content_charset())


_BASE64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n"


def _has_base64_junk(text: str) -> bool:
    # bytes.translate runs in C: a regex over a multi-megabyte body costs far more.
    return bool(text.encode("latin-1", "replace").translate(None, _BASE64_CHARS))


def _filename(run: Run, part: Message, where: str) -> str:
    try:
        name = part.get_filename() or ""
    except Exception as exc:
        run.defect(where, "malformed_header", f"file name: {exc}", ambiguous=True)
        return ""
    # compat32 decodes RFC 2231 parameters; encoded words inside a quoted name are decoded here.
    name = decode_words(str(name))
    if "\ufffd" in name:
        # compat32 loses raw 8-bit names; read the raw field with the modern header parser.
        for field, raw in part.raw_items():
            if field.lower() in ("content-disposition", "content-type"):
                params = _modern_params(field, raw)
                better = params.get("filename") or params.get("name")
                if better:
                    return decode_words(str(better))
    return name


def _modern_params(field: str, raw: str) -> dict[str, str]:
    try:
        return dict(default.header_factory(field, _str(raw)).params)
    except Exception:
        # A field even the modern parser cannot read has no better name to offer.
        return {}

