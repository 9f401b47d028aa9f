"""HTML to lines: each block element and each table cell becomes its own line.

Built on the stdlib `html.parser` (tolerant of broken markup, no network, no entity expansion
beyond the HTML5 named references). Script and style content is dropped; hidden text is kept,
because hiding text from a reader is exactly what a DLP must still see.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from .text import to_lines

_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd",
    "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "li", "main", "nav", "ol", "p",
    "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr",
    "ul",
})
_SKIP = frozenset({"script", "style", "template"})
_SPACE = re.compile(r"[ \t\r\n\f]+")


class _Reducer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.chunks.append("\n")
            if tag == "pre":
                self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.chunks.append("\n")
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        # Outside <pre>, HTML collapses white space (line breaks included) into one space.
        self.chunks.append(data if self.pre else _SPACE.sub(" ", data))


def html_lines(markup: str, limit: int = 200_000) -> list[str]:
    """The visible text of an HTML document, one block or cell per line."""
    reducer = _Reducer()
    try:
        reducer.feed(markup)
        reducer.close()
    except Exception:  # noqa: S110
        # html.parser is tolerant, but keep what was read so far whatever happens.
        pass
    return [line.strip() for line in to_lines("".join(reducer.chunks), limit)]
