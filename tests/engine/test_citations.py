"""Citation checks on real extracted page text: a PDF written with fpdf2, read back through
the real ingest path, then quotes checked exact, re-wrapped, hyphenated, on the wrong
page, invented, and pages that do not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.corpus import Corpus
from engine.ingest import read_documents
from engine.reading.citations import (
    FLAG,
    check_citations,
    citations_from_json,
    citations_to_json,
    flag_citations,
)
from engine.store import Store
from tests.conftest import write_pdf

# Long enough to wrap over several lines of the page, so extraction puts line breaks
# inside sentences that a model would quote on one line.
PARAGRAPH = (
    "The tenant shall keep the premises in good repair and shall return them at the end of "
    "the term in the same condition as at the start, fair wear and tear excepted, and the "
    "landlord may inspect the premises on reasonable notice during business hours."
)
# An explicit break after the hyphen puts "mainte-" at a line end and "nance" on the next.
HYPHENATED = "The harbor authority approved the annual mainte-\nnance budget of 41,200 euros for the pier."
OTHER = "Page two concerns the parking spaces, which are allotted by the harbor master each spring."


@pytest.fixture
def corpus(tmp_path: Path, store: Store) -> Corpus:
    pdf = write_pdf(tmp_path / "lease.pdf", [PARAGRAPH + "\n\n" + HYPHENATED, OTHER])
    docs, skipped = read_documents([pdf], store=store)
    assert not skipped
    return Corpus(tuple(docs))


def test_extracted_text_really_wraps_and_hyphenates(corpus: Corpus) -> None:
    # The cases below are only meaningful if extraction kept the line breaks and the hyphen.
    page = corpus.documents[0].pages[0].text
    assert PARAGRAPH not in page  # wrapped: line breaks where the sentence had spaces
    assert PARAGRAPH in " ".join(page.split())
    assert "mainte-" in page and "maintenance" not in page
    wrapped_lines = [line for line in page.splitlines() if line.strip()]
    assert len(wrapped_lines) >= 4


def test_exact_quote_is_verified(corpus: Corpus) -> None:
    answer = 'The lease says "fair wear and tear excepted" [lease.pdf p.1].'
    [c] = check_citations(answer, corpus)
    assert (c.document, c.page, c.exists, c.quote_found, c.ok) == ("lease.pdf", 1, True, True, True)


def test_quote_across_a_line_break_is_verified(corpus: Corpus) -> None:
    # Pick words that straddle a real line break of the extracted page.
    page = corpus.documents[0].pages[0].text
    first_line = page.splitlines()[0].split()
    second_line = page.splitlines()[1].split()
    assert first_line and second_line
    quote = " ".join(first_line[-3:] + second_line[:3])
    assert quote not in page  # the page has a newline there, the quote a space
    [c] = check_citations(f'It says "{quote}" [lease.pdf p.1].', corpus)
    assert c.quote_found is True and c.ok


def test_quote_of_a_hyphenated_word_is_verified(corpus: Corpus) -> None:
    [c] = check_citations('"approved the annual maintenance budget of 41,200 euros" [lease.pdf p.1]', corpus)
    assert c.quote_found is True and c.ok


def test_quote_on_the_wrong_page_is_flagged(corpus: Corpus) -> None:
    answer = 'The budget: "annual maintenance budget of 41,200 euros" [lease.pdf p.2].'
    [c] = check_citations(answer, corpus)
    assert c.exists and c.quote_found is False and not c.ok
    assert c.problem == "the quoted words are not on page 2 of lease.pdf"
    flagged = flag_citations(answer, [c])
    assert flagged == answer[: c.end] + f" [{FLAG} unverified: {c.problem}]" + answer[c.end :]


def test_invented_quote_is_flagged(corpus: Corpus) -> None:
    [c] = check_citations('"the landlord waives every inspection right" [lease.pdf p.1]', corpus)
    assert c.exists and c.quote_found is False and not c.ok


def test_page_that_does_not_exist_and_unknown_document_are_flagged(corpus: Corpus) -> None:
    answer = "See [lease.pdf p.7] and [contract.pdf p.1], but [lease.pdf p.2] is fine."
    cites = check_citations(answer, corpus)
    assert [(c.page, c.exists, c.ok) for c in cites] == [(7, False, False), (1, False, False), (2, True, True)]
    assert cites[0].problem == "lease.pdf has no page 7 (it has 2)"
    assert cites[1].problem == "there is no document called 'contract.pdf'"
    flagged = flag_citations(answer, cites)
    assert flagged.count(FLAG) == 2
    assert "[lease.pdf p.2] is fine" in flagged


def test_range_citation_checks_the_quote_on_every_page_of_the_range(corpus: Corpus) -> None:
    [c] = check_citations('"allotted by the harbor master" [lease.pdf p.1-2]', corpus)
    assert c.ok and c.last_page == 2
    [c] = check_citations('"allotted by the harbor master" [lease.pdf p.1]', corpus)
    assert not c.ok


def test_citations_round_trip_through_json(corpus: Corpus) -> None:
    cites = check_citations('"fair wear and tear excepted" [lease.pdf p.1] and [lease.pdf p.9]', corpus)
    assert citations_from_json(citations_to_json(cites)) == cites
    assert citations_from_json("") == []
