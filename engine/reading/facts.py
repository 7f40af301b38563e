"""Facts in answers checked against the corpus: the filter on every answer (issue 13 item 5).

A small model writes numbers, dates, codes and quotations that are on no page (a real run
answered "The award reference code is 1234567890" about a document with no such code).
Citations alone do not catch that: an answer may cite nothing, or cite a real page and
still carry an invented number. So every answer of every way of reading (ask, think,
waves) is checked here, the same way wherever it is shown (the CLI, the window, the
Markdown export):

- a *fact* is a token holding a digit (a number, an amount, a year, a date such as
  ``2024-03-15`` or ``15/03/2024``, a code such as ``HB-2024-117``), a date written with a
  month name (``March 15, 2024``), or a quoted string (``"..."``, 3 to 400 characters);
- a fact is *founded* when it appears on some page of the corpus or in the question:
  tokens match whole (``57435`` is not founded by ``574354``), with thousands separators,
  ordinal suffixes and case folded; a date with a month name matches the same day written
  another way on a page; a quotation matches as citations' quotes do (case, whitespace and
  end-of-line hyphenation folded);
- page markers (``[a.pdf p.3]``) and list numbers at the start of a line are not facts;
  numbers spelled in words are not checked;
- an answer that cites no page at all is *uncited*: shown as unverified.

``check_answer`` returns an ``AnswerCheck`` (the checked citations, the unfounded facts,
whether it cites anything); ``flag_answer`` marks both kinds of problem in the text
(``1234567890 [\u26a0 on no page]``); ``AnswerCheck.problems`` lists them, one line each.
The corpus's index of facts is built once per corpus (by fingerprint) and kept for a few
corpora, so re-checking answers as a window redraws is cheap.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.corpus import Corpus
from engine.reading.citations import FLAG, Citation, check_citations, normalize

_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
# "March 15, 2024", "15 March 2024", "March 2024" (the day is optional).
_DATE_MDY = re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b", re.IGNORECASE)
_DATE_DMY = re.compile(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(?P<year>\d{{4}})\b", re.I)
# A token with a digit: letters and digits joined by - / . , : (not at its ends).
_TOKEN = re.compile(r"(?<![\w])[A-Za-z0-9]+(?:[-/.,:][A-Za-z0-9]+)*(?![\w])")
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d\n]{3,400})[\"\u201d]")
_CITE_SPAN = re.compile(r"\[[^\[\]\n]{0,200}?(?:p\.|pp\.|page|pages)\s*\d[^\[\]\n]{0,40}\]", re.IGNORECASE)
_LIST_NUMBER = re.compile(r"(?m)^\s*\(?\d{1,2}[.)]\s")
_GROUPED = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$", re.IGNORECASE)

UNCITED = "it cites no page, so nothing in it was checked against the documents"


@dataclass(frozen=True)
class Unfounded:
    """A fact in an answer found on no page of the corpus, nor in the question."""

    start: int
    end: int
    text: str
    kind: str  # number, date, code, quote

    @property
    def problem(self) -> str:
        what = "the quoted words are" if self.kind == "quote" else f"this {self.kind} is"
        return f"{what} on no page of the documents"


@dataclass(frozen=True)
class AnswerCheck:
    """What checking an answer found: its citations, the facts on no page, and whether
    it cites anything."""

    citations: list[Citation]
    unfounded: list[Unfounded] = field(default_factory=list)

    @property
    def cites_nothing(self) -> bool:
        return not self.citations

    @property
    def ok(self) -> bool:
        return not self.cites_nothing and not self.unfounded and all(c.ok for c in self.citations)

    def problems(self, *, final: bool = True) -> list[str]:
        """One line per problem, as the CLI, the window and the export list them.

        Args:
            final: an answer (an uncited one is flagged); False for a step's or a
                wave's text, which may cite nothing.
        """
        lines = []
        if final and self.cites_nothing:
            lines.append(f"Unverified answer: {UNCITED}.")
        lines += [f"Unverified citation [{c.document} p.{c.page}]: {c.problem}." for c in self.citations if not c.ok]
        lines += [f'Not in the documents: "{u.text}" ({u.problem}).' for u in self.unfounded]
        return lines


def canonical(token: str) -> str:
    """A fact token as compared: case folded, thousands separators and ordinal suffixes
    dropped (``1,250,000`` -> ``1250000``, ``15th`` -> ``15``)."""
    token = token.lower()
    if _GROUPED.match(token):
        token = token.replace(",", "")
    ordinal = _ORDINAL.match(token)
    if ordinal:
        token = ordinal.group(1)
    return token


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def _token_forms(token: str) -> set[str]:
    """A token on a page and its parts: ``HB-2024-117`` also founds ``2024``;
    ``1,250.00`` also founds ``1250`` and ``1,250``."""
    forms = {canonical(token)}
    for part in re.split(r"[-/:]", token):
        if part:
            forms.add(canonical(part))
            if "." in part:  # 1,250.00 -> 1,250 ; 3.5 -> 3
                whole = part.split(".")[0]
                forms.add(canonical(whole))
            forms.add(canonical(part.rstrip(".,")))
    return forms


def _dates(text: str) -> list[tuple[int, int, tuple[int, int, int]]]:
    found = []
    for pattern in (_DATE_MDY, _DATE_DMY):
        for m in pattern.finditer(text):
            month = _MONTHS[m.group("month").lower()]
            found.append((m.start(), m.end(), (int(m.group("year")), month, int(m.group("day")))))
    return found


def _numeric_dates(token: str) -> set[tuple[int, int, int]]:
    """The days a numeric date token may mean: ``2024-03-15``, ``15/03/2024`` or ``03/15/2024``."""
    parts = re.split(r"[-/.]", token)
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return set()
    a, b, c = (int(p) for p in parts)
    out = set()
    if len(parts[0]) == 4:
        out.add((a, b, c))
    elif len(parts[2]) == 4:
        out |= {(c, b, a), (c, a, b)}
    return {d for d in out if 1 <= d[1] <= 12 and 1 <= d[2] <= 31}


@dataclass
class _Index:
    tokens: set[str]
    days: set[tuple[int, int, int]]
    pages: list[str]  # normalized page texts, for quotations


def _index(texts: list[str]) -> _Index:
    tokens: set[str] = set()
    days: set[tuple[int, int, int]] = set()
    for text in texts:
        for m in _TOKEN.finditer(text):
            token = m.group(0)
            if _has_digit(token):
                tokens |= _token_forms(token)
                days |= _numeric_dates(token)
        days |= {d for _, _, d in _dates(text)}
    return _Index(tokens, days, [normalize(t) for t in texts])


_CACHE: OrderedDict[str, _Index] = OrderedDict()
_CACHE_SIZE = 4


def _corpus_index(corpus: Corpus) -> _Index:
    key = corpus.fingerprint
    index = _CACHE.get(key)
    if index is None:
        texts = [p.text for d in corpus.documents for p in d.pages] + [d.name for d in corpus.documents]
        index = _index(texts)
        _CACHE[key] = index
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return index


def _quote_founded(quote: str, index: _Index, question: str) -> bool:
    needle = normalize(quote)
    squeezed = needle.replace("-", "").replace(" ", "")
    for hay in (*index.pages, normalize(question)):
        if needle in hay or squeezed in hay.replace("-", "").replace(" ", ""):
            return True
    return False


def find_unfounded(
    answer: str, corpus: Corpus, *, question: str = "", citations: list[Citation] | None = None
) -> list[Unfounded]:
    """The numbers, dates, codes and quoted strings of ``answer`` on no page of ``corpus``
    and not in ``question``, in the order they appear (see the module's docstring).

    Args:
        answer: the text to check.
        corpus: the documents it is about.
        question: the question asked (a fact the user gave is not the model's invention).
        citations: ``answer``'s checked citations, if known: a quotation already flagged
            by its citation is not flagged twice.
    """
    index = _corpus_index(corpus)
    asked = _index([question])
    skip = [(m.start(), m.end()) for m in _CITE_SPAN.finditer(answer)]
    skip += [(m.start(), m.end()) for m in _LIST_NUMBER.finditer(answer)]
    found: list[Unfounded] = []
    checked_quotes = {normalize(c.quote) for c in citations or [] if c.quote and c.quote_found is False}

    def inside(start: int, end: int) -> bool:
        return any(s <= start and end <= e for s, e in skip)

    for m in _QUOTED.finditer(answer):
        quote = m.group(1).strip()
        if len(quote) < 3 or inside(m.start(), m.end()):
            continue
        if normalize(quote) in checked_quotes:
            skip.append((m.start(), m.end()))
            continue
        if not _quote_founded(quote, index, question):
            found.append(Unfounded(m.start(), m.end(), quote, "quote"))
        skip.append((m.start(), m.end()))  # a quotation is checked whole, not token by token
    for start, end, day in _dates(answer):
        if inside(start, end):
            continue
        text = answer[start:end]
        if day not in index.days and day not in asked.days and normalize(text) not in normalize(question):
            found.append(Unfounded(start, end, text, "date"))
        skip.append((start, end))
    for m in _TOKEN.finditer(answer):
        token = m.group(0).rstrip(".,:")
        end = m.start() + len(token)
        if not _has_digit(token) or inside(m.start(), end):
            continue
        if canonical(token) in index.tokens or canonical(token) in asked.tokens:
            continue
        days = _numeric_dates(token)
        if days and days & (index.days | asked.days):
            continue
        kind = "date" if days else "number" if re.fullmatch(r"[\d,.%]+", token) else "code"
        found.append(Unfounded(m.start(), end, token, kind))
    return sorted(found, key=lambda u: u.start)


def check_answer(answer: str, corpus: Corpus, *, question: str = "") -> AnswerCheck:
    """Check ``answer``'s citations and facts against ``corpus`` (and ``question``)."""
    citations = check_citations(answer, corpus)
    return AnswerCheck(citations, find_unfounded(answer, corpus, question=question, citations=citations))


def flag_answer(answer: str, check: AnswerCheck, *, final: bool = True) -> str:
    """``answer`` with every problem ``check`` found marked in the text: failed citations
    (``flag_citations``), facts on no page, and (``final``) an answer that cites nothing.

    The flags are inserted from the end backwards so that every offset stays valid.
    """
    marks: list[tuple[int, str]] = [
        (c.end, f" [{FLAG} unverified: {c.problem}]") for c in check.citations if not c.ok
    ] + [(u.end, f" [{FLAG} on no page]") for u in check.unfounded]
    text = answer
    for at, mark in sorted(marks, key=lambda m: m[0], reverse=True):
        text = text[:at] + mark + text[at:]
    if final and check.cites_nothing and answer.strip():
        text = text.rstrip() + f" [{FLAG} unverified: {UNCITED}]"
    return text


def unfounded_detail(unfounded: list[Unfounded]) -> dict[str, Any]:
    """The facts on no page, for a step's ``detail`` (kept with the answer as stored)."""
    return {"unfounded": [asdict(u) for u in unfounded]}


def fact_tokens(text: str) -> list[str]:
    """The facts of ``text`` that hold a digit (numbers, amounts, dates, codes), as
    compared (``canonical``), in order, page markers left out."""
    text = _CITE_SPAN.sub(" ", text)
    return [canonical(t) for m in _TOKEN.finditer(text) if _has_digit(t := m.group(0).rstrip(".,:"))]


def fact_forms(text: str) -> set[str]:
    """Every form under which a fact of ``text`` founds a fact elsewhere (``HB-2024-117``
    also founds ``2024``), as ``find_unfounded`` compares them."""
    forms: set[str] = set()
    for m in _TOKEN.finditer(text):
        if _has_digit(m.group(0)):
            forms |= _token_forms(m.group(0))
    return forms
