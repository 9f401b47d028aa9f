"""Limits that bound the work and memory of content extraction.

Every container reader (MIME walker, zip/7z readers, office readers) checks these before and while
inflating, so a hostile message becomes a `Defect`, never an out-of-memory or a long stall.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    # Nesting of MIME multiparts, attached messages and archives together.
    max_depth: int = 24
    # MIME parts plus archive members examined in one message.
    max_parts: int = 2000
    # Members of one archive (zip or 7z) that are looked at.
    max_archive_members: int = 1000
    # One decoded part or inflated archive member (also one XML member of an office file).
    max_file_size: int = 64 * MIB
    # One XML member of an office file: parsed into a tree, so it costs several times its size.
    max_xml_size: int = 32 * MIB
    # Everything decoded or inflated for one message together.
    max_total_bytes: int = 256 * MIB
    # Inflated size / compressed size of an archive member ...
    max_ratio: int = 150
    # ... checked only once the member has inflated beyond this many bytes (small files compress
    # well without being bombs).
    ratio_floor: int = 1 * MIB
    # Second readings of MIME bodies (other boundary, other Content-Type, hidden parts).
    max_rereads: int = 32
    # Pages of one PDF whose text is extracted (pypdf needs 5 to 30 ms a page).
    max_pdf_pages: int = 300
    # Lines kept per document.
    max_document_lines: int = 200_000
