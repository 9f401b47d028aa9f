"""Document-type attachments: judged by the (decoded) file name, in any letter case.

`x.jpg.pdf` is a document-type attachment, `anh.jpg` is not; what the content really is does
not matter here (content decides only where text is looked for).
"""

from __future__ import annotations

from collections.abc import Iterable

from policies.evidence import Evidence
from policies.extraction import Attachment

DOCUMENT_EXTENSIONS = (".doc", ".docx", ".pdf", ".xls", ".xlsx", ".odt", ".ods", ".zip", ".rar",
                       ".7z")


def is_document_name(filename: str, extensions: Iterable[str] = DOCUMENT_EXTENSIONS) -> bool:
    # Trailing dots and spaces are dropped by Windows when the file is saved: `x.pdf.` is a PDF.
    name = filename.strip().rstrip(". ").lower()
    return bool(name) and name.endswith(tuple(e.lower() for e in extensions))


def find_document_attachments(
    attachments: Iterable[Attachment], extensions: Iterable[str] = DOCUMENT_EXTENSIONS
) -> list[Evidence]:
    exts = tuple(extensions)
    return [Evidence.of(a.part, "document_attachment", a.filename)
            for a in attachments if is_document_name(a.filename, exts)]
