"""Text of OOXML (docx, xlsx, pptx) and OpenDocument (odt, ods, odp) files, as lines.

Reads the XML members directly from the zip container through the capped reader, so an office
file that is really a bomb stops at the limits. Which members count:
docx: headers, body, footers, footnotes, endnotes, comments; xlsx: every worksheet's cells in
workbook order, sheet headers/footers, text boxes; pptx: slides; ODF: styles.xml (page headers and
footers) and content.xml.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile

from lxml import etree

from .context import Run
from .xmltext import (
    drawing_paragraphs,
    odf_paragraphs,
    parse,
    word_paragraphs,
)
from .zipread import LimitExceeded, read_member

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
# Header/footer formatting codes of SpreadsheetML: &L &C &R sections, &"font", &12, &P ...
_HF_SECTION = re.compile(r"&[LCR]")
_HF_CODE = re.compile(r'&"[^"]*"|&\d+|&[A-Za-z]')


class Unreadable(Exception):
    """The office file is not a readable container of the kind its content claims."""


class _Members:
    """Named access to the XML members of an office zip, under the run's limits."""

    def __init__(self, data: bytes, run: Run, label: str) -> None:
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            self.infos = {info.filename: info for info in self.zf.infolist()}
        except Exception as exc:
            raise Unreadable(f"not a readable zip container: {exc}") from exc
        self.run = run
        self.label = label

    def names(self) -> list[str]:
        return list(self.infos)

    def xml(self, name: str) -> etree._Element | None:
        info = self.infos.get(name)
        if info is None:
            return None
        limits = self.run.limits
        cap = min(limits.max_xml_size, self.run.remaining())
        try:
            data = read_member(self.zf, info, cap, limits.max_ratio, limits.ratio_floor)
        except LimitExceeded as exc:
            self.run.defect(self.label, "archive_bomb", f"{name}: {exc}")
            return None
        except Exception as exc:
            self.run.defect(self.label, "unreadable", f"{name}: {exc}")
            return None
        if not self.run.charge(self.label, len(data)):
            return None
        root = parse(data)
        if root is None:
            self.run.defect(self.label, "unreadable", f"{name}: not well-formed XML")
        return root


def _numbered(names: list[str], prefix: str) -> list[str]:
    """Members such as word/header1.xml, header2.xml ... in numeric order."""
    pattern = re.compile(re.escape(prefix) + r"(\d*)\.xml$")
    found = [(int(m.group(1) or 0), n) for n in names if (m := pattern.match(n))]
    return [n for _, n in sorted(found)]


def docx_lines(members: _Members) -> list[str]:
    names = members.names()
    order = [
        *_numbered(names, "word/header"),
        "word/document.xml",
        *_numbered(names, "word/footer"),
        "word/footnotes.xml",
        "word/endnotes.xml",
        "word/comments.xml",
    ]
    paragraphs: list[str] = []
    body_found = False
    for name in order:
        root = members.xml(name)
        if root is None:
            continue
        body_found = body_found or name == "word/document.xml"
        paragraphs += word_paragraphs(root)
    if not body_found:
        raise Unreadable("word/document.xml cannot be read")
    return paragraphs


_SI = _MAIN + "si"
_T = _MAIN + "t"
_RPH = _MAIN + "rPh"


def _shared_strings(members: _Members) -> list[str]:
    root = members.xml("xl/sharedStrings.xml")
    if root is None:
        return []
    strings = []
    for si in root.iter(_SI):
        # The usual entry is one plain <t> without children: read it without the general walk.
        if len(si) == 1:
            only = si[0]
            if only.tag == _T and len(only) == 0:
                strings.append(only.text or "")
                continue
        # Phonetic runs (rPh) repeat the reading of East Asian text; they are not shown.
        texts = [t.text or "" for t in si.iter(_T) if t.getparent().tag != _RPH]
        strings.append("".join(texts))
    return strings


def _sheet_members(members: _Members) -> list[str]:
    names = members.names()
    workbook = members.xml("xl/workbook.xml")
    rels = members.xml("xl/_rels/workbook.xml.rels")
    ordered: list[str] = []
    if workbook is not None and rels is not None:
        targets = {
            rel.get("Id"): rel.get("Target", "") for rel in rels.iter(_PKG_REL + "Relationship")
        }
        for sheet in workbook.iter(_MAIN + "sheet"):
            target = targets.get(sheet.get(_REL + "id"), "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                posixpath.join("xl", target)
            )
            if path in members.infos and path not in ordered:
                ordered.append(path)
    # Sheets the workbook does not list are still read: hiding a sheet must not hide its text.
    rest = sorted(n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml"))
    return ordered + [n for n in rest if n not in ordered]


_V = _MAIN + "v"
_C = _MAIN + "c"
_HEADERS_FOOTERS = tuple(_MAIN + tag for tag in (
    "oddHeader", "oddFooter", "evenHeader", "evenFooter", "firstHeader", "firstFooter"))


def _cell_text(cell: etree._Element, shared: list[str]) -> str:
    """The shown text of one cell: an inline string, a shared string, or the value as written."""
    kind = cell.get("t")
    if kind == "inlineStr":
        return "".join([t.text or "" for t in cell.iter(_T)])
    # The first <v> child. A loop over the (one or two) children is several times cheaper than
    # findtext(), which goes through ElementPath for every one of a sheet's many cells.
    text = ""
    for child in cell:
        if child.tag == _V:
            text = child.text or ""
            break
    if kind == "s":
        try:
            return shared[int(text)]
        except (ValueError, IndexError):
            return ""
    return text


def xlsx_lines(members: _Members) -> list[str]:
    shared = _shared_strings(members)
    sheets = _sheet_members(members)
    if not sheets:
        raise Unreadable("no worksheet")
    lines: list[str] = []
    append = lines.append
    for name in sheets:
        root = members.xml(name)
        if root is None:
            continue
        for el in root.iter(_C, *_HEADERS_FOOTERS):
            if el.tag == _C:
                append(_cell_text(el, shared))
            else:
                for section in _HF_SECTION.split(el.text or ""):
                    append(_HF_CODE.sub("", section))
    for name in sorted(n for n in members.names() if n.startswith("xl/drawings/")
                       and n.endswith(".xml") and "/_rels/" not in n):
        root = members.xml(name)
        if root is not None:
            lines += drawing_paragraphs(root)
    return lines


def pptx_lines(members: _Members) -> list[str]:
    lines: list[str] = []
    for name in _numbered(members.names(), "ppt/slides/slide"):
        root = members.xml(name)
        if root is not None:
            lines += drawing_paragraphs(root)
    return lines


def odf_lines(members: _Members) -> list[str]:
    lines: list[str] = []
    content_found = False
    for name in ("styles.xml", "content.xml"):
        root = members.xml(name)
        if root is None:
            continue
        content_found = content_found or name == "content.xml"
        lines += odf_paragraphs(root)
    if not content_found:
        raise Unreadable("content.xml cannot be read")
    return lines


_READERS = {
    "docx": docx_lines,
    "xlsx": xlsx_lines,
    "pptx": pptx_lines,
    "odt": odf_lines,
    "ods": odf_lines,
    "odp": odf_lines,
}
OFFICE_KINDS = frozenset(_READERS)
__all__ = ["OFFICE_KINDS", "Unreadable", "office_embeddings", "office_lines"]


_EMBEDDINGS = re.compile(r"^(word|xl|ppt)/embeddings/[^/]+$")


def office_embeddings(data: bytes, run: Run, label: str) -> list[tuple[str, bytes]]:
    """Files embedded in an office document (OLE objects, packaged docx/xlsx/pdf)."""
    try:
        members = _Members(data, run, label)
    except Unreadable:
        return []
    found: list[tuple[str, bytes]] = []
    limits = run.limits
    with members.zf:
        for name, info in members.infos.items():
            if not _EMBEDDINGS.match(name) or info.is_dir():
                continue
            cap = min(limits.max_file_size, run.remaining())
            try:
                content = read_member(members.zf, info, cap, limits.max_ratio, limits.ratio_floor)
            except LimitExceeded as exc:
                run.defect(label, "archive_bomb", f"{name}: {exc}")
                continue
            except Exception as exc:
                run.defect(label, "unreadable", f"{name}: {exc}")
                continue
            found.append((name.rsplit("/", 1)[-1], content))
    return found


def office_lines(kind: str, data: bytes, run: Run, label: str) -> list[str]:
    """All text of an office file as raw paragraph strings; raises Unreadable."""
    members = _Members(data, run, label)
    try:
        return _READERS[kind](members)
    finally:
        members.zf.close()
