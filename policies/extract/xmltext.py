"""Paragraph text out of office XML (WordprocessingML, SpreadsheetML, DrawingML, OpenDocument).

The XML is parsed with lxml configured not to resolve entities, load DTDs or touch the network.
A paragraph nested in a text box is its own line and is not repeated in the paragraph that holds
the text box; the VML fallback copy of a text box (mc:Fallback) is skipped so nothing is doubled.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True,
    remove_comments=True, remove_pis=True,
)


def parse(data: bytes) -> etree._Element | None:
    """Parse XML safely; None when it cannot be read at all."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.LxmlError:
        return None
    return root


def _word_runs(el: etree._Element, out: list[str]) -> None:
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == W + "t":
            out.append(child.text or "")
        elif tag == W + "tab" or tag == W + "ptab":
            out.append("\t")
        elif tag in (W + "br", W + "cr"):
            out.append("\n")
        elif tag == W + "noBreakHyphen":
            out.append("-")
        elif tag in (W + "txbxContent", MC + "Fallback", W + "p", W + "delText", W + "instrText"):
            # Text boxes give their own paragraphs; fallbacks repeat the choice; deleted text
            # and field codes are not shown.
            continue
        else:
            _word_runs(child, out)


_ODF_NESTED = frozenset({
    DRAW + "frame", DRAW + "custom-shape", TEXT + "note", OFFICE + "annotation", TEXT + "p",
    TEXT + "h",
})


def _odf_runs(el: etree._Element, out: list[str]) -> None:
    if el.text:
        out.append(el.text)
    for child in el:
        tag = child.tag
        if isinstance(tag, str):
            if tag == TEXT + "s":
                out.append(" " * int(child.get(TEXT + "c", "1") or 1))
            elif tag == TEXT + "tab":
                out.append("\t")
            elif tag == TEXT + "line-break":
                out.append("\n")
            elif tag in _ODF_NESTED:
                # Nested paragraphs are lines of their own.
                pass
            else:
                _odf_runs(child, out)
        if child.tail:
            out.append(child.tail)


def _drawing_runs(el: etree._Element, out: list[str]) -> None:
    for child in el:
        tag = child.tag
        if tag == A + "t":
            out.append(child.text or "")
        elif tag == A + "br":
            out.append("\n")
        elif isinstance(tag, str):
            _drawing_runs(child, out)


def _paragraphs(
    root: etree._Element, para_tags: frozenset[str], skip: frozenset[str],
    runs: Callable[[etree._Element, list[str]], None],
) -> list[str]:
    found: list[str] = []

    def walk(el: etree._Element) -> None:
        for child in el:
            tag = child.tag
            if not isinstance(tag, str) or tag in skip:
                continue
            if tag in para_tags:
                out: list[str] = []
                runs(child, out)
                found.append("".join(out))
            walk(child)

    walk(root)
    return found


_WORD_PARAS = frozenset({W + "p"})
_WORD_SKIP = frozenset({MC + "Fallback", W + "del"})
_ODF_PARAS = frozenset({TEXT + "p", TEXT + "h"})
_A_PARAS = frozenset({A + "p"})


def word_paragraphs(root: etree._Element) -> list[str]:
    """Every w:p of a WordprocessingML part (body, tables, text boxes, headers, notes)."""
    return _paragraphs(root, _WORD_PARAS, _WORD_SKIP, _word_runs)


def odf_paragraphs(root: etree._Element) -> list[str]:
    """Every text:p / text:h of an OpenDocument part (also in cells, frames, headers)."""
    return _paragraphs(root, _ODF_PARAS, frozenset(), _odf_runs)


def drawing_paragraphs(root: etree._Element) -> list[str]:
    """Every a:p of a DrawingML part (shapes and text boxes in sheets and slides)."""
    return _paragraphs(root, _A_PARAS, frozenset({MC + "Fallback"}), _drawing_runs)
