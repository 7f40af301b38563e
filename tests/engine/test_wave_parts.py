"""Waves that find what they are asked (issue 13, found rates): a wave writes notes for
each part of a question on its own, a note whose fact is the model's own points by its
words at the page's sentence, and waves take at most the model's measured reading span.

Fast tests on a real SQLite file and real text documents with the fake backend; the slow
test reads planted facts with SmolLM2.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.corpus import Corpus, Document, make_pages
from engine.library import Library
from engine.probe import SPREAD, TASKS, reading_span
from engine.reading.notes import answer_prefix, ground_notes, locate, question_parts
from engine.reading.waves import join_prefix, wave_pages
from engine.runtime.fake import FakeBackend
from tests.conftest import fake_library, put_probe_cell, text_pages_file

CODE = "K7-482913"
FACTS = {
    2: f"The archive access code is {CODE}.",
    5: "The harbor treaty was signed on 14 March 1987.",
    7: "The chief archivist is Miriam Okonkwo.",
}
QUESTION = "What is the archive access code, on what date was the harbor treaty signed, and who is the chief archivist?"
PARTS = [
    "What is the archive access code?",
    "On what date was the harbor treaty signed?",
    "Who is the chief archivist?",
]
FILLER = "The ledger lists the cargo of each ship that called at the port that season. "


@pytest.fixture
def library(home: Path, tmp_path: Path) -> Iterator[Library]:
    lib = fake_library(home, tmp_path, n_ctx=2048)
    yield lib
    lib.close()


def asked_part(prompt: str, parts: list[str]) -> str:
    """The part a prompt asks: its words, or (a map wave's) the words its note begins with."""
    return next((p for p in parts if p in prompt or prompt.endswith(answer_prefix(p) or "\0")), "")


def _corpus(library: Library, tmp_path: Path) -> Corpus:
    pages = [f"Page {i}. " + FILLER * 12 for i in range(1, 9)]
    for page, fact in FACTS.items():
        pages[page - 1] = f"Page {page}. " + FILLER * 6 + fact + " " + FILLER * 5
    path = tmp_path / "ledger.txt"
    text_pages_file(path, pages)
    docs, _ = library.add_documents([path])
    return Corpus(tuple(docs))


def _probe(library: Library, scores: dict[int, list[float]], *, task: str = "niah_single") -> None:
    """Store probe cells of ``task``: per length, one score per depth."""
    for length, by_depth in scores.items():
        for depth, score in zip((0.1, 0.5, 0.9), by_depth, strict=False):
            put_probe_cell(library, task, length, SPREAD if task == "cwe" else depth, score)


def test_a_question_of_several_parts_is_split_at_its_question_words() -> None:
    assert question_parts(QUESTION) == PARTS
    assert question_parts("What is the rent? When is it due?") == ["What is the rent?", "When is it due?"]
    assert question_parts("Which party won and why did the tribunal decide so?") == [
        "Which party won?",
        "Why did the tribunal decide so?",
    ]
    # One question, or a part that asks nothing alone: kept whole.
    assert question_parts("What is the archive access code?") == ["What is the archive access code?"]
    assert question_parts("How much was paid for the racking and the repairs?") == [
        "How much was paid for the racking and the repairs?"
    ]
    assert question_parts("Who signed it and when?") == ["Who signed it and when?"]


def test_an_answer_begins_with_its_questions_words_where_english_allows() -> None:
    assert [answer_prefix(p) for p in PARTS] == [
        "The archive access code is",
        "The harbor treaty was signed",
        "The chief archivist is",
    ]
    assert answer_prefix("What was the monthly Base Rent? Answer briefly.") == "The monthly Base Rent was"
    assert answer_prefix("When was the lease terminated?") == "The lease was terminated"
    # Nothing to restate, or an answer that would not start with the question's words.
    for question in ("Who is he?", "Which clause applies?", "How much was paid?", "Why did it fail?", QUESTION):
        assert answer_prefix(question) is None, question
    assert join_prefix("The code is", "K7-1 [a p.2].") == "The code is K7-1 [a p.2]."
    assert join_prefix("The code is", ": K7-1") == "The code is: K7-1"
    assert join_prefix("The code is", "") == "The code is"


def test_a_note_whose_fact_is_the_models_own_carries_the_pages_sentence() -> None:
    corpus = Corpus((Document("0" * 64, "h.md", "md", make_pages([f"Intro. {FACTS[2]} Keep it safe."])),))
    grounded = ground_notes("[h.md p.1] The archive access code is 1234567890.", corpus, {("h.md", 1)})
    assert grounded.notes == [f"[h.md p.1] {FACTS[2]}"]  # the page's code, not the model's
    assert grounded.dropped == 0
    # Common words point nowhere: "It is used to" starts sentences on every page.
    page = "It is used to encode text that holds some 8-bit characters. The archive access code is safe."
    assert locate("It is used to read the contents of a file.", page) is None
    assert locate("The archive access code is a method.", page) == "The archive access code is safe."
    # Words on no page still point at nothing: the note is dropped, its number never carried.
    lost = ground_notes("[h.md p.1] The vault combination is 1234567890.", corpus, {("h.md", 1)})
    assert (lost.notes, lost.dropped) == ([], 1)


def test_each_part_of_the_question_gets_its_own_notes_after_the_same_page_block(
    tmp_path: Path, library: Library
) -> None:
    corpus = _corpus(library, tmp_path)
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)
    asked: list[str] = []

    def reply(prompt: str) -> str:
        part = next(p for p in PARTS if p in prompt)
        asked.append(part)
        # The model restates the part, then invents: the engine points by the words.
        return {
            PARTS[0]: "The archive access code is 1234.\n\nQuestion: What is the archive access code?",
            PARTS[1]: "The harbor treaty was signed on 1 January 2000.",
            PARTS[2]: "The chief archivist is John Smith.",
        }[part]

    backend.enqueue(*[reply] * 200)
    result = library.read_in_waves(corpus, QUESTION, note_tokens=96, mode="carry")
    n = len(result.waves)
    assert n >= 2
    assert asked == PARTS * n  # every wave, every part, in order
    # Nothing the model invented is carried; each fact is carried by the wave that read it.
    carried = "\n".join(w.text for w in result.waves)
    for page, fact in FACTS.items():
        holder = next(w for w in result.waves if ("ledger.txt", page) in wave_pages(w))
        assert f"[ledger.txt p.{page}] {fact}" in holder.text
    for invented in ("1234.", "1 January 2000", "John Smith"):
        assert invented not in carried
    # A part's note ends at a blank line: the echo after it is not even written down.
    assert all("Question:" not in w.detail["raw_notes"] for w in result.waves)
    assert "The archive access code is 1234." in result.waves[0].detail["raw_notes"]
    # Carried onward part by part: a later wave asked for the code carries the code only.
    code_prompts = [p.text for p in backend.prompts if PARTS[0] in p.text and "passages copied" not in p.text]
    kept = code_prompts[-1].split("Passages kept")[1]
    assert FACTS[2] in kept and FACTS[5] not in kept and FACTS[7] not in kept
    # Each part's notes say it in the part's own words ("The archive access code is ..."):
    # the answer quotes them, verified on their pages, and runs neither look-up nor model.
    assert result.answer.split("\n\n") == [f'"{FACTS[p]}" [ledger.txt p.{p}]' for p in (2, 5, 7)]
    assert result.citations and all(c.ok and c.quote_found for c in result.citations)
    assert not [p for p in backend.prompts if "passages copied" in p.text]
    # The page block is read once per wave: the later parts read only their own tail.
    run = library.get_run(result.run_id)
    assert run is not None
    wave_prompts = [p for p in backend.prompts if "passages copied" not in p.text]
    for i, w in enumerate(run.waves):
        lengths = [len(p.tokens) for p in wave_prompts[3 * i : 3 * i + 3]]
        assert w.prefill_tokens is not None and w.prefill_tokens < sum(lengths)
        assert w.reused_tokens is not None and w.reused_tokens >= 2 * w.detail["block_tokens"]


def test_a_part_asked_before_over_the_same_pages_is_not_written_again(tmp_path: Path, library: Library) -> None:
    corpus = _corpus(library, tmp_path)
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)
    asked: list[str] = []

    def reply(prompt: str) -> str:
        part = asked_part(prompt, PARTS)
        asked.append(part)
        return {PARTS[0]: " 1234.", PARTS[1]: " on 1 January 2000.", PARTS[2]: " John Smith."}.get(part, "None.")

    backend.enqueue(*[reply] * 200)
    first = library.read_in_waves(corpus, PARTS[0], note_tokens=96, mode="map")
    n = len(first.waves)
    assert asked == [PARTS[0]] * n
    asked.clear()
    second = library.read_in_waves(corpus, QUESTION, note_tokens=96, mode="map")
    # The code's notes were kept with the first question's: each wave writes the other two.
    assert asked == PARTS[1:] * n
    for before, now in zip(first.waves, second.waves, strict=True):
        assert now.detail["kept_parts"] == 1 and now.detail["block"] == "snapshot"
        assert now.detail["part_notes"][0] == (before.text.splitlines() if before.text != "Nothing relevant." else [])
        assert now.detail["raw_notes"].startswith(before.detail["raw_notes"])
    holder = next(w for w in second.waves if ("ledger.txt", 2) in wave_pages(w))
    assert holder.detail["part_notes"][0] == [f"[ledger.txt p.2] {FACTS[2]}"]
    # Asked with another budget, a note that ended before both budgets still holds.
    asked.clear()
    third = library.read_in_waves(corpus, PARTS[0], note_tokens=48, mode="map")
    assert asked == [] and [w.detail["block"] for w in third.waves] == ["notes"] * n
    assert third.answer == first.answer == f'"{FACTS[2]}" [ledger.txt p.2]'
    # Clearing the snapshots forgets the kept notes too: the pages are read again.
    library.snapshots.clear()
    fourth = library.read_in_waves(corpus, PARTS[0], note_tokens=48, mode="map")
    assert asked == [PARTS[0]] * n and {w.detail["block"] for w in fourth.waves} == {"prefill"}


def test_without_snapshots_every_part_is_written_and_nothing_is_kept(home: Path, tmp_path: Path) -> None:
    from engine.config import ReadSettings

    model = tmp_path / "fake-model.gguf"
    model.write_bytes(b"not weights")
    backend = FakeBackend()
    library = Library(
        home / "longread.db",
        model_path=model,
        backend=backend,
        settings=ReadSettings(max_answer_tokens=32, n_batch=64, n_ctx=2048),
        use_snapshots=False,
    )
    try:
        corpus = _corpus(library, tmp_path)
        backend.enqueue(*[" nothing on this page."] * 200)
        for _ in range(2):  # asked twice: written twice
            result = library.read_in_waves(corpus, QUESTION, note_tokens=96, mode="map")
            assert {w.detail["block"] for w in result.waves} == {"prefill"}
            assert all(w.detail["kept_parts"] == 0 and (w.output_tokens or 0) > 0 for w in result.waves)
        assert library.store.query("SELECT COUNT(*) AS n FROM wave_notes") == [{"n": 0}]
    finally:
        library.close()


def test_parts_the_notes_do_not_say_in_their_own_words_are_answered_by_the_model_after_their_prefix(
    tmp_path: Path, library: Library
) -> None:
    corpus = _corpus(library, tmp_path)
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)
    question = "What is the archive access code, who signed the harbor treaty, and what is the chief archivist's name?"
    parts = ["What is the archive access code?", "Who signed the harbor treaty?", "What is the chief archivist's name?"]
    assert question_parts(question) == parts

    def reply(prompt: str) -> str:
        final = "passages copied from the documents" in prompt
        if final and question in prompt:
            return "[ledger.txt p.5]"  # the look-up
        part = asked_part(prompt, parts)
        if not final:  # a wave's notes: the engine points by their words at the pages' sentences
            return {
                parts[0]: "The archive access code is 1234.",
                parts[1]: "The harbor treaty was signed on 1 January 2000.",
                parts[2]: "The chief archivist is John Smith.",
            }[part]
        return {parts[1]: "The treaty was signed on 14 March 1987 [ledger.txt p.5].", parts[2]: "Miriam Okonkwo."}[part]

    backend.enqueue(*[reply] * 200)
    shown: list[str] = []
    result = library.read_in_waves(corpus, question, note_tokens=96, on_text=shown.append)
    finals = [p.text for p in backend.prompts if "passages copied" in p.text]
    # The look-up, then the two parts the notes do not say in their words; the first is quoted.
    assert len(finals) == 3 and question in finals[0]
    assert parts[1] in finals[1] and parts[2] in finals[2]
    assert finals[1].rstrip().endswith("assistant")  # "Who signed ...": no prefix to restate
    assert finals[2].rstrip().endswith("The chief archivist's name is")
    answer = [
        f'"{FACTS[2]}" [ledger.txt p.2]',
        "The treaty was signed on 14 March 1987 [ledger.txt p.5].",
        "The chief archivist's name is Miriam Okonkwo.",
    ]
    assert result.answer.split("\n\n") == answer
    assert "".join(shown).endswith("\n\n".join(answer))  # shown as it is kept
    run = library.get_run(result.run_id)
    assert run is not None and run.steps[-1].detail["quoted_parts"] == 1
    # The export says which way each part came (the CLI prints the same line).
    said = "Quoted from the passages kept while reading: 1 of 3 parts of the answer, checked against its page"
    assert f"*{said}; no model wrote it.*" in library.export_markdown(result.session_id)
    # A map wave asks a part its note restates by those words alone; a part with no words
    # to restate ("Who signed ...?") is asked as it was written.
    waves = [p.text for p in backend.prompts if "passages copied" not in p.text]
    assert len(waves) == 3 * len(result.waves)
    for text in waves[0::3]:
        assert text.endswith("The archive access code is") and parts[0] not in text
    assert all(parts[1] in text for text in waves[1::3])
    for text in waves[2::3]:
        assert text.endswith("The chief archivist's name is") and parts[2] not in text


def test_waves_take_the_measured_reading_span_and_the_answer_the_whole_window(home: Path, tmp_path: Path) -> None:
    library = fake_library(home, tmp_path, n_ctx=8192)
    corpus = _corpus(library, tmp_path)
    # Found at every depth at 2,048 tokens, missed at 10% depth at 4,096: a span of 2,048.
    _probe(library, {1024: [1.0, 1.0, 1.0], 2048: [1.0, 1.0, 1.0], 4096: [0.0, 1.0, 1.0]})
    cells = library.probe_cells()
    span = reading_span(cells, "f16")
    assert span is not None and span.tokens == 2048
    # Other tasks failing does not shorten the waves: they read for single facts.
    _probe(library, {1024: [0.0, 0.0, 0.0]}, task="vt")
    assert library.effective_context()["f16"].tokens == 0
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)
    backend.enqueue(*["Nothing relevant."] * 200)
    run_id = library.start_waves(corpus, "What is the archive access code?")
    assert "Waves of up to 2,048 tokens: the longest at which this model found a single fact" in (
        library.describe_waves(run_id)
    )
    result = library.resume(run_id)
    run = library.get_run(run_id)
    assert run is not None and run.settings["span"] == 2048 and run.settings["n_ctx"] == 8192
    wave_prompts = [p for p in backend.prompts if "passages copied" not in p.text]
    assert len(wave_prompts) == len(run.waves) >= 2
    assert all(len(p.tokens) + 96 <= 2048 for p in wave_prompts)  # a wave and its notes
    assert result.answer is not None
    library.close()


def test_a_page_larger_than_the_span_gets_a_wave_as_large_as_it_needs(home: Path, tmp_path: Path) -> None:
    library = fake_library(home, tmp_path, n_ctx=8192, wave_tokens=512)
    try:
        corpus = _corpus(library, tmp_path)  # pages of ~374 tokens: a 512-token wave holds none
        run_id = library.start_waves(corpus, "What is the archive access code?")
        run = library.get_run(run_id)
        assert run is not None and 512 < run.settings["span"] < 8192
        assert all(w.detail["planned_tokens"] < run.settings["span"] for w in run.waves)
    finally:
        library.close()


def test_no_measurement_or_a_span_of_zero_reads_waves_of_the_whole_window(home: Path, tmp_path: Path) -> None:
    for settings, says in (({}, "is not measured (longread probe --quick"), ({"wave_tokens": 0}, "the whole window.")):
        lib = fake_library(home, tmp_path, n_ctx=4096, **settings)
        try:
            corpus = _corpus(lib, tmp_path)
            if settings:  # measured, but set to the whole window
                _probe(lib, {1024: [1.0, 1.0, 1.0], 2048: [0.0, 1.0, 1.0]})
            run_id = lib.start_waves(corpus, "What is the archive access code?")
            run = lib.get_run(run_id)
            assert run is not None and run.settings["span"] == 4096
            assert says in lib.describe_waves(run_id)
        finally:
            lib.close()


def test_a_probe_that_fails_even_the_shortest_length_sets_no_span(library: Library) -> None:
    _probe(library, {1024: [0.0, 1.0, 1.0], 2048: [1.0, 1.0, 1.0]})
    assert reading_span(library.probe_cells(), "f16") is None
    assert reading_span(library.probe_cells(), "q8_0") is None  # never probed at q8_0
    assert TASKS[0] == "niah_single"


@pytest.mark.slow
def test_smollm2_reads_three_planted_facts_in_waves_of_its_reading_span(home: Path, tmp_path: Path) -> None:
    """Real prose (Python's own documentation, as the probe's haystacks), three facts on
    three pages of about 5,000 tokens, read in waves of 2,048 tokens (SmolLM2's measured
    reading span, docs/effective-context.md) in an 8,192 window. Greedy decoding: the
    same notes on every run of this build."""
    import random

    from engine.config import ReadSettings
    from engine.models.bundled import bundled_model_path
    from engine.probe import load_prose

    sentences = list(load_prose())
    random.Random(7).shuffle(sentences)
    pages = [" ".join(sentences[i * 14 : (i + 1) * 14]) for i in range(14)]
    for page, fact in ((3, FACTS[2]), (8, FACTS[5]), (12, FACTS[7])):
        words = pages[page - 1].split(". ")
        pages[page - 1] = ". ".join([*words[:5], fact.rstrip("."), *words[5:]])
    path = tmp_path / "ledger.txt"
    text_pages_file(path, pages)
    library = Library(
        home / "longread.db",
        model_path=bundled_model_path(),
        settings=ReadSettings(n_ctx=8192, max_answer_tokens=96, wave_tokens=2048),
    )
    try:
        docs, _ = library.add_documents([path])
        result = library.read_in_waves(Corpus(tuple(docs)), QUESTION, note_tokens=96)
        run = library.get_run(result.run_id)
        assert run is not None and run.settings["span"] == 2048 and len(result.waves) >= 3
        carried = "\n".join(w.text for w in result.waves)
        raw = "\n".join(str(w.detail.get("raw_notes")) for w in result.waves)
        found = [fact for fact in FACTS.values() if fact in carried]
        assert len(found) >= 2, f"carried {carried!r}; the model wrote {raw!r}"
        # Whatever the model invented is not carried: every carried line is page text.
        page_text = " ".join(pages)
        for line in carried.splitlines():
            if line != "Nothing relevant.":
                assert line.split("] ", 1)[1] in " ".join(page_text.split())
        # The answer has a paragraph per part. A part whose carried notes say it in its own
        # words quotes them (before quoting, given "The archive access code is K7-482913."
        # SmolLM2 answered "The archive access code is a feature of the Python 3.7.1
        # release"); the model's inventions elsewhere are flagged.
        paragraphs = [p for p in result.answer.split("\n\n") if p.strip()]
        assert len(paragraphs) == 3, result.answer
        for k, fact in enumerate(FACTS.values()):
            if fact in carried:
                assert paragraphs[k].startswith(f'"{fact}" [ledger.txt p.'), result.answer
        assert all(c.ok for c in result.citations if c.quote is not None), result.citations
        flat = " ".join(page_text.split())
        assert all(u.text not in flat for u in result.unfounded)
        # The code asked alone (the waves are laid out as before: same pages, same room for
        # notes). A note for it that ended within its part's budget was kept
        # (m011_wave_notes): that wave restores nothing and writes nothing; a note that ran
        # to the budget is written again, its block restored.
        again = library.read_in_waves(Corpus(tuple(docs)), PARTS[0], note_tokens=96)
        run_again = library.get_run(again.run_id)
        assert run_again is not None
        waves = run_again.waves
        assert [w.label for w in waves] == [w.label for w in result.waves]
        kept = [(w, before) for w, before in zip(waves, result.waves, strict=True) if w.detail["block"] == "notes"]
        assert kept and all(w.detail["block"] in ("notes", "snapshot") for w in waves), [w.detail for w in waves]
        for w, before in kept:
            assert (w.prefill_tokens or 0) + (w.output_tokens or 0) == 0
            assert (w.text.splitlines() if w.text != "Nothing relevant." else []) == before.detail["part_notes"][0]
        if FACTS[2] in carried:
            assert again.answer.startswith(f'"{FACTS[2]}" [ledger.txt p.'), again.answer
    finally:
        library.close()
