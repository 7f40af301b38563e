"""Warm waves and map mode (issue 13 items 3 and 4).

Warm waves: each wave's prompt is its instructions and pages first (the page block, the
same for every question), then the notes and the question; the block is kept as a KV
snapshot under engine/warm.py's key discipline, so a second question restores every
block and evaluates only the notes, the question and the instructions after them.
Map mode: waves carry no notes; each reads its pages and the question once; one reduce
pass answers from every note; on a runtime with several slots the waves run at once.

Fast: real text documents, a real SQLite file, the fake backend (its snapshots are real
files of token ids, checked as llama.cpp's are). The real-model tests are in
tests/engine/test_warm_waves_real.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.corpus import Corpus, Document
from engine.errors import ContextOverflowError
from engine.library import Library
from engine.reading.waves import WAVE_ASK, WaveMode, WaveReader, model_slots, wave_pages
from engine.runs import RunKind, Status, Step
from engine.runtime.backend import LoadSettings
from engine.runtime.fake import FakeBackend, FakeModel
from tests.conftest import fake_library, text_pages_file

FILLER = "The harbor office checks the mooring lines every morning and logs the tides. "
Q1 = "What is the archive access code?"
Q2 = "When does the archive open?"
WAVE_PROMPT = "Write brief notes on the pages above"


@pytest.fixture
def library(home: Path, tmp_path: Path) -> Iterator[Library]:
    lib = fake_library(home, tmp_path, n_ctx=2048)
    yield lib
    lib.close()


def _pages(tag: str, n: int) -> list[str]:
    """``n`` pages of about 1,000 fake tokens: one page per wave of a 2,048 window."""
    return [f"{tag} page {i} opens the chapter. " + FILLER * 40 for i in range(1, n + 1)]


def _add(library: Library, path: Path, pages: list[str]) -> Document:
    text_pages_file(path, pages)
    docs, skipped = library.add_documents([path])
    assert not skipped
    return docs[0]


def _point_at_first_sentence(prompt: str) -> str:
    """A wave's reply: a pointer at the first sentence of its (last) page, which the
    engine grounds and carries; any other prompt gets a plain answer."""
    if WAVE_PROMPT not in prompt:
        return "The documents do not say."
    own = prompt.split("Question:")[0]
    marker, text = own.rsplit("[", 1)[-1].split("]\n", 1)
    return f"[{marker}] {text.split('. ')[0]}."


def _fake(library: Library) -> FakeBackend:
    backend = library.lane.backend
    assert isinstance(backend, FakeBackend)
    return backend


def _waves(library: Library, run_id: int) -> list[Step]:
    run = library.get_run(run_id)
    assert run is not None and run.status is Status.DONE
    return run.waves


def test_a_second_question_restores_every_wave_block(tmp_path: Path, library: Library) -> None:
    doc = _add(library, tmp_path / "handbook.txt", _pages("Handbook", 5))
    corpus = Corpus((doc,))
    backend = _fake(library)
    backend.enqueue(*[_point_at_first_sentence] * 40)

    first = library.read_in_waves(corpus, Q1, note_tokens=32, mode=WaveMode.CARRY)
    cold = _waves(library, first.run_id)
    assert len(cold) == 5
    for w in cold:
        assert w.detail["block"] == "prefill" and w.detail["block_saved"] is True, w.detail
        assert w.detail["block_bytes"] > 0
    # One snapshot per wave, each of exactly that wave's block.
    rows = library.snapshots.list_snapshots()
    assert sorted(r.n_tokens for r in rows) == sorted(w.detail["block_tokens"] for w in cold)

    backend.prompts.clear()
    second = library.read_in_waves(corpus, Q2, note_tokens=32, mode=WaveMode.CARRY, session_id=first.session_id)
    warm = _waves(library, second.run_id)
    assert [w.label for w in warm] == [w.label for w in cold]  # the same waves for another question
    wave_prompts = [p for p in backend.prompts if WAVE_PROMPT in p.text]
    assert len(wave_prompts) == len(warm)
    for i, (w, recorded) in enumerate(zip(warm, wave_prompts, strict=True)):
        block = w.detail["block_tokens"]
        assert w.detail["block"] == "snapshot", w.detail
        # Evaluated now: the restore's check token (the block's last) and what follows the
        # block (the question and the notes); every page token, and the instructions
        # (before the pages and what to write after them), came from the snapshot.
        assert w.prefill_tokens == w.prompt_tokens - block + 1
        assert w.reused_tokens == block - 1
        restored = backend.vocabulary.decode(recorded.tokens[:block])
        assert restored.rstrip().endswith(WAVE_ASK.strip()) and FILLER.strip() in restored
        after = backend.vocabulary.decode(recorded.tokens[block : w.prompt_tokens])
        assert Q2 in after and WAVE_PROMPT not in after and FILLER.strip() not in after
        if i > 0:  # the notes carried from the waves before are in the evaluated part
            assert f"[handbook.txt p.{i}] Handbook page {i} opens the chapter." in after
    # Nothing new was saved; every snapshot was used.
    assert len(library.snapshots.list_snapshots()) == len(rows)


def test_map_mode_restores_the_blocks_carry_mode_saved(tmp_path: Path, library: Library) -> None:
    """The instructions and pages are the same in both modes: one set of snapshots."""
    corpus = Corpus((_add(library, tmp_path / "handbook.txt", _pages("Handbook", 3)),))
    _fake(library).enqueue(*[_point_at_first_sentence] * 20)
    first = library.read_in_waves(corpus, Q1, note_tokens=32, mode=WaveMode.CARRY)
    second = library.read_in_waves(corpus, Q2, note_tokens=32, mode=WaveMode.MAP, session_id=first.session_id)
    assert [w.detail["block"] for w in _waves(library, second.run_id)] == ["snapshot"] * 3


def test_changing_one_document_invalidates_only_its_waves(tmp_path: Path, library: Library) -> None:
    a = _add(library, tmp_path / "a.txt", _pages("Alpha", 2))
    b = _add(library, tmp_path / "b.txt", _pages("Beta", 2))
    c = _add(library, tmp_path / "c.txt", _pages("Gamma", 2))
    _fake(library).enqueue(*[_point_at_first_sentence] * 60)
    first = library.read_in_waves(Corpus((a, b, c)), Q1, note_tokens=32)
    before = _waves(library, first.run_id)
    assert [w.label for w in before] == ["a.txt p.1", "a.txt p.2", "b.txt p.1", "b.txt p.2", "c.txt p.1", "c.txt p.2"]

    # b.txt changes on its second page: only the wave that reads that page is read again.
    changed = _pages("Beta", 2)
    changed[1] = "Beta page 2 was rewritten. " + FILLER * 40
    b2 = _add(library, tmp_path / "b.txt", changed)
    assert b2.sha256 != b.sha256
    second = library.read_in_waves(Corpus((a, b2, c)), Q2, note_tokens=32)
    sources = {w.label: w.detail["block"] for w in _waves(library, second.run_id)}
    assert sources == {
        "a.txt p.1": "snapshot",
        "a.txt p.2": "snapshot",
        "b.txt p.1": "snapshot",  # its page is unchanged: the block's tokens are the same
        "b.txt p.2": "prefill",
        "c.txt p.1": "snapshot",
        "c.txt p.2": "snapshot",
    }

    # Removing b.txt: the waves of a.txt and c.txt are the same waves, all restored.
    third = library.read_in_waves(Corpus((a, c)), "Who keeps the keys of the archive?", note_tokens=32)
    assert [w.detail["block"] for w in _waves(library, third.run_id)] == ["snapshot"] * 4
    # Asked again, their notes were kept (m011_wave_notes): no page block is even restored,
    # nothing is read or written.
    fourth = library.read_in_waves(Corpus((a, c)), Q2, note_tokens=32)
    waves = _waves(library, fourth.run_id)
    assert [w.detail["block"] for w in waves] == ["notes"] * 4
    assert [(w.prefill_tokens, w.output_tokens, w.detail["kept_parts"]) for w in waves] == [(0, 0, 1)] * 4
    assert [w.text for w in waves] == [w.text for w in _waves(library, second.run_id) if w.label[0] != "b"]


def test_small_documents_share_waves_and_large_ones_have_their_own(tmp_path: Path, library: Library) -> None:
    small = [_add(library, tmp_path / f"note{i}.txt", [f"Note {i}. " + FILLER * 3]) for i in range(3)]
    big = _add(library, tmp_path / "big.txt", _pages("Big", 2))
    reader = WaveReader(library.store, library.model_path, library.settings, lane=library.lane, use_snapshots=False)
    plans = reader.plan(Corpus((small[0], small[1], big, small[2])), Q1).waves
    assert [p.label for p in plans] == ["note0.txt p.1; note1.txt p.1", "big.txt p.1", "big.txt p.2", "note2.txt p.1"]


def test_the_waves_do_not_depend_on_the_question_and_a_long_one_is_refused(tmp_path: Path, library: Library) -> None:
    corpus = Corpus((_add(library, tmp_path / "handbook.txt", _pages("Handbook", 4)),))
    reader = WaveReader(library.store, library.model_path, library.settings, lane=library.lane, use_snapshots=False)
    short = reader.plan(corpus, "Code?")
    longer = reader.plan(corpus, Q1 + " Give it exactly as printed, with its page, and say who issued it and when.")
    assert short == longer
    with pytest.raises(ContextOverflowError, match="question is too long to read in waves"):
        reader.plan(corpus, "Why? " * 400)


def test_the_estimate_states_both_costs_and_the_snapshot_bytes(tmp_path: Path, library: Library) -> None:
    reader = WaveReader(
        library.store, library.model_path, library.settings, lane=library.lane, snapshots=library.snapshots
    )
    est = reader.estimate(40_000, n_pages=40, speed=None, answer_tokens=64)
    assert est.next_seconds is not None and est.next_seconds < est.seconds
    # A next question still writes every wave's notes and the answer (snapshots save reading only).
    assert est.next_seconds > (est.n_waves * reader.max_note_tokens + 64) / 10.0
    per_token = library.lane.info.kv_bytes_per_token("f16", "f16")
    assert est.snapshot_bytes >= 40_000 * per_token
    text = est.describe()
    assert text.startswith(f"first question {est.about}, each next one about ")
    assert " of snapshots at f16 (" in text
    assert "snapshot budget" not in text
    # Blocks beyond the disk budget: the estimate says so, and the next question costs more.
    library.snapshots.set_budget_bytes(est.snapshot_bytes // 2)
    tight = reader.estimate(40_000, n_pages=40, speed=None, answer_tokens=64)
    assert tight.next_seconds is not None and est.next_seconds < tight.next_seconds < tight.seconds
    assert "more than the " in tight.describe() and "snapshot budget: the oldest are dropped" in tight.describe()
    off = WaveReader(library.store, library.model_path, library.settings, lane=library.lane, use_snapshots=False)
    cold = off.estimate(40_000, n_pages=40, speed=None, answer_tokens=64)
    assert cold.next_seconds is None and cold.about_both == cold.about and "snapshots" not in cold.describe()


# -- map mode ----------------------------------------------------------------------------


def test_map_mode_reads_every_page_once_and_reduces_over_every_note(tmp_path: Path, library: Library) -> None:
    a = _add(library, tmp_path / "a.txt", _pages("Alpha", 3))
    b = _add(library, tmp_path / "b.txt", _pages("Beta", 2))
    corpus = Corpus((a, b))
    backend = _fake(library)
    backend.enqueue(*[_point_at_first_sentence] * 20)
    result = library.read_in_waves(corpus, Q2, note_tokens=32, mode=WaveMode.MAP)
    run = library.get_run(result.run_id)
    assert run is not None and run.settings["mode"] == "map"
    wave_prompts = [p.text for p in backend.prompts if WAVE_PROMPT in p.text]
    assert len(wave_prompts) == len(result.waves) == 5
    # Every page is read by exactly one wave: its marker and its text appear in one prompt.
    for doc in corpus.documents:
        for page in doc.pages:
            marker = f"[{doc.name} p.{page.number}]"
            assert sum(marker in p.split("Question:")[0] for p in wave_prompts) == 1, marker
    # No wave sees another's notes.
    assert not any("Passages kept from the parts read before" in p for p in wave_prompts)
    # The reduce pass sees every wave's note.
    final = backend.prompts[-1].text
    for w in result.waves:
        assert w.text and w.text in final
    assert {p for w in result.waves for p in wave_pages(w)} == {
        (d.name, p.number) for d in corpus.documents for p in d.pages
    }


class _PerThreadModel:
    """A runtime that serves several requests at once, as a server does: each thread
    that calls it gets its own sequence (a fake model of its own)."""

    def __init__(self, backend: FakeBackend, path: Path, settings: LoadSettings, slots: int) -> None:
        self.slots = slots
        self._make = lambda: FakeBackend.load_model(backend, path, settings)
        self._local = threading.local()
        self.threads: set[str] = set()

    def _model(self) -> FakeModel:
        model = getattr(self._local, "model", None)
        if model is None:
            model = self._local.model = self._make()
        self.threads.add(threading.current_thread().name)
        return model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model(), name)


class _SlotsBackend(FakeBackend):
    def __init__(self, slots: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slots = slots
        self.served: list[_PerThreadModel] = []

    def load_model(self, path: Path, settings: LoadSettings) -> Any:
        model = _PerThreadModel(self, path, settings, self.slots)
        self.served.append(model)
        return model


def test_map_mode_runs_waves_at_once_on_several_slots(tmp_path: Path, home: Path) -> None:
    backend = _SlotsBackend(3)
    library = fake_library(home, tmp_path, backend=backend, n_ctx=2048)
    try:
        corpus = Corpus((_add(library, tmp_path / "handbook.txt", _pages("Handbook", 6)),))
        lock = threading.Lock()
        active = 0
        most = 0
        overlapped = threading.Event()

        def reply(prompt: str) -> str:
            nonlocal active, most
            if WAVE_PROMPT not in prompt:
                return "The documents do not say."
            with lock:
                active += 1
                most = max(most, active)
                if active >= 2:
                    overlapped.set()
            overlapped.wait(timeout=10)  # read in order, no second wave would ever start here
            with lock:
                active -= 1
            return _point_at_first_sentence(prompt)

        backend.enqueue(*[reply] * 20)
        steps: list[Step] = []
        result = library.read_in_waves(corpus, Q2, note_tokens=32, mode=WaveMode.MAP, on_step=steps.append)
        assert model_slots(library.lane.model, backend) == 3
        assert most >= 2 and len(backend.served[0].threads) >= 2
        assert len(result.ran) == len(result.waves) == 6
        # Each page once; every note is grounded and reaches the reduce pass.
        assert sorted(p for w in result.waves for _, p in wave_pages(w)) == list(range(1, 7))
        final = backend.prompts[-1].text
        for i in range(1, 7):
            assert f"[handbook.txt p.{i}] Handbook page {i} opens the chapter." in final
        # Only this thread wrote the store: each wave went running, then done, in that order.
        for w in result.waves:
            statuses = [s.status for s in steps if s.position == w.position]
            assert statuses == [Status.RUNNING, Status.DONE]
    finally:
        library.close()


def test_a_failed_wave_on_several_slots_stops_the_others_and_resumes(tmp_path: Path, home: Path) -> None:
    from engine.errors import GenerationError

    backend = _SlotsBackend(2)
    library = fake_library(home, tmp_path, backend=backend, n_ctx=2048)
    try:
        corpus = Corpus((_add(library, tmp_path / "handbook.txt", _pages("Handbook", 4)),))

        failed = threading.Event()

        def fail_on_page_2(prompt: str) -> str:
            if "[handbook.txt p.2]" in prompt.split("Question:")[0] and not failed.is_set():
                failed.set()
                raise GenerationError("the server went away")
            return _point_at_first_sentence(prompt)

        backend.enqueue(*[fail_on_page_2] * 10)
        with pytest.raises(GenerationError):
            library.read_in_waves(corpus, Q1, note_tokens=32, mode=WaveMode.MAP)
        run = library.run_to_resume(library.sessions()[0].id, RunKind.WAVES)
        assert run.status is Status.FAILED
        statuses = {w.label: w.status for w in run.waves}
        assert statuses["handbook.txt p.2"] is Status.FAILED
        assert Status.RUNNING not in statuses.values()
        result = library.resume(run.id)
        assert result.answer and len(_waves(library, run.id)) == 4
        assert all(w.status is Status.DONE for w in _waves(library, run.id))
    finally:
        library.close()


def test_model_slots_reads_the_runtime_attribute() -> None:
    class Plain:
        pass

    class Served:
        slots = 4

    assert model_slots(Plain(), Plain()) == 1
    assert model_slots(Served(), Plain()) == 4
    assert model_slots(Plain(), Served()) == 4
    assert model_slots(object(), FakeBackend()) == 1  # llama.cpp in this process and the fake: one
