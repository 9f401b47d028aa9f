"""The state of one extraction run: the result being built, the limits and what is used of them.

Every reader receives this object, adds documents, attachments and defects through it, and asks it
for budget before inflating anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from policies.extraction import Attachment, Defect, Document, Extraction

from .blobs import Blobs
from .limits import Limits
from .text import clean


@dataclass
class Run:
    limits: Limits
    result: Extraction = field(default_factory=Extraction)
    used_bytes: int = 0
    parts: int = 0
    budget_reported: bool = False
    seen_defects: set[tuple[str, str]] = field(default_factory=set)
    blobs: Blobs = field(default_factory=Blobs)
    rereads: int = 0

    def defect(self, part: str, kind: str, detail: str = "", ambiguous: bool = False) -> None:
        # One defect per part and kind: the first detail is enough evidence.
        key = (part, kind)
        if key in self.seen_defects:
            return
        self.seen_defects.add(key)
        item = Defect(part=part, kind=kind, detail=clean(detail)[:300], ambiguous=ambiguous)
        self.result.defects.append(item)

    def document(self, part: str, kind: str, lines: list[str]) -> None:
        self.result.documents.append(
            Document(part=part, kind=kind, lines=tuple(lines[: self.limits.max_document_lines]))
        )

    def attachment(self, item: Attachment) -> int:
        """Record an attachment; returns its index so readers can mark it encrypted/unreadable."""
        self.result.attachments.append(item)
        return len(self.result.attachments) - 1

    def mark(self, index: int, encrypted: bool = False, unreadable: bool = False) -> None:
        old = self.result.attachments[index]
        self.result.attachments[index] = replace(
            old, encrypted=old.encrypted or encrypted, unreadable=old.unreadable or unreadable
        )

    def remaining(self) -> int:
        """Bytes that may still be decoded or inflated for this message."""
        return max(0, self.limits.max_total_bytes - self.used_bytes)

    def charge(self, part: str, size: int) -> bool:
        """Account for `size` decoded bytes; False (and a defect, once) when over the budget."""
        if self.used_bytes + size > self.limits.max_total_bytes:
            if not self.budget_reported:
                self.budget_reported = True
                self.defect(part, "size_limit", f"more than {self.limits.max_total_bytes} bytes")
            return False
        self.used_bytes += size
        return True

    def count_part(self, part: str) -> bool:
        """Count one more examined part; False (and a defect) beyond `max_parts`."""
        self.parts += 1
        if self.parts > self.limits.max_parts:
            self.defect(part, "too_many_parts", f"more than {self.limits.max_parts} parts")
            return False
        return True
