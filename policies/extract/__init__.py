"""Content extraction for the policy engine: raw message bytes in, an `Extraction` out.

`extract()` walks the MIME tree, attached messages, archives, TNEF and uuencoded files, reads the
text of every document it can (text, HTML, docx, xlsx, pptx, odt, ods, pdf) and records every
attachment and every doubt (`Defect`). It is pure (no I/O beyond the given bytes) and never raises
on bad input; `Limits` bounds the work and memory.
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
