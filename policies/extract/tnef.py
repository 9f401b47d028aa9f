"""TNEF (winmail.dat, application/ms-tnef): the attachments and bodies Outlook wraps inside it.

Uses `tnefparse`; each attachment goes back to the file examiner, the plain and HTML bodies become
documents of their own.
"""

from __future__ import annotations

import logging

import tnefparse

from .archives import Examine
from .context import Run
from .html import html_lines
from .rtf import rtf_text
from .text import decode_text, to_lines

logging.getLogger("tnefparse").setLevel(logging.CRITICAL)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return b""


def _rtf_body(run: Run, blob: tnefparse.TNEF, label: str) -> None:
    """Outlook often sends the body only as compressed RTF (decompressed by `compressed_rtf`)."""
    try:
        rtf = blob.rtfbody
    except Exception as exc:
        run.defect(label, "unreadable", f"tnef rtf body: {type(exc).__name__}: {exc}")
        return
    if not rtf:
        return
    rtf = _as_bytes(rtf)
    if not rtf.lstrip().startswith(b"{\\rtf"):
        run.defect(label, "unreadable", "tnef rtf body could not be decompressed")
        return
    lines = to_lines(rtf_text(rtf), run.limits.max_document_lines)
    run.document(f"{label} > body (rtf)", "rtf", lines)


def walk_tnef(run: Run, data: bytes, label: str, depth: int, examine: Examine) -> bool:
    """Examine the content of a TNEF blob; False when it cannot be parsed."""
    try:
        blob = tnefparse.TNEF(data, do_checksum=False)
    except Exception as exc:
        run.defect(label, "unreadable", f"tnef: {type(exc).__name__}: {exc}")
        return False
    run.defect(label, "tnef", f"{len(blob.attachments)} attachments wrapped in TNEF")
    limit = run.limits.max_document_lines
    body = _as_bytes(getattr(blob, "body", None))
    if body.strip():
        text, _ = decode_text(body, None)
        run.document(f"{label} > body", "text", to_lines(text, limit))
    html = _as_bytes(getattr(blob, "htmlbody", None))
    if html.strip():
        text, _ = decode_text(html, None)
        run.document(f"{label} > body (html)", "html", html_lines(text, limit))
    _rtf_body(run, blob, label)
    for attachment in blob.attachments:
        try:
            name = attachment.long_filename() or ""
        except Exception:
            name = ""
        if isinstance(name, bytes):
            name = decode_text(name, None)[0]
        name = str(name or getattr(attachment, "name", "") or "").strip("\x00")
        content = _as_bytes(getattr(attachment, "data", b""))
        member_label = f"{label} > {name or 'attachment'}"
        if not run.count_part(member_label) or not run.charge(member_label, len(content)):
            break
        examine(run, content, member_label, name, "", depth + 1)
    return True
