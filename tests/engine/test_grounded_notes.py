"""Grounded notes (issue 13 item 1): a wave's notes are its pages' own sentences, found
from where the model points; a note not on its page is dropped, counted, never carried.

Fast tests on real text documents and a real SQLite file with the fake backend; one slow
test reads a real PDF in waves with SmolLM2.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus, Document, make_pages
from engine.ingest import read_documents
from engine.library import Library
from engine.reading.notes import (
    NO_POINT_WORDS,
    first_note_end,
    ground_notes,
    locate,
    note_end,
    quoted_answer,
    sentences,
)
from engine.reading.waves import WaveReader, wave_pages
from engine.runtime.fake import FakeBackend
from engine.store import Store
from tests.conftest import fake_library, text_pages_file, write_pdf

CODE = "HB-2024/117-Q"
PAGES = [
    "The harbor office opens at dawn. Visitors sign in at the desk.",
    f"Section 4.\nThe archive access code is {CODE}, issued on March 3, 2024. Keep it secret.",
]


def _corpus() -> Corpus:
    return Corpus((Document("0" * 64, "h.md", "md", make_pages(PAGES)),))


def test_the_engine_copies_the_sentence_the_model_points_at() -> None:
    page = PAGES[1]
    assert [page[s:e] for s, e in sentences(page)] == [
        "Section 4.",
        f"The archive access code is {CODE}, issued on March 3, 2024.",
        "Keep it secret.",
    ]
    sentence = f"The archive access code is {CODE}, issued on March 3, 2024."
    # A sentence start, the whole sentence re-wrapped, or a start with the model's own
    # (wrong) ending: the page's sentence, byte for byte, whatever the model wrote after.
    assert locate("The archive access code", page) == sentence
    assert locate(f"the archive  access\ncode is {CODE}", page) == sentence
    assert locate("The archive access code is 1234567890", page) == sentence
    assert locate("The vault code is 1234567890", page) is None
    assert locate("Keep", page) is None  # too short to point at one place
    # Markdown's emphasis closing after the stop belongs to the sentence it closes.
    md = "**Rent and deposit.** Under **Section 4.2**, the rent was **$18,450.00**. Late."
    assert [md[s:e] for s, e in sentences(md)] == [
        "**Rent and deposit.**",
        "Under **Section 4.2**, the rent was **$18,450.00**.",
        "Late.",
    ]


def test_a_note_not_on_its_page_is_dropped_and_counted() -> None:
    raw = "\n".join(
        [
            "[h.md p.2] The archive access code is",  # on its page: kept, copied whole
            "[h.md p.1] The archive access code is",  # on another page than its marker: dropped
            "[h.md p.2] The secret code for the archive is 1234567890.",  # not on the page: dropped
            "The archive access code is",  # no marker: found on the wave's page 2 (a repeat)
            "[h.md p.7] Visitors sign in at the desk.",  # no such page: dropped
            "- [h.md p.1] Visitors sign in at the desk.",  # a bullet, kept
            "Nothing relevant.",  # not a note
        ]
    )
    grounded = ground_notes(raw, _corpus(), {("h.md", 1), ("h.md", 2)})
    assert grounded.notes == [
        f"[h.md p.2] The archive access code is {CODE}, issued on March 3, 2024.",
        "[h.md p.1] Visitors sign in at the desk.",
    ]
    assert (grounded.dropped, grounded.pointed) == (3, 6)
    # A page the wave did not read is not its page, even if the words are there.
    assert ground_notes("[h.md p.2] The archive access code is", _corpus(), {("h.md", 1)}).dropped == 1


def test_a_colon_does_not_cut_a_fact_from_its_sentence() -> None:
    # "X is: value" is one sentence: grounded by its words or by its fact, the note holds
    # both, and the answer quotes it (it was split at the colon: "The archive access code
    # is:" was carried without the code, and nothing followed the answer's prefix).
    page = f"Records.\nThe archive access code is: {CODE}. Keep it secret."
    corpus = Corpus((Document("1" * 64, "c.md", "md", make_pages([page])),))
    whole = f"[c.md p.1] The archive access code is: {CODE}."
    for raw in ("[c.md p.1] The archive access code is 1234567890", f"[c.md p.1] The code is {CODE}."):
        assert ground_notes(raw, corpus, {("c.md", 1)}).notes == [whole]
    assert quoted_answer("The archive access code is", [whole]) == f'"The archive access code is: {CODE}." [c.md p.1]'
    assert quoted_answer("The archive access code is", ["[c.md p.1] The archive access code is:"]) is None


def test_a_wave_note_ends_at_its_first_sentence_or_line() -> None:
    def first(text: str) -> str | None:
        cut = first_note_end(text)
        return None if cut is None else text[:cut]

    assert first("The archive access code is") is None  # still being written
    assert first("The archive access code is K7-1. It is used to") == "The archive access code is K7-1."
    assert first("The archive access code is:\n\n<document") == "The archive access code is:"
    # A marker or a bullet alone is not yet a note; a number's dot ends nothing.
    assert first("[h.md p.2]\nThe code is 3.5 units long.\nMore") == "[h.md p.2]\nThe code is 3.5 units long."
    assert first("1. The code") is None
    assert first("Nothing relevant.\nQuestion: What") == "Nothing relevant."


def _written(text: str, end_pages: set[tuple[str, int]]) -> str:
    # What a wave writes of ``text``, a piece at a time, until ``note_end`` cuts it.
    end = note_end(_corpus(), end_pages)
    for i in range(1, len(text) + 1):
        if (cut := end(text[:i])) is not None:
            return text[:i][:cut]
    return text


def test_a_note_that_can_point_at_nothing_is_cut_after_its_first_words() -> None:
    both = {("h.md", 1), ("h.md", 2)}
    rambling = (
        "The secret vault number is a function that allows the Python interpreter to read "
        "the contents of a file opened in binary mode."
    )
    cut = _written(rambling, both)
    # No start of it is on the pages and it names no fact: it stops after its first words
    # (it would be dropped), the rest is never written.
    assert cut.split()[:NO_POINT_WORDS] == rambling.split()[:NO_POINT_WORDS]
    assert len(cut.split()) == NO_POINT_WORDS + 1 and len(cut) < len(rambling) - 40
    # Words that start a sentence of a page point: the note goes on to its sentence's end.
    pointing = "Visitors sign in at the desk of the harbor office before they walk down to the pier today. More"
    assert _written(pointing, both) == pointing[: -len(" More")]
    # A fact may point by itself: a note that names one goes on too.
    dated = "The secret vault number was changed on March 3, 2024 by the harbor master at noon by hand. More"
    assert _written(dated, both) == dated[: -len(" More")]
    # The same words on pages the wave did not read point at nothing.
    assert len(_written(pointing, {("h.md", 2)}).split()) == NO_POINT_WORDS + 1
    # A first sentence ends a note as before.
    assert _written("The archive access code is K7-1. It is", both) == "The archive access code is K7-1."


def test_a_note_worded_otherwise_is_quoted_when_it_holds_the_words_in_order_and_a_fact() -> None:
    rent = "[f.md p.2] Under Section 4.2, the monthly Base Rent in effect at all relevant times was $18,450.00."
    others = [
        "[f.md p.3] Section 14.2 charges Base Rent, prorated on a thirty-day month.",  # no "monthly", no fact
        "[f.md p.4] The rent was paid monthly, and the base was 300 feet.",  # the words out of order
        "[f.md p.5] The monthly Base Rent rose sharply.",  # the words, but no fact after them
    ]
    assert quoted_answer("The monthly Base Rent was", [*others, rent]) == f'"{rent[11:]}" [f.md p.2]'
    assert quoted_answer("The monthly Base Rent was", others) is None
    # A name has no digit: only the prefix itself quotes it.
    assert quoted_answer("The chief archivist is", ["[a.md p.1] Our chief archivist, Miriam Okonkwo, retired."]) is None


# -- through the Library: waves store grounded notes and carry nothing else -------------

FILLER = "The harbor office checks the mooring lines every morning and logs the tides. "


@pytest.fixture
def library(home: Path, tmp_path: Path) -> Iterator[Library]:
    lib = fake_library(home, tmp_path, n_ctx=2048)
    yield lib
    lib.close()


def _handbook(library: Library, tmp_path: Path) -> tuple[Corpus, FakeBackend]:
    """Six pages of the handbook, the code on page 4, and the library's fake backend."""
    pages = [f"Page {i} of the handbook. " + FILLER * 30 for i in range(1, 7)]
    pages[3] = f"Page 4 of the handbook. The archive access code is {CODE}. " + FILLER * 29
    path = tmp_path / "handbook.txt"
    text_pages_file(path, pages)
    docs, _ = library.add_documents([path])
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)
    return Corpus(tuple(docs)), backend


def test_waves_carry_the_code_byte_for_byte_and_drop_invented_notes(tmp_path: Path, library: Library) -> None:
    corpus, backend = _handbook(library, tmp_path)

    def reply(prompt: str) -> str:
        if "passages copied from the documents" in prompt:
            return "The code is HB-2024/117-Q [handbook.txt p.4]."
        own = prompt.split("Passages kept")[0]
        if CODE in own:  # the wave reading page 4 points at the sentence, then invents
            return "[handbook.txt p.4] The archive access code is\n[handbook.txt p.4] The code is 1234567890."
        # Every other wave invents the code, as SmolLM2 did.
        first = own.rsplit("[handbook.txt p.", 1)[-1].split("]")[0]
        return f"[handbook.txt p.{first}] The secret access code for the archive is: 1234567890"

    backend.enqueue(*[reply] * 30)
    # Asked so that the answer does not start with the question's words: the final pass
    # runs (asked "What is the archive access code?", the answer quotes the note:
    # test_wave_parts.py).
    result = library.read_in_waves(corpus, "Which access code opens the archive?", note_tokens=32)
    waves = result.waves
    assert len(waves) >= 3
    holder = next(w for w in waves if ("handbook.txt", 4) in wave_pages(w))
    assert holder.text == f"[handbook.txt p.4] The archive access code is {CODE}."
    # A wave writes one note a part: it ends at its first line (notes.first_note_end), and
    # what the model would have written after it is not even generated.
    assert holder.detail["dropped_notes"] == 0 and holder.detail["pointed_notes"] == 1
    assert holder.detail["raw_notes"] == "[handbook.txt p.4] The archive access code is"
    for w in waves:
        if w is not holder:
            assert w.text == "Nothing relevant." and w.detail["dropped_notes"] == 1
            assert "1234567890" in w.detail["raw_notes"]  # what the model wrote is kept, not carried
    # Nothing invented reaches a later wave or the final pass; the code does, exactly.
    final = backend.prompts[-1].text
    assert "1234567890" not in "".join(p.text for p in backend.prompts)
    assert f"[handbook.txt p.4] The archive access code is {CODE}." in final
    assert result.answer == f"The code is {CODE} [handbook.txt p.4]." and result.unfounded == []
    # The count is shown: the stored step, the export.
    run = library.get_run(result.run_id)
    assert run is not None
    assert [w.detail["dropped_notes"] for w in run.waves] == [int(w.position != holder.position) for w in waves]
    assert "*1 note dropped: not found on its page.*" in library.export_markdown(result.session_id)


def test_wave_notes_begin_with_the_question_restated_and_the_model_writes_the_rest(
    tmp_path: Path, library: Library
) -> None:
    corpus, backend = _handbook(library, tmp_path)
    rambling = " a function that allows the harbor office to keep a record of every single visitor who comes in."

    def reply(prompt: str) -> str:
        own = prompt.split("Question:")[0]
        if CODE in own:
            return f" {CODE}. It is kept in the safe."
        if "[handbook.txt p.1]" in own:
            return " Nothing relevant."
        return rambling

    backend.enqueue(*[reply] * 30)
    result = library.read_in_waves(corpus, "What is the archive access code?", note_tokens=32)
    wave_prompts = [p.text for p in backend.prompts if "Write brief notes" in p.text]
    assert wave_prompts and all(p.endswith("<|im_start|>assistant\nThe archive access code is") for p in wave_prompts)
    holder = next(w for w in result.waves if ("handbook.txt", 4) in wave_pages(w))
    assert holder.detail["raw_notes"] == f"The archive access code is {CODE}."
    assert holder.text == f"[handbook.txt p.4] The archive access code is {CODE}."
    first = next(w for w in result.waves if ("handbook.txt", 1) in wave_pages(w))
    assert first.text == "Nothing relevant." and first.detail["pointed_notes"] == 0  # it said nothing
    others = [w for w in result.waves if w is not holder and w is not first]
    assert others
    for w in others:  # cut once they could point at nothing, then dropped
        raw = w.detail["raw_notes"]
        assert raw.startswith("The archive access code is a function") and not raw.endswith("comes in.")
        assert w.text == "Nothing relevant." and w.detail["dropped_notes"] == 1
    assert result.answer == f'"The archive access code is {CODE}." [handbook.txt p.4]'


@pytest.mark.slow
def test_a_real_small_model_carries_only_page_text(tmp_path: Path, store: Store, smollm2_path: Path) -> None:
    """SmolLM2 points; whatever it writes, every carried note is a sentence of its page,
    copied exactly, and a code it points at is carried byte for byte."""
    code_page = f"The archive access code is {CODE}. " + FILLER * 2
    pdf = write_pdf(tmp_path / "h.pdf", [FILLER * 3, code_page, FILLER * 3])
    docs, _ = read_documents([pdf], store=store)
    corpus = Corpus(tuple(docs))
    reader = WaveReader(store, smollm2_path, ReadSettings(n_ctx=1024, max_answer_tokens=32), max_note_tokens=48)
    try:
        result = reader.read(corpus, "What is the archive access code?")
    finally:
        reader.close()
    doc = corpus.documents[0]
    carried = [line for w in result.waves for line in w.text.splitlines() if line != "Nothing relevant."]
    for line in carried:
        marker, text = line.split("] ", 1)
        page = doc.page(int(marker.rsplit("p.", 1)[1]))
        assert page is not None and text in " ".join(page.text.split()), line
    # Greedy SmolLM2 notes the code's sentence here (seen: the note carried it exactly).
    assert f"[h.pdf p.2] The archive access code is {CODE}." in carried
    print(
        f"carried {carried!r}; dropped {[w.detail.get('dropped_notes') for w in result.waves]}; "
        f"raw {[w.detail.get('raw_notes') for w in result.waves]!r}; answer {result.answer!r}"
    )


# -- look before answering (issue 13 item 2) --------------------------------------------


def test_the_final_pass_reads_the_pages_it_looks_up_with_their_markers(tmp_path: Path, library: Library) -> None:
    pages = [f"Page {i} of the handbook. " + FILLER * 30 for i in range(1, 7)]
    pages[1] = "Page 2 of the handbook. The archive opens at 9:30. " + FILLER * 29
    pages[4] = f"Page 5 of the handbook. The archive access code is {CODE}. " + FILLER * 29
    path = tmp_path / "handbook.txt"
    text_pages_file(path, pages)
    docs, _ = library.add_documents([path])
    corpus = Corpus(tuple(docs))
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)

    def reply(prompt: str) -> str:
        if "read up to 3 pages again in full" in prompt:  # the look-up
            return "[handbook.txt p.5] [handbook.txt p.2] [handbook.txt p.9] [handbook.txt p.5]"
        if "passages copied from the documents" in prompt:  # after "The archive access code is"
            return f"{CODE} [handbook.txt p.5]."
        return "Nothing relevant."  # no wave keeps a note: the pages come from the look-up alone

    backend.enqueue(*[reply] * 30)
    result = library.read_in_waves(corpus, "What is the archive access code?", note_tokens=32)
    lookup, final = backend.prompts[-2].text, backend.prompts[-1].text
    assert "read up to 3 pages again in full" in lookup and "read up to 3" not in final
    # The pages named that exist, once each, whole, with their true markers, in the order named.
    page5 = f"[handbook.txt p.5]\n{docs[0].pages[4].text.strip()}"
    page2 = f"[handbook.txt p.2]\n{docs[0].pages[1].text.strip()}"
    assert page5 in final and page2 in final and final.index(page5) < final.index(page2)
    assert "p.9]" not in final.split("read again in full")[-1]
    run = library.get_run(result.run_id)
    assert run is not None and run.answer_step is not None
    detail = run.answer_step.detail
    assert (detail["looked_up"], detail["lookup_by"]) == (["handbook.txt p.5", "handbook.txt p.2"], "model")
    assert detail["lookup_tokens"] > 0
    markdown = library.export_markdown(result.session_id)
    assert "*Read again in full before answering: handbook.txt p.5, handbook.txt p.2 (named by the model).*" in markdown
    # The answer begins with the question's words restated (the answer prefix), then the model's.
    assert final.rstrip().endswith("The archive access code is")
    assert result.answer == f"The archive access code is {CODE} [handbook.txt p.5]."
    assert [c.ok for c in result.citations] == [True]


def test_looked_up_pages_fall_back_to_the_noted_pages_most_noted_first() -> None:
    from engine.reading.waves import looked_up_pages
    from engine.runs import Status, Step

    corpus = _corpus()
    notes = Step(1, 1, "wave", Status.DONE, text="[h.md p.2] A.\n[h.md p.1] B.\n[h.md p.2] C.")
    assert looked_up_pages("None.", corpus, [notes]) == ([(corpus.documents[0], 2), (corpus.documents[0], 1)], "notes")
    assert looked_up_pages("None.", corpus, []) == ([], "none")
    assert looked_up_pages("[h.md p.1]", corpus, [notes], limit=1) == ([(corpus.documents[0], 1)], "model")
