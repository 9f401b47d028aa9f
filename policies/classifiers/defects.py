"""Content the gateway could not read, or could read in two ways: facts from extraction defects.

- encrypted: an encrypted archive or document (its content cannot be examined);
- unreadable: an attachment whose content could not be extracted (corrupt, or stopped by a
  limit: bomb, nesting too deep, too large);
- ambiguous: a MIME structure two mail parsers could read differently.
The shipped policy quarantines mail to free webmail with any of these (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policies.evidence import Evidence
from policies.extraction import Extraction

# Limits that stopped extraction leave part of the content unexamined: unreadable.
_UNREADABLE_KINDS = {"unreadable", "archive_bomb", "nesting_too_deep", "too_many_parts",
                     "too_large", "truncated", "corrupt"}
_ENCRYPTED_KINDS = {"encrypted_archive", "encrypted", "encrypted_document"}


@dataclass
class ContentDefects:
    encrypted: list[Evidence] = field(default_factory=list)
    unreadable: list[Evidence] = field(default_factory=list)
    ambiguous: list[Evidence] = field(default_factory=list)


def find_defects(extraction: Extraction) -> ContentDefects:
    out = ContentDefects()
    for a in extraction.attachments:
        if a.encrypted:
            out.encrypted.append(Evidence.of(a.part, "encrypted", a.filename or a.sniffed_type))
        if a.unreadable:
            out.unreadable.append(Evidence.of(a.part, "unreadable", a.filename or a.sniffed_type))
    for d in extraction.defects:
        text = f"{d.kind}: {d.detail}" if d.detail else d.kind
        if d.kind in _ENCRYPTED_KINDS:
            out.encrypted.append(Evidence.of(d.part, "encrypted", text))
        elif d.kind in _UNREADABLE_KINDS or d.kind.endswith("_limit"):
            out.unreadable.append(Evidence.of(d.part, "unreadable", text))
        if d.ambiguous:
            out.ambiguous.append(Evidence.of(d.part, "ambiguous_mime", text))
    return out
