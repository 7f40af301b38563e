"""Model output as formatted text: Markdown rendered by Qt, untrusted HTML shown as text.

Models answer in Markdown (headings, lists, bold, tables, code). ``markdown_html(text,
spans)`` renders it with Qt's own parser (``QTextDocument.setMarkdown``, GitHub dialect)
and returns HTML for a ``QTextBrowser``; ``spans`` mark stretches of the text (page
citations, facts found on no page) that become links (``cite:N``) or marked words.

The text is untrusted (issue 18 item 2): the model may write ``<img src=...>`` or
``<a href="file:...">``, or the Markdown forms of both. So:
- raw HTML is parsed as text (``MarkdownNoHTML``): ``<img ...>`` reads as ``<img ...>``;
- Markdown images are escaped before parsing (``![x](y)`` reads as written), and any
  image that still came through is replaced by its text: nothing is ever fetched;
- every link the model wrote (Markdown, autolinks, bare URLs) loses its anchor and keeps
  its words; the only links are the ones made here from ``spans``.
The conversation's browser also refuses to load any resource (``SafeBrowser``).

``markdown_plain(text)`` is the same text without its markup (list items keep their
bullet or number, table cells are joined by tabs), for "Copy as plain text".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QByteArray, QUrl
from PySide6.QtGui import QBrush, QColor, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat, QTextListFormat
from PySide6.QtWidgets import QTextBrowser

FLAGS = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_SPAN_HREF = "span:"
_FENCE = re.compile(r"^\s{0,3}(```|~~~)", re.MULTILINE)


@dataclass(frozen=True)
class Span:
    """A stretch of the text drawn specially: a link (``href``) or marked words.

    ``start``/``end`` index the text; ``label`` replaces the stretch (default: itself);
    ``color``/``background`` colour it, ``strike`` strikes it out, ``tooltip`` explains it.
    """

    start: int
    end: int
    href: str = ""
    label: str | None = None
    color: str = ""
    background: str = ""
    strike: bool = False
    tooltip: str = ""


class SafeBrowser(QTextBrowser):
    """A text browser that loads no resource at all (no image, no style sheet, from
    nowhere: not the disk, not the network), and counts what it was asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused: list[str] = []
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)

    def loadResource(self, kind: int, name: QUrl | str) -> Any:  # noqa: N802 (Qt's name)
        self.refused.append(name.toString() if isinstance(name, QUrl) else name)
        # Empty but valid: a null answer would make QTextDocument read a local file itself.
        return QByteArray()


def markdown_source(text: str, spans: Sequence[Span] = ()) -> str:
    """The Markdown handed to Qt: images defanged, each span a ``[label](span:K)`` link
    (or its plain label where a link cannot be: inside code)."""
    out: list[str] = []
    pos = 0
    for k, span in enumerate(sorted(spans, key=lambda s: s.start)):
        if span.start < pos:
            continue
        out.append(_defang(text[pos : span.start]))
        label = span.label if span.label is not None else text[span.start : span.end]
        if _in_code(text, span.start):
            out.append(label)
        else:
            escaped = _PUNCTUATION.sub(r"\\\1", label)
            out.append(f"[{escaped}]({_SPAN_HREF}{k})")
        pos = span.end
    out.append(_defang(text[pos:]))
    return "".join(out)


def markdown_document(text: str, spans: Sequence[Span] = ()) -> QTextDocument:
    """``text`` parsed as Markdown and made safe, with ``spans`` drawn."""
    ordered = sorted(spans, key=lambda s: s.start)
    doc = QTextDocument()
    doc.setMarkdown(markdown_source(text, ordered), FLAGS)
    _make_safe(doc, ordered)
    return doc


def markdown_html(text: str, spans: Sequence[Span] = ()) -> str:
    """The HTML of ``text`` rendered as Markdown (the body's content, to join with more)."""
    html = markdown_document(text, spans).toHtml()
    body = re.search(r"<body[^>]*>(.*)</body>", html, re.DOTALL)
    return body.group(1).strip() if body else html


def markdown_plain(text: str) -> str:
    """``text`` without its Markdown: words, list bullets and numbers, table rows."""
    doc = markdown_document(text)
    lines: list[str] = []
    block = doc.begin()
    row_key: tuple[int, int] | None = None
    while block.isValid():
        cursor = QTextCursor(block)
        table = cursor.currentTable()
        words = block.text()
        if table is not None:
            cell = table.cellAt(block.position())
            key = (id(table), cell.row())
            if key == row_key:
                lines[-1] += "\t" + words
            else:
                lines.append(words)
            row_key = key
        else:
            row_key = None
            listing = block.textList()
            if listing is not None:
                indent = "  " * max(0, listing.format().indent() - 1)
                ordered = listing.format().style().value <= QTextListFormat.Style.ListDecimal.value  # 1., a., i.
                words = f"{indent}{listing.itemText(block) if ordered else '•'} {words}"
            lines.append(words)
        block = block.next()
    return "\n".join(lines).strip()


def _defang(text: str) -> str:
    """Escape the ``!`` of Markdown images: ``![x](y)`` stays as written, never an image."""
    return text.replace("![", "\\![")


def _in_code(text: str, pos: int) -> bool:
    """Whether ``pos`` falls in a fenced code block or an inline code span (by its line)."""
    if len(_FENCE.findall(text, 0, pos)) % 2 == 1:
        return True
    line_start = text.rfind("\n", 0, pos) + 1
    return text.count("`", line_start, pos) % 2 == 1


def _make_safe(doc: QTextDocument, spans: Sequence[Span]) -> None:
    """Draw the spans; unlink every other link; replace any image by its text."""
    edits: list[tuple[int, int, QTextCharFormat | None, str]] = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.isValid():
                fmt = fragment.charFormat()
                start, length = fragment.position(), fragment.length()
                if fmt.isImageFormat():
                    edits.append((start, length, None, f"[{fmt.toImageFormat().name()}]"))
                elif fmt.isAnchor():
                    edits.append((start, length, _span_format(fmt, spans), ""))
            it += 1
        block = block.next()
    cursor = QTextCursor(doc)
    for start, length, new_format, replacement in reversed(edits):
        cursor.setPosition(start)
        cursor.setPosition(start + length, QTextCursor.MoveMode.KeepAnchor)
        if new_format is None:
            cursor.insertText(replacement, QTextCharFormat())
        else:
            cursor.setCharFormat(new_format)


def _span_format(fmt: QTextCharFormat, spans: Sequence[Span]) -> QTextCharFormat:
    """A link's new format: the span's look (a ``span:K`` link) or plain words (any other)."""
    out = QTextCharFormat(fmt)
    href = fmt.anchorHref()
    span = spans[int(href[len(_SPAN_HREF) :])] if re.fullmatch(rf"{_SPAN_HREF}\d+", href) else None
    if span is None or not span.href:
        out.setAnchor(False)
        out.setAnchorHref("")
        out.setFontUnderline(False)
        out.clearForeground()
        out.clearProperty(QTextFormat.Property.AnchorName)
    else:
        out.setAnchorHref(span.href)
    if span is not None:
        if span.color:
            out.setForeground(QBrush(QColor(span.color)))
        if span.background:
            out.setBackground(QBrush(QColor(span.background)))
        if span.strike:
            out.setFontStrikeOut(True)
        if span.tooltip:
            out.setToolTip(span.tooltip)
    return out
