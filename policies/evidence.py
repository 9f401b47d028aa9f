"""Evidence: where a fact was found (part), which signal, and the text that showed it.

Every finding a classifier makes carries one or more of these; the verdict lists those of the
facts the deciding rule used, and the violation record is built from them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Evidence text is for people reading a report: a long line is cut, never the whole document.
MAX_TEXT = 200


@dataclass(frozen=True)
class Evidence:
    part: str
    signal: str
    text: str

    @classmethod
    def of(cls, part: str, signal: str, text: str) -> Evidence:
        text = text.strip()
        if len(text) > MAX_TEXT:
            text = text[: MAX_TEXT - 1] + "…"
        return cls(part, signal, text)

    def as_dict(self) -> dict[str, str]:
        return {"part": self.part, "signal": self.signal, "text": self.text}
