"""Documents, pages and corpora, and the page-marked layout the model reads.

A ``Document`` is identified by the sha256 of its bytes: the same file added twice, or
under another name, is the same document and is never extracted again. A ``Corpus`` is
an ordered list of documents. ``layout_document`` renders one document as the text the
model sees, with a marker before every page (``[filing.pdf p.12]``) so that answers can
cite pages and citations can be checked. Each document is laid out (and tokenized) on
its own and the token lists are joined: tokenizing joined text could merge tokens at the
boundaries and break prefix reuse (docs/architecture.md, "Measured facts").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Characters per page for formats without pages (.txt, .md). Stated in the UI.
TEXT_PAGE_CHARS = 3000


@dataclass(frozen=True)
class Page:
    """One page of a document: its 1-based number and its extracted text."""

    number: int
    text: str
    ocr: bool = False


@dataclass(frozen=True)
class Document:
    """A document as read: content hash, display name, and its pages in order."""

    sha256: str
    name: str
    kind: str
    pages: tuple[Page, ...]
    path: str = ""
    size_bytes: int = 0
    extractor: str = ""

    @property
    def n_pages(self) -> int:
        return len(self.pages)

    @property
    def n_chars(self) -> int:
        return sum(len(p.text) for p in self.pages)

    def page(self, number: int) -> Page | None:
        """Return page ``number`` (1-based), or None if the document has no such page."""
        if 1 <= number <= len(self.pages):
            return self.pages[number - 1]
        return None


@dataclass(frozen=True)
class Corpus:
    """Documents in reading order."""

    documents: tuple[Document, ...] = field(default_factory=tuple)

    @property
    def fingerprint(self) -> str:
        """A hash of the ordered document hashes: the same corpus gives the same value."""
        digest = hashlib.sha256()
        for doc in self.documents:
            digest.update(doc.sha256.encode())
            digest.update(b"\n")
        return digest.hexdigest()

    @property
    def n_pages(self) -> int:
        return sum(d.n_pages for d in self.documents)

    def find(self, name: str) -> Document | None:
        """Return the document called ``name`` (case-insensitive), if any."""
        lowered = name.strip().lower()
        for doc in self.documents:
            if doc.name.lower() == lowered:
                return doc
        return None


def hash_bytes(data: bytes) -> str:
    """Return the sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> str:
    """Return the sha256 hex digest of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def page_marker(name: str, number: int, *, ocr: bool = False) -> str:
    """Return the marker the model sees before a page, e.g. ``[filing.pdf p.12]``.

    A page read by OCR says so, ``[scan.pdf p.3, OCR]``, so answers citing it show that
    its text came from recognition, not from the file's own text layer.
    """
    return f"[{name} p.{number}, OCR]" if ocr else f"[{name} p.{number}]"


def layout_document(doc: Document) -> str:
    """Render ``doc`` as the text the model reads: delimited, a marker before each page.

    The text is tokenized as plain text (never as special tokens), so a document that
    contains ``<|im_start|>`` stays text inside the delimiters; a ``<document`` or
    ``</document`` tag inside a page is defused (``<\u200bdocument``) so that a document
    cannot close its own delimiter and speak outside it (issue 7).
    """
    label = _defuse(doc.name).replace('"', "'")
    parts = [f'<document name="{label}">\n']
    for page in doc.pages:
        parts.append(page_marker(doc.name, page.number, ocr=page.ocr))
        parts.append("\n")
        parts.append(_defuse(page.text.strip()))
        parts.append("\n\n")
    parts.append("</document>\n\n")
    return "".join(parts)


_DELIMITER = re.compile(r"<(/?)(document)", re.IGNORECASE)


def _defuse(text: str) -> str:
    return _DELIMITER.sub("<\\1\u200b\\2", text)


def split_text_pages(text: str, *, page_chars: int = TEXT_PAGE_CHARS) -> list[str]:
    """Split plain text into pages of about ``page_chars`` characters.

    Breaks at a blank line, else a line end, else a space, in the last fifth of a page,
    so that a page does not end mid-word.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    pages: list[str] = []
    start = 0
    n = len(text)
    while start < n:
        end = min(start + page_chars, n)
        if end < n:
            floor = start + (page_chars * 4) // 5
            for sep in ("\n\n", "\n", " "):
                cut = text.rfind(sep, floor, end)
                if cut > start:
                    end = cut + len(sep)
                    break
        chunk = text[start:end]
        if chunk.strip():
            pages.append(chunk.strip("\n"))
        start = end
    return pages


def make_pages(texts: Iterable[str]) -> tuple[Page, ...]:
    """Number ``texts`` as pages from 1."""
    return tuple(Page(number=i, text=t) for i, t in enumerate(texts, start=1))


def unique_names(docs: Sequence[Document]) -> list[str]:
    """Return display names made unique by suffixing duplicates (``a.pdf``, ``a (2).pdf``)."""
    seen: dict[str, int] = {}
    names = []
    for doc in docs:
        count = seen.get(doc.name, 0) + 1
        seen[doc.name] = count
        if count == 1:
            names.append(doc.name)
        else:
            stem, dot, ext = doc.name.rpartition(".")
            names.append(f"{stem} ({count}).{ext}" if dot else f"{doc.name} ({count})")
    return names
