"""The filter on every answer (issue 13 item 5): numbers, dates, codes and quotations on
no page are flagged inline and listed; an answer that cites nothing is unverified.

Fast tests on real text documents with the fake backend (ask, think, waves, the CLI's
listing, the export); one slow test asks the real SmolLM2 about the bundled sample.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus, Document, make_pages
from engine.library import Library
from engine.reading.citations import FLAG
from engine.reading.facts import AnswerCheck, check_answer, find_unfounded, flag_answer
from engine.runtime.fake import FakeBackend
from tests.conftest import fake_library, text_pages_file

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "resources" / "sample" / "harbor-lease-dispute.md"
PAGES = [
    "The rent is $1,250,000.00, due on March 15, 2024. The permit is HB-2024-117.",
    "The vault access code is 574354. Interest runs at 6.5% per annum from the 3rd of May.",
]


def _corpus() -> Corpus:
    return Corpus((Document("0" * 64, "lease.md", "md", make_pages(PAGES)),))


def _texts(answer: str, *, question: str = "") -> list[str]:
    return [u.text for u in find_unfounded(answer, _corpus(), question=question)]


def test_facts_on_a_page_pass_and_invented_ones_are_flagged() -> None:
    # On a page, whatever the spelling: grouping, another date format, part of a code.
    assert _texts("Rent 1250000 (1,250,000.00) from 15 March 2024 = 2024-03-15; permit HB-2024-117, 6.5%.") == []
    assert _texts("The code is 574354 [lease.md p.2]; the year 2024 [lease.md p.1].") == []
    # Invented: a number, a truncated code, another day, a code, a quotation.
    answer = 'Code 1234567890, or 57435, on March 16, 2024, ref AB-77, "the tenant waived everything".'
    assert _texts(answer) == ["1234567890", "57435", "March 16, 2024", "AB-77", "the tenant waived everything"]
    # A number the user gave in the question is not the model's invention.
    assert _texts("Yes, 1234567890 is not the code.", question="Is the code 1234567890?") == []
    # Page markers and list numbers are not facts.
    assert _texts("1. The code [lease.md p.2].\n2) The permit [lease.md p.1].") == []


def test_flags_are_inline_and_listed_and_an_uncited_answer_is_unverified() -> None:
    answer = "The award reference code is 1234567890."
    check = check_answer(answer, _corpus())
    assert check.cites_nothing and not check.ok
    assert flag_answer(answer, check) == (
        f"The award reference code is 1234567890 [{FLAG} on no page]. "
        f"[{FLAG} unverified: it cites no page, so nothing in it was checked against the documents]"
    )
    assert check.problems() == [
        "Unverified answer: it cites no page, so nothing in it was checked against the documents.",
        'Not in the documents: "1234567890" (this number is on no page of the documents).',
    ]
    # A failed citation and a fact on no page, flagged in one pass with offsets intact.
    answer = "It is 574354 [lease.md p.9] and 99 [lease.md p.2]."
    check = check_answer(answer, _corpus())
    assert flag_answer(answer, check) == (
        f"It is 574354 [lease.md p.9] [{FLAG} unverified: lease.md has no page 9 (it has 2)] "
        f"and 99 [{FLAG} on no page] [lease.md p.2]."
    )
    good = check_answer("The code is 574354 [lease.md p.2].", _corpus())
    assert good.ok and good.problems() == [] and AnswerCheck(good.citations).problems(final=False) == []


# -- every way of reading, through the Library on the fake backend --------------------


@pytest.fixture
def library(home: Path, tmp_path: Path) -> Iterator[Library]:
    lib = fake_library(home, tmp_path, n_ctx=2048)
    yield lib
    lib.close()


def _add(library: Library, folder: Path) -> Corpus:
    path = folder / "lease.txt"
    text_pages_file(path, PAGES)
    docs, _ = library.add_documents([path])
    return Corpus(tuple(docs))


def test_ask_think_and_waves_all_flag_the_invented_code(tmp_path: Path, library: Library) -> None:
    corpus = _add(library, tmp_path)
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)
    invented = "The award reference code is 1234567890."
    question = "What is the award reference code?"

    backend.enqueue(invented)
    asked = library.ask(corpus, question)
    assert [u.text for u in asked.unfounded] == ["1234567890"]
    backend.enqueue("P", "E", "H", "C", invented)
    thought = library.think(corpus, question, step_tokens=16)
    assert [u.text for u in thought.unfounded] == ["1234567890"]
    backend.enqueue(
        *[lambda prompt: invented if "passages copied from the documents" in prompt else "Nothing relevant."] * 9
    )
    waved = library.read_in_waves(corpus, question, note_tokens=16)
    assert [u.text for u in waved.unfounded] == ["1234567890"]

    # Kept with the stored answer step, and shown flagged and listed in the export.
    for result in (asked, thought, waved):
        run = library.get_run(result.run_id)
        assert run is not None and run.answer_step is not None
        assert [u["text"] for u in run.answer_step.detail["unfounded"]] == ["1234567890"]
    markdown = library.export_markdown(asked.session_id)
    assert f"1234567890 [{FLAG} on no page]" in markdown
    assert '> \u26a0 Not in the documents: "1234567890"' in markdown
    assert "Unverified answer: it cites no page" in markdown

    # A grounded answer passes.
    backend.replies.clear()
    backend.enqueue("The vault access code is 574354 [lease.txt p.2].")
    good = library.ask(corpus, "What is the vault access code?", session_id=asked.session_id)
    assert good.answer.startswith("The vault") and good.unfounded == [] and [c.ok for c in good.citations] == [True]


def test_the_cli_lists_facts_on_no_page(tmp_path: Path, library: Library, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import _report

    corpus = _add(library, tmp_path)
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)
    backend.enqueue("It is 1234567890 [lease.txt p.2].")
    _report(library.ask(corpus, "What is the code?"))
    err = capsys.readouterr().err
    assert 'Not in the documents: "1234567890" (this number is on no page of the documents).' in err
    assert "Unverified answer" not in err  # it cites a page


@pytest.mark.slow
def test_a_real_small_model_inventing_a_code_is_flagged(home: Path, smollm2_path: Path) -> None:
    """The fixture run answered "The award reference code is 1234567890" (32 tokens):
    whatever the model says now, any number of its answer on no page is flagged, and the
    numbers that are on a page are not."""
    with Library(
        home / "longread.db", model_path=smollm2_path, settings=ReadSettings(max_answer_tokens=32), use_snapshots=False
    ) as library:
        docs, _ = library.add_documents([SAMPLE])
        corpus = Corpus(tuple(docs))
        result = library.ask(corpus, "What is the award reference code?")
    page_text = "\n".join(p.text for p in corpus.documents[0].pages)
    flagged = {u.text for u in result.unfounded}
    for number in re.findall(r"\d[\d,.]*\d|\d", result.answer):
        on_page = re.search(rf"(?<![\w]){re.escape(number)}(?![\w])", page_text) is not None
        if on_page:
            assert number not in flagged, (number, result.answer)
        elif not any(number in f for f in flagged):
            pytest.fail(f"{number!r} is on no page and was not flagged: {result.answer!r}")
    if "1234567890" in result.answer:
        assert "1234567890" in flagged
    print(f"SmolLM2 answered: {result.answer!r}; flagged: {sorted(flagged)}")
