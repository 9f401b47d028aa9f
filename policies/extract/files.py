"""One file (attachment, archive member, uudecoded or TNEF-wrapped file): sniff it, record it,
and read its text or recurse into it according to what its content is.
"""

from __future__ import annotations

from email.message import Message

from policies.extraction import Attachment

from . import mime
from .archives import walk_7z, walk_zip
from .context import Run
from .html import html_lines
from .office import OFFICE_KINDS, Unreadable, office_embeddings, office_lines
from .pdf import PdfEncrypted, pdf_text
from .rtf import rtf_text
from .sniff import mismatch, sniff
from .text import decode_text, to_lines
from .tnef import walk_tnef
from .uuencode import find_uuencoded

# Kinds whose text is never read (they still are attachments for the policy).
_OPAQUE = frozenset({"rar", "doc", "xls", "ppt", "msg", "ole", "gzip"})


def text_document(run: Run, data: bytes, label: str, charset: str | None, html: bool,
                  depth: int) -> None:
    """A text or HTML document; uuencoded files inside plain text are examined as files."""
    text, fallback = decode_text(data, charset)
    if fallback and charset:
        run.defect(label, "charset_mismatch", f"declared {charset} does not decode")
    limit = run.limits.max_document_lines
    if html:
        run.document(label, "html", html_lines(text, limit))
        return
    files, text = find_uuencoded(text, min(run.limits.max_file_size, run.remaining()))
    run.document(label, "text", to_lines(text, limit))
    for item in files:
        member_label = f"{label} > uuencoded {item.name}"
        run.defect(member_label, "uuencode", "uuencoded file inside text")
        if not item.complete:
            run.defect(member_label, "uuencode_truncated", "no end line")
        if run.count_part(member_label) and run.charge(member_label, len(item.data)):
            examine(run, item.data, member_label, item.name, "", depth + 1)


def examine(run: Run, data: bytes, label: str, filename: str, declared_type: str, depth: int,
            charset: str | None = None) -> int:
    """Record one file as an Attachment and extract what its content allows; returns its index."""
    kind = sniff(data)
    problem = mismatch(kind, filename, declared_type)
    if problem:
        run.defect(label, "type_mismatch", problem)
    index = run.attachment(Attachment(part=label, filename=filename, declared_type=declared_type,
                                      sniffed_type=kind, size=len(data)))
    if depth > run.limits.max_depth:
        run.defect(label, "nesting_too_deep", f"deeper than {run.limits.max_depth} levels")
        return index
    try:
        _dispatch(run, kind, data, label, declared_type, depth, charset, index)
    except RecursionError:
        run.defect(label, "nesting_too_deep", "recursion limit")
        run.mark(index, unreadable=True)
    except Exception as exc:
        # A reader bug or a file no reader expected: the file is unreadable, the run goes on.
        run.defect(label, "unreadable", f"{kind}: {type(exc).__name__}: {exc}")
        run.mark(index, unreadable=True)
    return index


def _dispatch(run: Run, kind: str, data: bytes, label: str, declared_type: str, depth: int,
              charset: str | None, index: int) -> None:
    if kind in ("text", "html"):
        html = kind == "html" or declared_type == "text/html"
        text_document(run, data, label, charset, html, depth)
    elif kind in OFFICE_KINDS:
        try:
            paragraphs = office_lines(kind, data, run, label)
        except Unreadable as exc:
            run.defect(label, "unreadable", f"{kind}: {exc}")
            run.mark(index, unreadable=True)
            return
        run.document(label, kind, to_lines("\n".join(paragraphs), run.limits.max_document_lines))
        _embedded(run, office_embeddings(data, run, label), label, depth)
    elif kind == "pdf":
        _pdf(run, data, label, index, depth)
    elif kind in ("zip", "7z"):
        walker = walk_zip if kind == "zip" else walk_7z
        status = walker(run, data, label, depth, examine)
        if status.encrypted:
            run.mark(index, encrypted=True)
        if status.unreadable:
            run.mark(index, unreadable=True)
    elif kind == "eml":
        mime.walk_message(run, data, f"{label} > ", depth + 1)
    elif kind == "rtf":
        run.document(label, "rtf", to_lines(rtf_text(data), run.limits.max_document_lines))
    elif kind == "encrypted_office":
        run.defect(label, "encrypted_document", "password-protected Office document")
        run.mark(index, encrypted=True)
    elif kind == "tnef":
        if not walk_tnef(run, data, label, depth, examine):
            run.mark(index, unreadable=True)
    elif kind not in _OPAQUE and declared_type.startswith("text/"):
        text_document(run, data, label, charset, declared_type == "text/html", depth)


def _pdf(run: Run, data: bytes, label: str, index: int, depth: int) -> None:
    try:
        content = pdf_text(data, run.limits.max_pdf_pages,
                           min(run.limits.max_file_size, run.remaining()))
    except PdfEncrypted as exc:
        run.defect(label, "encrypted_document", f"pdf: {exc}")
        run.mark(index, encrypted=True)
        return
    except Exception as exc:
        run.defect(label, "unreadable", f"pdf: {type(exc).__name__}: {exc}")
        run.mark(index, unreadable=True)
        return
    for problem in content.problems:
        run.defect(label, "unreadable", f"pdf {problem}")
    if content.truncated:
        run.defect(label, "size_limit", f"only the first {run.limits.max_pdf_pages} pages read")
    run.document(label, "pdf", to_lines("\n".join(content.pages), run.limits.max_document_lines))
    _embedded(run, content.embedded, label, depth)


def _embedded(run: Run, embedded: list[tuple[str, bytes]], label: str, depth: int) -> None:
    """Files inside a PDF or an office document are examined as files of their own."""
    for name, data in embedded:
        member_label = f"{label} > {name}"
        if not run.count_part(member_label) or not run.charge(member_label, len(data)):
            break
        run.defect(member_label, "embedded_file", "file embedded in a document")
        examine(run, data, member_label, name, "", depth + 1)


def record_message(run: Run, part: Message, label: str, inner: Message) -> None:
    """An attached message (message/rfc822) is an attachment too, named by its file name if any."""
    try:
        filename = mime.decode_words(str(part.get_filename() or ""))
    except Exception:
        filename = ""
    try:
        size = len(inner.as_bytes())
    except Exception:
        size = 0
    run.attachment(Attachment(part=label, filename=filename,
                              declared_type=part.get_content_type(), sniffed_type="eml",
                              size=size))
