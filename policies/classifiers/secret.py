"""State-secret markings (Law on Protection of State Secrets, 2018) in a document's lines.

A marking is either
- the stamp: a line whose whole content, ignoring spaces, box and border characters, brackets,
  quotes and asterisks, is `MẬT`, `TỐI MẬT` or `TUYỆT MẬT` in capitals (case matters: `Mật` in
  a sentence is not a stamp; spaced-out letters `M Ậ T` are the same stamp). Extracted PDF
  lines may hold two columns separated by a wide gap, so each run separated by two or more
  spaces is also tried as a line of its own; or
- a field `Độ mật: Mật | Tối mật | Tuyệt mật` (any case), ending there or followed by another
  field.
Every other "mật" is ordinary language: `mật khẩu`, `bí mật (nhà nước)`, `mật ong`, `MẬT ONG`,
`mật độ`, and `Độ mật: Thường` / `Không`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from policies.evidence import Evidence
from policies.text import display, normalize

_STAMPS = {normalize(s): s for s in ("MẬT", "TỐI MẬT", "TUYỆT MẬT")}
# Box drawing and block elements, brackets, quotes, asterisks, bars and rules around a stamp.
_FRAME = re.compile(
    r"[\s\u2500-\u259f\u25a0-\u25ff|+=_~#*\"'`“”‘’«»‹›()\[\]{}<>【】〔〕〖〗「」『』\-]+"
)
_COLUMNS = re.compile(r"[ \t\u00a0]{2,}|\t")
_LEVEL_FIELD = re.compile(
    r"(?:^|[^\w])độ\s*mật\s*:\s*(?P<level>tuyệt\s+mật|tối\s+mật|mật)"
    r"(?=\s*$|\s*[,;|.)\]]|\s+[^\s:]+(?:\s[^\s:]+){0,2}\s*:)",
)


_STAMPS_SPACED_OUT = {s.replace(" ", "") for s in _STAMPS}


_FIELD_LABEL = re.compile(r"^độ\s*mật\s*:?$")
_LEVELS = {"mật", "tối mật", "tuyệt mật"}


def _is_stamp(segment: str, spaced_out: bool = True) -> bool:
    core = " ".join(_FRAME.sub(" ", segment).split())
    # A stamp typed with spaced-out letters (`M Ậ T`, `T Ố I  M Ậ T`) is the same stamp; only for
    # a whole line, since a column piece of spaced-out text (`M Ậ T  K H Ẩ U`) is no word.
    return core in _STAMPS or (spaced_out and core.replace(" ", "") in _STAMPS_SPACED_OUT)


def _has_mat(line: str) -> bool:
    # Every marking has MẬT (perhaps spaced out), Mật or mật: most lines stop here.
    return "Ậ" in line or "mật" in line or "Mật" in line


def line_marking(raw_line: str, normalized: str | None = None) -> str:
    """The marking a line carries ("MẬT", "TỐI MẬT", "TUYỆT MẬT", "Độ mật: ..."), or ""."""
    line = normalized if normalized is not None else normalize(raw_line)
    if not _has_mat(line):
        return ""
    if _is_stamp(line):
        return display(raw_line)
    # Wide gaps in the raw text separate columns of an extracted PDF or a fixed-width layout.
    for segment in _COLUMNS.split(raw_line):
        if segment.strip() and _is_stamp(normalize(segment), spaced_out=False):
            return display(segment)
    m = _LEVEL_FIELD.search(line.casefold())
    if m:
        # Report the field as written, not the case-folded copy.
        return line[m.start():m.end()].strip(" ,;|")
    return ""


def find_markings(
    part: str, lines: Sequence[str], normalized: Sequence[str] | None = None
) -> list[Evidence]:
    """Evidence for every marking line of one document (`normalized`: as in official.py)."""
    norm = normalized if normalized is not None else [normalize(x) for x in lines]
    found = []
    label = ""
    for raw, line in zip(lines, norm, strict=True):
        if not line:
            continue
        # line_marking() finds nothing in a line without "mật" in any of its forms.
        has_mat = _has_mat(line)
        text = line_marking(raw, line) if has_mat else ""
        if not text and label and line.casefold() in _LEVELS:
            # The field split over two table cells (an HTML or DOCX table): `Độ mật:` | `Mật`.
            text = f"{label} {display(raw)}"
        if text:
            found.append(Evidence.of(part, "secret_marking", text))
        label = display(raw) if has_mat and _FIELD_LABEL.match(line.casefold()) else ""
    return found
