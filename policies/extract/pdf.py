"""Text of PDF files with pypdf, line by line and page by page.

An encrypted PDF is first opened with the empty password (the usual "owner password only" case);
if that fails the file is reported encrypted and its text is not available.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

from pypdf import PdfReader

# pypdf logs warnings about every oddity of real-world PDFs; they are not ours to print.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class PdfEncrypted(Exception):
    """The PDF needs a password."""


@dataclass
class PdfContent:
    pages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # More pages than the limit: the rest was not read.
    truncated: bool = False
    # Files embedded in the PDF (attachments, portfolios): examined like any other file.
    embedded: list[tuple[str, bytes]] = field(default_factory=list)


def pdf_text(data: bytes, max_pages: int, max_embedded_bytes: int) -> PdfContent:
    """The extracted text of each page (at most `max_pages`), per-page problems, embedded files.

    Raises PdfEncrypted when a password is needed, and any pypdf error when the file itself
    cannot be opened.
    """
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception as exc:
            raise PdfEncrypted(str(exc)) from exc
        if not opened:
            raise PdfEncrypted("a password is required")
    out = PdfContent()
    for number, page in enumerate(reader.pages):
        if number >= max_pages:
            out.truncated = True
            break
        try:
            out.pages.append(page.extract_text() or "")
        except Exception as exc:
            out.problems.append(f"page {number + 1}: {type(exc).__name__}: {exc}")
    try:
        # pypdf caps every stream it inflates (ZLIB_MAX_OUTPUT_LENGTH); the total is capped here.
        budget = max_embedded_bytes
        for name, contents in reader.attachments.items():
            for content in contents:
                budget -= len(content)
                if budget < 0:
                    out.problems.append("embedded files beyond the size budget were not read")
                    return out
                out.embedded.append((str(name), bytes(content)))
    except Exception as exc:
        out.problems.append(f"embedded files: {type(exc).__name__}: {exc}")
    return out
