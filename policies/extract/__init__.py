"""Content extraction for the policy engine: raw message bytes in, an `Extraction` out.

`extract()` walks the MIME tree, attached messages, archives, TNEF and uuencoded files, reads the
text of every document it can (text, HTML, docx, xlsx, pptx, odt, ods, pdf) and records every
attachment and every doubt (`Defect`). It is pure (no I/O beyond the given bytes) and never raises
on bad input; `Limits` bounds the work and memory.

Part labels: "body", "body (html)", "body (preamble)", "attachment QD-2445.pdf",
"attachment ho-so.zip > to-trinh.docx", "attached message > attachment x.pdf",
"body > uuencoded x.docx", "attachment winmail.dat > body (rtf)", "other reading > ..." (the
same bytes read under a second Content-Type). Defects of MIME structure name the part by its
position ("message", "part 1.2").

Defect codes (* = ambiguous: two mail parsers can read the message differently; the other
reading is examined too):
  structure   duplicate_content_type*, duplicate_header* (Content-Transfer-Encoding or
              Content-Disposition twice), missing_boundary*, other_boundary*,
              boundary_collision*, multipart_invariant*, malformed_header*,
              content_in_preamble*, content_in_epilogue*, multipart_with_transfer_encoding*,
              message_with_transfer_encoding*, unknown_transfer_encoding*,
              duplicate_parameter* (boundary, filename... given twice), partial_message*,
              filename_conflict (* when the two names have different extensions),
              missing_close_boundary, transfer_encoding_case, bare_lf, parser_defect
  encoding    base64_junk*, base64_length*, base64_padding, charset_mismatch
  hiding      uuencode, uuencode_truncated, tnef, embedded_file, type_mismatch,
              zip_hidden_member*, zip_concatenated*
  encryption  encrypted_archive, encrypted_document
  limits      archive_bomb, size_limit, too_many_parts, nesting_too_deep
  broken      unreadable (the detail says what could not be read)
"""

from __future__ import annotations

from policies.extraction import Extraction

from .context import Run
from .limits import Limits
from .mime import walk_message

__all__ = ["Limits", "extract"]


def extract(raw: bytes, limits: Limits | None = None) -> Extraction:
    """Everything the classifiers need to know about the content of one message."""
    run = Run(limits=limits or Limits())
    try:
        walk_message(run, bytes(raw), "", 0, top=True)
    except Exception as exc:
        # Never reached in normal operation (every walker catches its own errors); if it is,
        # what was found so far is kept and the failure itself becomes a fact.
        run.defect("message", "unreadable", f"{type(exc).__name__}: {exc}")
    return run.result
