"""What content extraction hands to the classifiers: documents (as lines), attachments, defects.

This module is the contract between `policies.extract` (bytes -> Extraction) and the classifiers
(Extraction -> facts). It holds data only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One examined document: a text/plain or text/html part, or one file's text, as lines.

    `part` names where it sits, for evidence ("body", "attachment QD-2445.pdf",
    "attachment ho-so.zip > to-trinh.docx", "attached message > attachment x.pdf").
    `kind` is the content type as sniffed: "text", "html", "docx", "xlsx", "pdf", "odt", "ods", ...
    """

    part: str
    kind: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Attachment:
    """A MIME part or archive member with a file name, or any non-text leaf part."""

    part: str
    filename: str          # decoded (RFC 2047 / RFC 2231); "" when the part has none
    declared_type: str     # the Content-Type as declared, lower case
    sniffed_type: str      # by content: "pdf", "docx", "zip", "7z", "png", "unknown", ...
    size: int
    encrypted: bool = False
    unreadable: bool = False


@dataclass(frozen=True)
class Defect:
    """Something a parser had to guess about, or a limit that stopped extraction.

    `kind` is a stable code, e.g. "duplicate_content_type", "missing_boundary",
    "content_in_preamble", "multipart_with_transfer_encoding", "base64_junk", "nesting_too_deep",
    "archive_bomb", "encrypted_archive", "type_mismatch", "unreadable", "bare_lf", "tnef".
    `ambiguous` is True when two mail parsers could read the message differently.
    """

    part: str
    kind: str
    detail: str = ""
    ambiguous: bool = False


@dataclass
class Extraction:
    documents: list[Document] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[Defect] = field(default_factory=list)
    # The top-level header fields, in order, decoded to str (only these count for auto-forward).
    headers: list[tuple[str, str]] = field(default_factory=list)
