"""Fast path for big messages: runs of base64 lines are set aside before the stdlib parser runs.

The stdlib parser handles every line in Python, which for a 20 MB message costs seconds. A line of
base64 alphabet only can never be a boundary or a header line (neither "-" nor ":" is in the
alphabet), so replacing a run of such lines by one token line of the same alphabet leaves the MIME
structure exactly as every parser sees it. Bodies are restored before they are decoded or re-read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# At least 8 lines of 40+ base64 characters: attachments, not the odd short line of text.
_RUN = re.compile(rb"(?:^[A-Za-z0-9+/=]{40,998}\r?\n){8,}", re.MULTILINE)
_MIN_SIZE = 256 * 1024


@dataclass
class Blobs:
    """Tokens standing for set-aside runs of lines, for one extraction run."""

    runs: dict[str, str] = field(default_factory=dict)
    prefix: str = ""

    def collapse(self, raw: bytes) -> bytes:
        """`raw` with long runs of base64 lines replaced by token lines (small input unchanged)."""
        if len(raw) < _MIN_SIZE or (self.prefix and self.prefix.encode() in raw):
            return raw
        if not self.prefix:
            # A prefix the message itself does not contain, so a token is never mistaken.
            number = 0
            while (candidate := f"MAILGWBLOB{number}X").encode() in raw:
                number += 1
            self.prefix = candidate

        def replace(match: re.Match[bytes]) -> bytes:
            text = match.group(0)
            ending = b"\r\n" if text.endswith(b"\r\n") else b"\n"
            token = f"{self.prefix}{len(self.runs)}Z"
            # Kept as latin-1 text: the run is ASCII, and payloads are str with the same bytes.
            self.runs[token] = text[: -len(ending)].decode("latin-1")
            return token.encode() + ending

        return _RUN.sub(replace, raw)

    def restore(self, text: str) -> str:
        """Put the set-aside lines back into a body taken from the parsed message."""
        if not self.runs or self.prefix not in text:
            return text
        return re.sub(re.escape(self.prefix) + r"\d+Z", lambda m: self.runs.get(m.group(0), ""),
                      text)

    def restore_bytes(self, data: bytes) -> bytes:
        if not self.runs or self.prefix.encode() not in data:
            return data
        return self.restore(data.decode("latin-1")).encode("latin-1")
