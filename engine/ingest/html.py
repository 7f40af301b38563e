"""HTML (and the XHTML chapters of EPUB): visible text, one section per heading.

Parsed with the standard library's ``html.parser`` (lenient, no network, no scripts run).
Script, style and other invisible elements are dropped; block elements end lines; every
``<h1>`` to ``<h3>`` starts a new section, so citations point at a heading's span. The
encoding is the one the file declares (``<meta charset>``), else detected like text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from engine.errors import EmptyDocumentError
from engine.ingest.sections import pages_from_sections
from engine.ingest.text import decode_text

_SKIP = {"script", "style", "head", "noscript", "template", "svg", "math", "iframe", "object"}
_BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer", "nav",
    "blockquote", "pre", "h4", "h5", "h6", "dt", "dd", "dl", "figure", "figcaption", "hr", "main", "aside",
    "address", "caption", "tbody", "thead",
}  # fmt: skip
_SECTION = {"h1", "h2", "h3"}
_CELL = {"td", "th"}
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[list[str]] = [[]]
        self._skip_depth = 0
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip_depth += 1
        elif tag in _SECTION:
            self.sections.append([])
        elif tag in _BLOCK:
            self.sections[-1].append("\n")
        elif tag in _CELL:
            self.sections[-1].append("\t")
        if tag == "pre":
            self._pre_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.sections[-1].append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _SECTION or tag in _BLOCK:
            self.sections[-1].append("\n")
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        # Collapse HTML whitespace only: a no-break space is part of the text ("4&nbsp;250").
        self.sections[-1].append(data if self._pre_depth else re.sub(r"[ \t\n\r\f]+", " ", data))


def _tidy(parts: list[str]) -> str:
    text = "".join(parts)
    lines = [line.strip(" \t\r\f") for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def decode_html(data: bytes, *, name: str) -> str:
    """Decode HTML bytes with the charset the file declares, else as detected text.

    Raises:
        IngestError: the bytes are binary, not HTML.
    """
    match = _CHARSET.search(data[:4096])
    if match is not None:
        try:
            return data.decode(match.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration: detect instead
    text, _ = decode_text(data, name=name)
    return text


def html_sections(markup: str) -> list[str]:
    """Return the visible text of ``markup``, one string per heading-led section."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    return [t for t in (_tidy(s) for s in parser.sections) if t]


def extract_html_pages(data: bytes, *, name: str) -> list[str]:
    """Return the pages (sections) of an HTML file.

    Raises:
        EmptyDocumentError: no visible text.
        IngestError: the file is binary, not HTML.
    """
    pages = pages_from_sections(html_sections(decode_html(data, name=name)))
    if not pages:
        raise EmptyDocumentError(f"{name} has no visible text to read.", path=name)
    return pages
