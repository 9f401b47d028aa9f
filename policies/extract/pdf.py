"""Text of PDF files with pypdf, line by line and page by page.

An encrypted PDF is first opened with the empty password (the usual "owner password only" case);
if that fails the file is reported encrypted and its text is not available.
"""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader

# pypdf logs warnings about every oddity of real-world PDFs; they are not ours to print.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class PdfEncrypted(Exception):
    """The PDF needs a password."""


def pdf_text(data: bytes, max_pages: int) -> tuple[list[str], list[str]]:
    """The extracted text of each page (at most `max_pages`) and a list of per-page problems.

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
    pages: list[str] = []
    problems: list[str] = []
    for number, page in enumerate(reader.pages):
        if number >= max_pages:
            problems.append(f"only the first {max_pages} pages were read")
            break
        try:
            pages.append(page.extract_text() or "")
        except Exception as exc:
            problems.append(f"page {number + 1}: {type(exc).__name__}: {exc}")
    return pages, problems
