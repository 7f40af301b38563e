"""Long-term memory (issue 15) on the fake backend: the fast tier.

Real SQLite files and real text documents; the model is ``engine.runtime.fake`` (scripted
replies, recorded prompts). Entries for every kind of run, the memory block laid after the
corpus with dates in order, pinned entries in an unrelated session, the gauge's memory
segment against the prompt's tokens, what is left out when memory does not fit, the second
warm prefix and its exact invalidation, and forget meaning gone (no byte of the text left
in the database, its WAL, the snapshots or the export).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.corpus import Corpus
from engine.errors import Cancelled, CancelToken, EngineError
from engine.library import Library
from engine.memory import MEMORY_INTRO
from engine.runtime.fake import FakeBackend
from tests.conftest import fake_library, put_probe_cell, text_pages_file

QUESTION = "What is the vault access code?"
FILLER = "The harbor office checks the mooring lines every morning and logs the tides. "


def _page(i: int, fact: str = "") -> str:
    return f"Page {i} of the handbook. {fact} " + FILLER * 20


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def library(home: Path, tmp_path: Path, backend: FakeBackend) -> Iterator[Library]:
    lib = fake_library(home, tmp_path, backend=backend)
    yield lib
    lib.close()


def _corpus(library: Library, folder: Path, pages: list[str], name: str = "handbook.txt") -> Corpus:
    docs, skipped = library.add_documents([text_pages_file(folder / name, pages)])
    assert not skipped
    return Corpus(tuple(docs))


def _date(library: Library, entry_id: int, when: str) -> None:
    library.store.db.execute("UPDATE memories SET created_at = ? WHERE id = ?", [when, entry_id])
    library.store.db.conn.commit()


def test_every_kind_of_finished_run_leaves_one_entry(tmp_path: Path, library: Library, backend: FakeBackend) -> None:
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913."), _page(2)])
    shas = tuple(d.sha256 for d in corpus.documents)
    backend.enqueue("The code is 482913 [handbook.txt p.1].")
    asked = library.ask(corpus, QUESTION)
    backend.enqueue("P", "E", "H", "C", "It is 482913 [handbook.txt p.1].")
    thought = library.think(corpus, "Which code opens the vault?", step_tokens=16)
    waved = library.read_in_waves(corpus, "What does the harbor office check?", note_tokens=16)
    # A cancelled run is not finished: no entry.
    cancel = CancelToken()
    backend.enqueue(lambda _: (cancel.cancel(), "never")[1])
    with pytest.raises(Cancelled):
        library.ask(corpus, "Cancelled question?", cancel=cancel)

    entries = library.memory.entries()
    assert [(e.source, e.run_id) for e in entries] == [
        ("ask", asked.run_id),
        ("think", thought.run_id),
        ("waves", waved.run_id),
    ]
    for entry, result in zip(entries, (asked, thought, waved), strict=True):
        run = library.get_run(result.run_id)
        assert run is not None
        assert (entry.question, entry.answer) == (run.question, run.answer == result.answer and run.answer)
        assert entry.documents == shas and not entry.pinned and entry.date == run.finished_at[:10]  # type: ignore[index]
        assert [(c.document, c.page, c.ok) for c in entry.citations] == [
            (c.document, c.page, c.ok) for c in run.citations
        ]
    assert [(c.document, c.page, c.ok) for c in entries[0].citations] == [("handbook.txt", 1, True)]
    # Resuming a finished run does not remember it twice.
    library.resume(asked.run_id)
    assert len(library.memory.entries()) == 3


def test_memory_is_laid_after_the_corpus_oldest_first_and_dated(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913.")])
    backend.enqueue("ANSWER-ONE is 482913 [handbook.txt p.1].", "ANSWER-TWO about tides.")
    first = library.ask(corpus, "FIRST-QUESTION?")
    second = library.ask(corpus, "SECOND-QUESTION?")
    note = library.memory.add("I act for the tenant.", documents=[corpus.documents[0].sha256])
    [one, two, _] = [e.id for e in library.memory.entries()]
    # Dated out of creation order: the block follows the dates, not the ids.
    _date(library, one, "2026-03-04T10:00:00+00:00")
    _date(library, two, "2025-11-20T09:00:00+00:00")
    _date(library, note, "2026-01-15T08:00:00+00:00")

    library.ask(corpus, "THIRD-QUESTION?")
    text = backend.prompts[-1].text
    corpus_at = text.index("482913.")  # the page itself
    intro = text.index(MEMORY_INTRO.strip())
    at = [
        text.index(s)
        for s in (
            "[2025-11-20] The user asked: SECOND",
            "[2026-01-15] The user told you: I act",
            "[2026-03-04] The user asked: FIRST",
        )
    ]
    question = text.index("THIRD-QUESTION?")
    assert corpus_at < intro < at[0] < at[1] < at[2] < question
    assert "You answered: ANSWER-ONE is 482913 [handbook.txt p.1]. (checked citations: handbook.txt p.1)" in text
    # Stored with the run: the entries it carried.
    third = library.runs(library.sessions()[0].id)[-1]
    assert third.question == "THIRD-QUESTION?" and third.settings["memory_ids"] == [two, note, one]
    # The second question carried the first answer, not itself.
    assert second.run_id in library.store.query("SELECT run_id FROM memories WHERE id = ?", [two])[0].values()
    assert (
        "ANSWER-ONE" in backend.prompts[1].text
        and "SECOND-QUESTION" not in backend.prompts[1].text.split("Question:")[0]
    )
    assert first.run_id != second.run_id


def test_a_follow_up_reads_its_sessions_latest_answer_and_itself_and_saves_nothing(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    corpus = _corpus(
        library, tmp_path, [_page(i, "The vault access code is 482913." if i == 2 else "") for i in (1, 2)]
    )
    backend.enqueue("FIRST-ANSWER.", "FOLLOW-UP-ANSWER.")
    first = library.ask(corpus, "FIRST-QUESTION?")
    snapshots = [s.key for s in library.snapshots.list_snapshots()]
    prompt, _ = library.prepare_ask(corpus, "FOLLOW-UP?")
    follow = library.ask(corpus, "FOLLOW-UP?", session_id=first.session_id)

    # The first answer is the memory block's newest entry, read after the documents.
    text = backend.prompts[-1].text
    assert text.index("</document>") < text.index("FIRST-ANSWER.") < text.index("FOLLOW-UP?")
    assert follow.warm is not None and follow.warm.source == "context"
    assert follow.prefill.reused >= prompt.corpus_only_end  # no document token read again
    assert follow.prefill.evaluated == len(prompt.tokens) - follow.prefill.reused
    # No snapshot per question: the corpus + memory prefix is saved when a session opens.
    assert [s.key for s in library.snapshots.list_snapshots()] == snapshots
    assert first.session_id == follow.session_id


def test_pinned_entries_reach_an_unrelated_session_and_others_do_not(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    lease = _corpus(library, tmp_path, [_page(1, "The lease runs ten years.")], name="lease.txt")
    other = _corpus(library, tmp_path, [_page(1, "The boat is blue.")], name="boat.txt")
    backend.enqueue("LEASE-ANSWER ten years.")
    library.ask(lease, "How long is the lease?")
    library.memory.add("Answer in Russian.", pinned=True)
    library.memory.add("TIED-NOTE about the lease.", documents=[lease.documents[0].sha256])

    library.ask(other, "What colour is the boat?")
    text = backend.prompts[-1].text
    assert "The user told you: Answer in Russian." in text
    assert "LEASE-ANSWER" not in text and "TIED-NOTE" not in text
    # Unpinned, it stays away; with --no-memory nothing is carried at all.
    pinned = next(e for e in library.memory.entries() if e.pinned)
    with pytest.raises(EngineError, match="about no document"):
        library.memory.pin(pinned.id, False)
    library.use_memory(False)
    library.ask(lease, "How long is the lease?")
    assert MEMORY_INTRO.strip() not in backend.prompts[-1].text
    assert "LEASE-ANSWER" not in backend.prompts[-1].text


def test_the_gauge_memory_segment_is_the_prompts_memory_tokens(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913."), _page(2)])
    backend.enqueue("The code is 482913 [handbook.txt p.1].")
    library.ask(corpus, QUESTION)
    library.memory.add("I act for the landlord, not the tenant.", documents=[corpus.documents[0].sha256])

    measure = library.measure(corpus)
    assert len(measure.memory.included) == 2 and measure.memory_tokens > 0
    prompt, budget = library.prepare_ask(corpus, "Anything else?")
    library.ask(corpus, "Anything else?")
    recorded = backend.prompts[-1]
    assert list(recorded.tokens[: len(prompt.tokens)]) == prompt.tokens
    block = recorded.tokens[prompt.corpus_only_end : prompt.corpus_end]
    assert len(block) == measure.memory_tokens == budget.memory_tokens
    tokenizer = library.tokenizer()
    assert tokenizer.detokenize(list(block)).startswith(MEMORY_INTRO)
    # The plan counts the memory with the prompt: corpus + memory + frame + answer.
    assert measure.plan.needed_tokens >= measure.plan.corpus_tokens + measure.memory_tokens
    # Each entry's cost adds up to the block (the intro apart).
    intro = len(tokenizer.tokenize_text(MEMORY_INTRO))
    assert sum(measure.memory.costs.values()) + intro == measure.memory_tokens


def test_memory_that_does_not_fit_is_listed_and_the_user_picks(
    tmp_path: Path, home: Path, backend: FakeBackend
) -> None:
    library = fake_library(home, tmp_path, backend=backend, n_ctx=1536)
    try:
        corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913.")])
        sha = corpus.documents[0].sha256
        ids = [
            library.memory.add(f"Note {i}: " + "the tide was high that day " * 12, documents=[sha]) for i in range(8)
        ]
        for i, entry_id in enumerate(ids):
            _date(library, entry_id, f"2026-01-{10 + i:02d}T00:00:00+00:00")
        library.memory.pin(ids[0])
        prompt, budget = library.prepare_ask(corpus, QUESTION)
        memory = budget.memory
        assert memory.left_out and memory.included and budget.fits
        # The pinned one and the newest are kept; the oldest unpinned are shown as left out.
        kept = [e.id for e in memory.included]
        assert ids[0] in kept and ids[-1] in kept and ids[1] not in kept
        assert sorted(kept + [e.id for e in memory.left_out]) == sorted(ids)
        assert memory.reason == "the window" and f"#{ids[1]}" in memory.describe_left_out()
        assert prompt.memory_ids == tuple(kept)
        # The user's pick replaces the default choice.
        library.use_memory(True, pick=[ids[1], ids[2]])
        prompt, budget = library.prepare_ask(corpus, QUESTION)
        assert prompt.memory_ids == (ids[1], ids[2]) and {e.id for e in budget.memory.left_out} == set(ids) - {
            ids[1],
            ids[2],
        }
        assert budget.memory.reason == "not picked"
    finally:
        library.close()


def test_memory_beyond_the_measured_effective_context_is_left_out(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    from engine.probe import TASKS

    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913.")])
    sha = corpus.documents[0].sha256
    for i in range(6):
        library.memory.add(f"Note {i}: " + "the tide was high that day " * 12, documents=[sha])
    assert not library.prepare_ask(corpus, QUESTION)[1].memory.left_out  # the 8k window holds them
    # A probe that measured 1,024 tokens at f16: the block must stay inside it.
    for task in TASKS:
        for length, score in ((1024, 1.0), (2048, 0.0)):
            put_probe_cell(library, task, length, 0.5, score)
    assert library.effective_context()
    prompt, budget = library.prepare_ask(corpus, QUESTION)
    assert budget.memory.left_out and "effective context" in budget.memory.reason
    assert len(prompt) + budget.answer_tokens <= 1024


def test_corpus_and_memory_is_a_second_warm_prefix_invalidated_exactly(
    tmp_path: Path, home: Path, backend: FakeBackend
) -> None:
    library = fake_library(home, tmp_path, backend=backend)
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913."), _page(2)])
    sha = corpus.documents[0].sha256
    kept = library.memory.add("KEPT-NOTE: the tenant pays monthly.", documents=[sha])
    first = library.ask(corpus, QUESTION)
    assert first.warm is not None and first.warm.saved
    # Two corpus snapshots: the corpus alone, and the corpus + the memory block (beside
    # them, each document's own snapshot: issue 17).
    snaps = [s for s in library.snapshots.list_snapshots() if s.kind == "corpus"]
    prompt, _ = library.prepare_ask(corpus, QUESTION)
    assert sorted(s.n_tokens for s in snaps) == [
        prompt.corpus_only_end,
        first.budget.memory.n_tokens + prompt.corpus_only_end,
    ]
    holding = library.memory.snapshot_keys(kept)
    assert len(holding) == 1
    library.close()

    # A new library and model (the fake's vocabulary is kept, as a real model's is) with
    # the same memory restores it whole.
    loads = len(backend.loads)
    library = fake_library(home, tmp_path, backend=backend)
    try:
        library.use_memory(True, pick=[kept])
        again = library.ask(corpus, "Anything else?")
        assert again.warm is not None and again.warm.restored and again.prefill.evaluated < 20
        assert len(backend.loads) == loads + 1
        # A second entry and its own corpus + memory snapshot.
        other = library.memory.add("OTHER-NOTE: the landlord is late.", documents=[sha])
        library.use_memory(True, pick=[other])
        library.close_model()
        warmed = library.warm(corpus)  # opening a session: corpus restored, memory read and saved
        assert warmed.restored_tokens == prompt.corpus_only_end and warmed.saved
        [other_key] = library.memory.snapshot_keys(other)
        [kept_key] = library.memory.snapshot_keys(kept)
        kept_file = next(s.path for s in library.snapshots.list_snapshots() if s.key == kept_key)
        assert kept_file.is_file()

        # Editing KEPT removes exactly its snapshot: the file and the row; the other stays.
        library.memory.edit(kept, "KEPT-NOTE: the tenant pays weekly.")
        keys = {s.key for s in library.snapshots.list_snapshots()}
        assert kept_key not in keys and other_key in keys and not kept_file.exists()
        assert library.memory.snapshot_keys(kept) == []
        # The next read restores the corpus alone and reads only the new memory block.
        library.use_memory(True, pick=[kept])
        library.close_model()
        third = library.ask(corpus, "Weekly?")
        assert third.warm is not None and not third.warm.restored
        assert third.warm.restored_tokens == prompt.corpus_only_end
        assert "the tenant pays weekly" in library.backend.prompts[-1].text  # type: ignore[union-attr]
    finally:
        library.close()


def test_forget_means_gone(tmp_path: Path, home: Path, backend: FakeBackend) -> None:
    phrase = "zanzibar-quokka-7731"
    library = fake_library(home, tmp_path, backend=backend)
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913."), _page(2)])
    entry = library.memory.add(f"The client's password hint is {phrase}.", pinned=True)
    result = library.ask(corpus, QUESTION)
    assert phrase in backend.prompts[-1].text
    session = result.session_id
    assert phrase in library.export_markdown(session)
    assert [e.id for e in library.memory.search(phrase.split("-")[0])] == [entry]
    [key] = library.memory.snapshot_keys(entry)
    snapshot_file = next(s.path for s in library.snapshots.list_snapshots() if s.key == key)
    assert snapshot_file.is_file()

    library.memory.forget(entry)
    with pytest.raises(EngineError, match="no memory entry"):
        library.memory.get(entry)
    assert library.memory.search(phrase.split("-")[0]) == []
    assert phrase not in library.export_markdown(session)
    assert not snapshot_file.exists() and key not in {s.key for s in library.snapshots.list_snapshots()}
    rows = library.store.query("SELECT count(*) AS n FROM memories_fts WHERE memories_fts MATCH ?", ['"zanzibar"'])
    assert rows[0]["n"] == 0
    library.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    library.close()

    # Not one byte of it anywhere in the data folder: the database, its WAL, snapshots.
    files = [p for p in [*home.rglob("*"), *tmp_path.rglob("*.ini")] if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any(p.suffix == ".kv" for p in files)
    for path in files:
        data = path.read_bytes()
        for form in (phrase.encode(), phrase.encode("utf-16-le"), b"zanzibar"):
            assert form not in data, path
    # The store is whole after the scrub.
    conn = sqlite3.connect(home / "longread.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_user_entries_are_checked_and_edited(tmp_path: Path, library: Library) -> None:
    corpus = _corpus(library, tmp_path, [_page(1)])
    with pytest.raises(EngineError, match="needs some text"):
        library.memory.add("   ", pinned=True)
    with pytest.raises(EngineError, match="no session would carry it"):
        library.memory.add("Floating note.")
    entry = library.memory.add("Answer in Russian.", documents=[corpus.documents[0].sha256])
    library.memory.pin(entry)
    assert library.memory.get(entry).pinned
    library.memory.edit(entry, "Answer in French.")
    assert library.memory.get(entry).answer == "Answer in French."
    with pytest.raises(EngineError, match="forget it instead"):
        library.memory.edit(entry, "")
    with pytest.raises(EngineError, match="no memory entry 999"):
        library.memory.forget(999)
    assert json.loads(json.dumps([e.id for e in library.memory.entries()])) == [entry]
