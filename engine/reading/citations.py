"""Page citations in answers, checked against the source pages.

An answer cites pages with the markers the model saw, ``[filing.pdf p.12]`` (also
``[filing.pdf, p. 12]``, ``[filing.pdf page 12]``, ``[p.12]`` when the corpus has one
document). A citation is *valid* when the document and the page exist. A quoted passage
(``"..."`` just before a citation) is *verified* when it appears on that page, ignoring
case, whitespace and hyphenation at line ends.

``flag_citations`` marks the citations that failed in the answer text itself (the CLI,
the GUI and Markdown exports show the same flags); ``citations_to_json`` and
``citations_from_json`` keep checked citations with the stored answer, step or wave.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from engine.corpus import Corpus

_CITE = re.compile(
    r"\[(?:(?P<name>[^\[\]]+?)[,;]?\s+)?(?:p\.|pp\.|page|pages)\s*(?P<page>\d{1,5})(?:\s*[-\u2013]\s*(?P<last>\d{1,5}))?(?:,?\s*OCR)?\]",
    re.IGNORECASE,
)
#: A page marker or citation, ``[name p.N]`` (its groups: name, page, last).
MARKER = _CITE
_QUOTE = re.compile(r"[\"\u201c]([^\"\u201c\u201d]{8,400})[\"\u201d]\s*$")


@dataclass(frozen=True)
class Citation:
    """One citation found in an answer, and what checking it found."""

    start: int
    end: int
    document: str
    page: int
    exists: bool
    quote: str | None = None
    quote_found: bool | None = None
    problem: str | None = None
    last_page: int | None = None  # a range citation, [a.pdf p.3-5]: the quote may be on any of them

    @property
    def ok(self) -> bool:
        return self.exists and self.quote_found is not False


def normalize(text: str) -> str:
    """Fold case and whitespace and undo end-of-line hyphenation, for matching quotes."""
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    text = text.replace("\u00ad", "")
    text = re.sub(r"[\u2018\u2019]", "'", text)
    text = re.sub(r"[\u201c\u201d]", '"', text)
    return re.sub(r"\s+", " ", text).strip().lower()


def quote_on_page(quote: str, page_text: str) -> bool:
    """Whether ``quote`` appears on the page, whitespace- and hyphenation-tolerant."""
    needle = normalize(quote)
    hay = normalize(page_text)
    if needle in hay:
        return True
    # A word split by a hyphen at a line end may be rejoined in one text and not the other.
    return needle.replace("-", "").replace(" ", "") in hay.replace("-", "").replace(" ", "")


def check_citations(answer: str, corpus: Corpus) -> list[Citation]:
    """Find the citations in ``answer`` and check each against ``corpus``."""
    found = []
    single = corpus.documents[0] if len(corpus.documents) == 1 else None
    for match in _CITE.finditer(answer):
        name = (match.group("name") or "").strip().strip('"')
        page = int(match.group("page"))
        doc = corpus.find(name) if name else single
        quote_match = _QUOTE.search(answer[max(0, match.start() - 420) : match.start()])
        quote = quote_match.group(1) if quote_match else None
        if doc is None:
            problem = f"there is no document called {name!r}" if name else "the citation names no document"
            found.append(Citation(match.start(), match.end(), name, page, False, quote, None, problem))
            continue
        page_obj = doc.page(page)
        if page_obj is None:
            found.append(
                Citation(
                    match.start(),
                    match.end(),
                    doc.name,
                    page,
                    False,
                    quote,
                    None,
                    f"{doc.name} has no page {page} (it has {doc.n_pages})",
                )
            )
            continue
        last = int(match.group("last")) if match.group("last") else None
        pages = [page_obj] if last is None else [p for p in doc.pages if page <= p.number <= last]
        quote_found = quote_on_page(quote, "\n".join(p.text for p in pages)) if quote else None
        where = f"page {page}" if last is None else f"pages {page}-{last}"
        mismatch = None if quote_found is not False else f"the quoted words are not on {where} of {doc.name}"
        found.append(Citation(match.start(), match.end(), doc.name, page, True, quote, quote_found, mismatch, last))
    return found


FLAG = "\u26a0"  # the warning sign shown before an unverified citation's reason


def flag_citations(answer: str, citations: list[Citation]) -> str:
    """Return ``answer`` with a flag after each citation that failed its check.

    ``[a.pdf p.99]`` becomes ``[a.pdf p.99] [\u26a0 unverified: a.pdf has no page 99 (it has 4)]``.
    Citations that passed are left as they are.
    """
    parts: list[str] = []
    last = 0
    for c in sorted(citations, key=lambda c: c.start):
        if c.ok:
            continue
        parts.append(answer[last : c.end])
        parts.append(f" [{FLAG} unverified: {c.problem}]")
        last = c.end
    parts.append(answer[last:])
    return "".join(parts)


def citations_to_json(citations: list[Citation]) -> str:
    """Serialize checked citations for storage."""
    return json.dumps([asdict(c) for c in citations], ensure_ascii=False)


def citations_from_json(text: str | None) -> list[Citation]:
    """Read citations stored by ``citations_to_json`` (empty for none or blank)."""
    if not text:
        return []
    rows: list[dict[str, Any]] = json.loads(text)
    return [Citation(**row) for row in rows]
