"""File type by content: magic bytes plus container structure for OOXML and OpenDocument.

The declared Content-Type and the file name are never trusted here; `mismatch()` compares them
with what the content is, so a renamed file becomes a "type_mismatch" defect.
"""

from __future__ import annotations

import io
import re
import zipfile

import puremagic

_HEADER_LINE = re.compile(rb"^([A-Za-z0-9][A-Za-z0-9_-]{0,60}):[ \t]*\S?")
_MESSAGE_HEADERS = frozenset(
    b"from to cc subject date message-id mime-version received return-path content-type "
    b"reply-to sender x-mailer delivered-to".split()
)
_ODF_TYPES = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
}

_IMAGES = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)

# What each kind may legitimately be called, by extension and by declared MIME type.
_EXTENSIONS = {
    "pdf": {"pdf"},
    "docx": {"docx", "docm", "dotx"},
    "xlsx": {"xlsx", "xlsm", "xltx"},
    "pptx": {"pptx", "ppsx"},
    "odt": {"odt", "ott"},
    "ods": {"ods", "ots"},
    "odp": {"odp"},
    "zip": {"zip"},
    "7z": {"7z"},
    "rar": {"rar"},
    "doc": {"doc", "dot"},
    "xls": {"xls", "xlt"},
    "ppt": {"ppt"},
    "rtf": {"rtf"},
    "eml": {"eml"},
    "jpg": {"jpg", "jpeg"},
    "png": {"png"},
    "gif": {"gif"},
}
_DECLARED = {
    "application/pdf": {"pdf"},
    "application/zip": {"zip"},
    "application/x-zip-compressed": {"zip"},
    "application/x-7z-compressed": {"7z"},
    "application/msword": {"doc", "rtf", "docx"},
    "application/vnd.ms-excel": {"xls", "xlsx"},
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {
        "docx", "encrypted_office"},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "xlsx", "encrypted_office"},
    "application/vnd.oasis.opendocument.text": {"odt"},
    "application/vnd.oasis.opendocument.spreadsheet": {"ods"},
    "application/ms-tnef": {"tnef"},
    "application/vnd.ms-tnef": {"tnef"},
    "message/rfc822": {"eml"},
    "image/jpeg": {"jpg"},
    "image/png": {"png"},
    "image/gif": {"gif"},
}
# Kinds that are never text, whatever a text/* declaration says.
_BINARY_KINDS = (frozenset(_EXTENSIONS) - {"eml", "rtf"}) | {"encrypted_office", "ole", "msg"}
# Extensions that only count when the content is one of these kinds ("x.doc" may be RTF).
_LENIENT = {
    "doc": {"doc", "rtf", "docx", "html"},
    "xls": {"xls", "xlsx", "html"},
    "docx": {"docx", "encrypted_office"},
    "xlsx": {"xlsx", "encrypted_office"},
    "pptx": {"pptx", "encrypted_office"},
}


_MEMBER_MARKERS = (
    (b"mimetypeapplication/vnd.oasis.opendocument.text", "odt"),
    (b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet", "ods"),
    (b"word/document.xml", "docx"),
    (b"xl/workbook.xml", "xlsx"),
    (b"ppt/presentation.xml", "pptx"),
)


def _zip_kind(data: bytes) -> str:
    """Tell OOXML and OpenDocument files from plain zip archives by their members."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                info = zf.getinfo("mimetype")
                if info.file_size <= 200:
                    kind = _ODF_TYPES.get(zf.read(info).strip())
                    if kind:
                        return kind
            if "[Content_Types].xml" in names:
                if "word/document.xml" in names:
                    return "docx"
                if "xl/workbook.xml" in names:
                    return "xlsx"
                if "ppt/presentation.xml" in names:
                    return "pptx"
    except Exception:
        # A damaged container is still known by the member names in its local headers.
        for marker, kind in _MEMBER_MARKERS:
            if marker in data:
                return kind
    return "zip"


def _ole_kind(data: bytes) -> str:
    head = data[: 512 * 1024]
    if "EncryptedPackage".encode("utf-16-le") in head:
        # A password-protected docx/xlsx/pptx: Office wraps the encrypted package in OLE.
        return "encrypted_office"
    if "WordDocument".encode("utf-16-le") in head:
        return "doc"
    if "Workbook".encode("utf-16-le") in head or "Book".encode("utf-16-le") in head:
        return "xls"
    if "PowerPoint".encode("utf-16-le") in head:
        return "ppt"
    if "__substg1.0_".encode("utf-16-le") in head:
        return "msg"
    return "ole"


def looks_like_message(data: bytes) -> bool:
    """True when the bytes start with an RFC 5322 header naming at least two message fields."""
    known = 0
    for count, line in enumerate(data[:8192].splitlines()):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            continue
        match = _HEADER_LINE.match(line)
        if not match:
            return False
        if match.group(1).lower() in _MESSAGE_HEADERS:
            known += 1
        if known >= 2:
            return True
        if count > 60:
            break
    return False


def _looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start >= len(sample) - 4:
            return True
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls * 100 < len(sample)


def sniff(data: bytes) -> str:
    """The kind of file the bytes are: "pdf", "docx", "zip", "eml", "text", "png", "unknown"..."""
    head = data[:16]
    if not data:
        return "empty"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_kind(data)
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _ole_kind(data)
    if head.startswith(b"\x78\x9f\x3e\x22"):
        return "tnef"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    for magic, kind in _IMAGES:
        if head.startswith(magic):
            return kind
    stripped = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "html"
    if looks_like_message(data):
        return "eml"
    try:
        ext = puremagic.from_string(data[:65536])
    except Exception:
        ext = ""
    if ext:
        ext = ext.lstrip(".").lower()
        return {"jpeg": "jpg", "tif": "tiff"}.get(ext, ext)
    if _looks_like_text(data):
        return "text"
    return "unknown"


def extension(filename: str) -> str:
    """The lower-case extension of a file name, without the dot ("" when none)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower().strip() if "." in base else ""


def mismatch(sniffed: str, filename: str, declared_type: str) -> str:
    """Why the content contradicts the name or the declared type, or "" when it does not."""
    if sniffed in ("empty", "unknown", "text"):
        return ""
    ext = extension(filename)
    for kind, names in _EXTENSIONS.items():
        if ext in names and sniffed not in _LENIENT.get(ext, {kind}):
            return f"file name .{ext} but content is {sniffed}"
    allowed = _DECLARED.get(declared_type)
    if allowed is not None and sniffed not in allowed:
        return f"declared {declared_type} but content is {sniffed}"
    if declared_type in ("text/plain", "text/html") and sniffed in _BINARY_KINDS:
        return f"declared {declared_type} but content is {sniffed}"
    return ""
