"""Grounded notes: the model points at passages of its pages, the engine copies them.

A wave's notes (engine/reading/waves.py) are carried to every later wave and to the final
answer, so a note in the model's own words carries its inventions forward as facts
(issue 13: four waves wrote "The secret access code for the archive is: 1234567890", a
number on no page). Here a note is only ever text of a page:

- the model writes notes, one per line, each with a page marker of its wave; every
  sentence of a note is one note; its page is the one its marker names, else the wave's
  page it is found on;
- the engine points for it: a note that names facts (numbers, dates, codes: the tokens
  ``engine/reading/facts.py`` checks) points at the sentences of its page that hold them
  all; a note without one, or whose facts are on no page of its own, points by its
  words, the whole note or its first words (at least ``MIN_POINT_WORDS``, of which
  ``MIN_POINT_CONTENT_WORDS`` are not common words: a quotation or a sentence start),
  matched with case, whitespace and end-of-line hyphenation folded as citations' quotes
  are. The sentences pointed at are copied exactly as the page has them, so a code or a
  date is carried byte for byte (whitespace aside: a note is one line), and a note
  "The archive access code is 1234567890" on a page saying 574354 carries the page's
  sentence, never the model's number;
- a note pointing at nothing on its page (its facts and its words are not there) or
  with a marker of a page this wave did not read is *dropped*: counted, never carried.
  The model's own words never reach a later wave.
- ``question_parts`` splits a question of several parts at its (English) question words;
  waves ask each part on its own (engine/reading/waves.py). Other languages are read as
  one question.

Why the engine points: asked to point itself (copy sentences word for word, write their
first six words, or give the numbers of numbered sentences), SmolLM2-135M found the
answer of 0, 0 and 1 of 8 questions and most of its pointers resolved to nothing; its
own notes, grounded here, carried 7 true sentences and dropped 11 with invented numbers
(benchmarks/pointing.py; the numbers are in that script's docstring).

Qt-free, pure functions of text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from engine.corpus import Corpus, Document, Page, page_marker
from engine.reading.citations import MARKER, normalize
from engine.reading.facts import fact_forms, fact_tokens
from engine.runtime.backend import EndFn

MIN_POINT_WORDS = 4
# Words that point: a pointer's words must hold at least this many words of four letters
# or more outside ``_COMMON`` ("The archive access code" has three; "It is used to" none:
# SmolLM2 wrote it and it matched an unrelated sentence, waves_scale.py 2x).
MIN_POINT_CONTENT_WORDS = 2
_COMMON = frozenset(
    "about also been before being both could does each from have here into just like made make many more most "
    "much must only other over same should some such than that their them then there these they this those "
    "used uses using very were what when where which while will with would your".split()
)
MAX_NOTE_CHARS = 600  # one note: a sentence or two, never a page
MAX_QUOTED = 3  # sentences an answer quoted from the notes gives at most
# A colon does not end a sentence: "The archive access code is: K7-482913." split there
# carried "The archive access code is:" (its words point) or "K7-482913." (its fact
# points), never both, and the quoted answer found nothing after its prefix.
# Markdown's emphasis may close after the stop ("**Rent and deposit.** Under ..."): it
# belongs to the sentence it closes.
_CLOSERS = "\"')]\u201d*_"
_SENTENCE_END = re.compile(r"(?<=[.!?;])[\"')\]\u201d*_]{0,3}\s+|\n+")


@dataclass(frozen=True)
class Grounded:
    """What grounding a wave's notes gave: the notes to carry and how many were dropped."""

    notes: list[str]  # "[name p.N] exact text of the page"
    dropped: int
    pointed: int  # notes the model wrote (lines that were not "nothing relevant")


def sentences(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the sentences of a page: split after ``. ! ? ;``
    followed by space, and at line breaks (tables, lists, headings)."""
    spans = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start() + (len(m.group(0)) - len(m.group(0).lstrip(_CLOSERS)))
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _normalized_units(text: str) -> tuple[str, list[tuple[int, int, int, int]]]:
    """The page normalized sentence by sentence, joined by spaces, with each sentence's
    (normalized start, normalized end, page start, page end)."""
    parts: list[str] = []
    units = []
    at = 0
    for s, e in sentences(text):
        norm = normalize(text[s:e])
        if not norm:
            continue
        units.append((at, at + len(norm), s, e))
        parts.append(norm)
        at += len(norm) + 1
    return " ".join(parts), units


def locate(pointer: str, page_text: str) -> str | None:
    """The exact sentences of ``page_text`` that ``pointer`` points at, or None.

    The whole pointer is looked for first, then its first 8, 6 and ``MIN_POINT_WORDS``
    words (a sentence start); the sentences the match falls in are copied from the page.
    """
    hay, units = _normalized_units(page_text)
    for needle in _needles(pointer):
        at = hay.find(needle)
        if at < 0:
            continue
        end = at + len(needle)
        hit = [u for u in units if u[0] < end and at < u[1]]
        if not hit:
            continue
        text = page_text[hit[0][2] : hit[-1][3]].strip()
        return text if len(text) <= MAX_NOTE_CHARS else text[:MAX_NOTE_CHARS].rsplit(" ", 1)[0] + " …"
    return None


def _needles(pointer: str) -> list[str]:
    """What ``locate`` looks for, normalized, in order: the whole pointer, then its first
    8, 6 and ``MIN_POINT_WORDS`` words, each holding ``MIN_POINT_CONTENT_WORDS`` content
    words ("It is used to" starts sentences on every page: it points nowhere)."""
    words = normalize(pointer.strip().strip("\"'\u201c\u201d").rstrip(".…").rstrip()).split()
    if len(words) < MIN_POINT_WORDS and len(" ".join(words)) < 12:
        return []  # too short to point at one place
    tries = [words] + [words[:k] for k in (8, 6, MIN_POINT_WORDS) if len(words) > k]
    return [" ".join(w) for w in tries if sum(1 for word in w if _is_content_word(word)) >= MIN_POINT_CONTENT_WORDS]


def ground_notes(raw: str, corpus: Corpus, pages: set[tuple[str, int]]) -> Grounded:
    """Resolve a wave's raw notes to exact text of its own pages.

    Each sentence the model wrote is one note. Its page is the one its line's marker
    names (it must be a page of this wave), else the wave's page where it is found. A
    note points by the facts it names (numbers, dates, codes: each must be on its page,
    and the sentences holding them are copied), else by its words (the whole note or its
    first words: ``locate``). A note with a fact on no page of its own, or whose words
    are not on its page, is dropped.

    Args:
        raw: what the model wrote.
        corpus: the documents (the true page texts).
        pages: the (document name, page number) pairs this wave read.

    Returns:
        the notes to carry, ``[name p.N] text`` with the page's own text, in the order
        written and without repeats, and how many notes were dropped.
    """
    notes: list[str] = []
    dropped = pointed = 0
    wave = [(d, p) for d in corpus.documents for p in d.pages if (d.name, p.number) in pages]
    single = corpus.documents[0] if len(corpus.documents) == 1 else None
    for marker, pointer in _note_units(raw):
        pointed += 1
        candidates = wave
        if marker is not None:
            name = (marker.group("name") or "").strip().strip('"')
            doc = corpus.find(name) if name else single
            number = int(marker.group("page"))
            candidates = [(d, p) for d, p in wave if doc is not None and d.name == doc.name and p.number == number]
        found = _point(pointer, candidates)
        if not found:
            dropped += 1
            continue
        for note in found:
            if note not in notes:
                notes.append(note)
    return Grounded(notes, dropped, pointed)


MAX_SENTENCES_PER_NOTE = 3
MIN_FACT_CHARS = 3  # "4" or "12" would point at too many sentences


def _point(pointer: str, candidates: list[tuple[Document, Page]]) -> list[str]:
    """The page sentences ``pointer`` points at on one of ``candidates``, as notes; empty
    when it points at nothing there.

    By its facts first: the first page that holds them all, the sentences that hold
    them. Else by its words (``locate``): a note whose words start a sentence of its page
    but whose fact is the model's own ("The archive access code is 1234567890", the page
    saying 574354) points at that sentence, and the page's fact is what is carried, never
    the model's. Measured (benchmarks/pointing.py's cases in waves of 1.5k tokens):
    SmolLM2 restates the question's words before a fact it often gets wrong, so this
    fallback is what carries the fact."""
    facts = [f for f in fact_tokens(pointer) if len(f) >= MIN_FACT_CHARS]
    if facts:
        for doc, page in candidates:
            spans = sentences(page.text)
            forms = [fact_forms(page.text[s:e]) for s, e in spans]
            hits: list[int] = []
            for fact in facts:
                where = next((i for i, f in enumerate(forms) if fact in f), None)
                if where is None:
                    hits = []
                    break  # a fact not on this page: the note is not about it
                if where not in hits:
                    hits.append(where)
            if hits:
                chosen = sorted(hits)[:MAX_SENTENCES_PER_NOTE]
                return [_note(doc, page, page.text[spans[i][0] : spans[i][1]]) for i in chosen]
    for doc, page in candidates:
        text = locate(pointer, page.text)
        if text is not None:
            return [_note(doc, page, text)]
    return []


def _note(doc: Document, page: Page, text: str) -> str:
    return f"{page_marker(doc.name, page.number)} {' '.join(text.split())}"


_NOTHING = re.compile(r"^\W*(nothing|no)\b[^.]{0,40}\b(relevant|information|mention)", re.IGNORECASE)


def says_nothing(text: str) -> bool:
    """Whether a note says that the pages say nothing of the question ("Nothing relevant.")."""
    return _NOTHING.match(text.strip()) is not None


# A model's note is cut at sentence ends only ("The code is: 574354" is one note).
_NOTE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\[])")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s*")


def _note_units(raw: str) -> list[tuple[re.Match[str] | None, str]]:
    """The notes of a wave's raw text: each sentence of each line, with the marker its
    line carries (None if none) and the text around the marker."""
    units: list[tuple[re.Match[str] | None, str]] = []
    for line in raw.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line or _NOTHING.match(line):
            continue
        marker = MARKER.search(line)
        if marker is not None:
            line = (line[: marker.start()] + " " + line[marker.end() :]).strip(" -:\u2013")
        for text in _NOTE_END.split(line):
            text = text.strip()
            if text and not _NOTHING.match(text):
                units.append((marker, text))
    return units


_PART_START = re.compile(
    r"(?:\s*[,;]\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+)"
    r"(?=(?:(?:on|in|at|for|by|from|to|with|since|until)\s+)?(?:what|when|where|who|whom|whose|which|why|how)\b)",
    re.IGNORECASE,
)
MAX_QUESTION_PARTS = 4
MIN_PART_WORDS = 3


def question_parts(question: str) -> list[str]:
    """The questions a question asks, one per part: "What is the code, on what date was the
    treaty signed, and who is the archivist?" asks three. Split at question marks and at
    a comma or "and" before a question word; at most ``MAX_QUESTION_PARTS`` (the rest
    stays with the last part). A question of one part is returned as it is.

    A wave writes notes for each part on its own: asked all three at once, SmolLM2 writes
    one run-on sentence that points at none of them (benchmarks/waves_scale.py's corpora)."""
    parts: list[str] = []
    for chunk in re.split(r"(?<=\?)\s+", question.strip()):
        parts += [p.strip(" ,;") for p in _PART_START.split(chunk) if p.strip(" ,;?")]
    if len(parts) <= 1 or any(len(p.split()) < MIN_PART_WORDS for p in parts):
        return [question.strip()]  # "Who signed it and when?": "When?" alone asks nothing
    if len(parts) > MAX_QUESTION_PARTS:
        parts = [*parts[: MAX_QUESTION_PARTS - 1], ", ".join(parts[MAX_QUESTION_PARTS - 1 :])]
    return [p[0].upper() + p[1:].rstrip("?") + "?" for p in parts]


_NOTE_STOP = re.compile(r"(?<=[.!?])\s|\n")
MIN_NOTE_WORDS = 2  # a marker or a bullet alone is not yet a note


def first_note_end(text: str) -> int | None:
    """Where the first note of a wave's raw notes ends (its first sentence or line), or
    None while it goes on: a wave writes one note per part of the question.

    The engine copies the page's sentence a note points at (``ground_notes``), so what a
    model writes after its first sentence is not read. Measured (benchmarks/waves_scale.py,
    2x, SmolLM2-135M): every wave wrote its whole 64-token budget, a first sentence (the
    part's words, then the page's fact or an invented one) followed by repeats of it and
    echoes of the prompt ("Question: ..."), which point at nothing; a second question spent
    most of its time writing them."""
    for m in _NOTE_STOP.finditer(text):
        head = _BULLET.sub("", MARKER.sub(" ", text[: m.start()]).strip())
        if len(re.findall(r"\w+", head)) >= MIN_NOTE_WORDS:
            return m.start()
    return None


# Words after which a note that points at nothing is cut (``note_end``).
NO_POINT_WORDS = 12
#: How a wave's note is begun and ended: part of the key of a note kept for reuse
#: (engine/reading/waves.py); change it when ``note_end`` or the notes' start changes.
NOTE_RULE = f"answer prefix; first sentence or line; {NO_POINT_WORDS} words pointing at nothing"


def note_end(corpus: Corpus, pages: set[tuple[str, int]]) -> EndFn:
    """Where a wave's note ends: at its first sentence or line (``first_note_end``), or
    as soon as it can point at nothing on the wave's ``pages``: ``NO_POINT_WORDS`` words
    written, none of ``locate``'s tries of them on any of those pages (no later word can
    make one match: each try is a prefix of the later ones) and no fact named. Its
    grounding would drop it (``ground_notes``); the words after it are not written.

    Measured (benchmarks/waves_scale.py, 2x): on the waves that do not hold the fact,
    SmolLM2-135M's notes are a sentence of its own ("The archive access code is a
    function that allows the Python interpreter to access the contents of a file that
    has been opened in binary mode."), up to 30 tokens each, all dropped."""
    hays = [_normalized_units(p.text)[0] for d in corpus.documents for p in d.pages if (d.name, p.number) in pages]

    def end(text: str) -> int | None:
        cut = first_note_end(text)
        if cut is not None:
            return cut
        units = _note_units(text)
        words = units[0][1].split() if units else []
        if len(words) <= NO_POINT_WORDS:  # the last word may be half written
            return None
        head = " ".join(words[:NO_POINT_WORDS])
        if any(len(f) >= MIN_FACT_CHARS for f in fact_tokens(head)):
            return None  # a fact points by itself (``_point``)
        if any(n in hay for hay in hays for n in _needles(head)):
            return None
        return len(text)

    return end


# The question's first sentence; its subject holds no comma (a second part) nor "?".
_COPULA = re.compile(r"^(?:what|who) (is|are|was|were) ([^?,;]+?)\s*(?:\?|$)", re.IGNORECASE)
_PASSIVE = re.compile(
    r"^(?:(?:on|in|at) what (?:date|day|year|month|time)|when) (is|are|was|were) ([^?,;]+) (\w+ed|\w+en)\s*(?:\?|$)",
    re.IGNORECASE,
)


def answer_prefix(question: str) -> str | None:
    """The first words of an answer to one English question, restated from it, or None:
    "What is the archive access code?" -> "The archive access code is"; "On what date was
    the harbor treaty signed?" -> "The harbor treaty was signed". RULER's prompts begin the
    answer this way (an answer prefix), so that the next words are the fact; the final pass
    of waves starts each part's answer with it (engine/reading/waves.py).

    Only the two question forms above: "Which ...", "How ..." and "Why ..." ask for
    something whose answer does not start with the question's words."""
    q = " ".join(question.split())
    if m := _COPULA.match(q):
        verb, subject = m.group(1).lower(), m.group(2)
    elif m := _PASSIVE.match(q):
        verb, subject = f"{m.group(1).lower()} {m.group(3)}", m.group(2)
    else:
        return None
    if len(subject.split()) < 2 or subject.lower().split()[0] in {"it", "this", "that", "there", "they", "he", "she"}:
        return None  # "Who is he?": no words of the document to restate
    subject = subject[0].upper() + subject[1:] if subject.split()[0].lower() in {"the", "a", "an"} else subject
    return f"{subject} {verb}"


def quoted_answer(prefix: str, notes: list[str], *, most: int = MAX_QUOTED) -> str | None:
    """The answer the kept notes give in the question's own words, quoted, or None.

    ``notes`` are grounded notes (``[name p.N] sentence``: page text, copied by the
    engine). A sentence of them that says ``prefix`` (``answer_prefix``: "The archive
    access code is") and goes on, or holds its content words in order and then a fact
    (``_says``), is the answer, quoted with its page's marker, so the
    citation checker verifies it: ``"The archive access code is K7-482913." [ledger.txt
    p.3]``. Up to ``most`` different sentences, in the notes' order (two pages that
    disagree both show). Measured: given that very note, SmolLM2-135M answered "The
    archive access code is a feature of the Python 3.7.1 release" (with the prefix or
    without), so where the notes say it, the engine quotes them."""
    want = normalize(prefix)
    quotes: list[str] = []
    seen: set[str] = set()
    for line in notes:
        m = MARKER.match(line)
        if m is None:
            continue
        marker = line[: m.end()]
        for sentence in _SENTENCE_END.split(line[m.end() :].strip()):
            said = normalize(sentence)
            if not _says(said, want):
                continue
            if said not in seen and len(quotes) < most:
                seen.add(said)
                quotes.append(f'"{sentence.strip()}" {marker}')
    return " ".join(quotes) or None


def _says(said: str, want: str) -> bool:
    """Whether a sentence (normalized) says what an answer prefix (normalized) asks: it
    holds the prefix and goes on; or, worded otherwise, it holds the prefix's content
    words in order (at least two) and a fact with a digit after the last of them: "Under
    Section 4.2, the monthly Base Rent in effect at all relevant times was $18,450.00."
    says "The monthly Base Rent was" (the sample filing; the exact prefix missed it)."""
    at = said.find(want)
    if at >= 0 and not (at and said[at - 1].isalnum()) and said[at + len(want) :].strip(" .,:;!?"):
        return True
    content = [w for w in want.split() if _is_content_word(w)]
    if len(content) < MIN_POINT_CONTENT_WORDS:
        return False
    words = said.split()
    i = 0
    for w in content:
        while i < len(words) and words[i].strip(".,:;!?\"'()") != w:
            i += 1
        if i == len(words):
            return False
        i += 1
    return any(len(f) >= MIN_FACT_CHARS for f in fact_tokens(" ".join(words[i:])))


def _is_content_word(word: str) -> bool:
    letters = "".join(c for c in word if c.isalnum())
    return len(letters) >= 4 and letters.lower() not in _COMMON


def quoted_line(detail: Mapping[str, object], question: str) -> str | None:
    """How many parts of the answer quote the kept passages (``quoted_answer``), for the
    CLI and the export; None when the model wrote every part."""
    quoted = detail.get("quoted_parts", 0)
    if not isinstance(quoted, int) or not quoted:
        return None
    parts = len(question_parts(question))
    return (
        f"Quoted from the passages kept while reading: {quoted} of {parts} part{'s' if parts != 1 else ''} of "
        f"the answer, checked against {'their pages' if quoted != 1 else 'its page'}; no model wrote "
        f"{'them' if quoted != 1 else 'it'}."
    )
