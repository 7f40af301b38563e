"""Warm waves and map mode with the real SmolLM2, a real PDF, a real SQLite file and
llama.cpp's own sequence-state files (issue 13 items 3 and 4).

The fast tier (tests/engine/test_warm_waves.py) checks the bookkeeping with the fake
backend; here the snapshots are real KV caches, checked on restore by size, crc32,
tokens and the model's own logits, and a restored wave must write what the cold one
wrote, token for token (greedy).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.ingest import read_documents
from engine.reading.notes import first_note_end
from engine.reading.waves import WaveMode, WaveReader
from engine.runs import Status, Step
from engine.runtime.backend import KvType, LoadSettings, branches_one_by_one
from engine.runtime.llama import load_model
from engine.store import Store
from engine.warm import SnapshotCache
from tests.conftest import FILLER, write_pdf

pytestmark = pytest.mark.slow

CODE = "482913"
Q1 = "What is the vault access code?"
Q2 = "Who checks the mooring lines?"


def _pages(n: int, *, fact_page: int) -> list[str]:
    pages = []
    for i in range(1, n + 1):
        body = f"Page {i} of the harbor office handbook, section {i * 7 % 31}. " + FILLER * 3
        if i == fact_page:
            body = f"Page {i} of the harbor office handbook. The vault access code is {CODE}. " + FILLER * 2
        pages.append(body)
    return pages


def _waves(store: Store, run_id: int) -> list[Step]:
    run = store.get_run(run_id)
    assert run is not None and run.status is Status.DONE, run
    return run.waves


def test_a_second_question_restores_every_wave_block_with_smollm2(
    tmp_path: Path, store: Store, smollm2_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "handbook.pdf", _pages(8, fact_page=5))
    docs, skipped = read_documents([pdf], store=store)
    assert not skipped
    corpus = Corpus(tuple(docs))
    snapshots = SnapshotCache(store, tmp_path / "snapshots")
    settings = ReadSettings(n_ctx=1024, max_answer_tokens=24)

    def reader(mode: WaveMode = WaveMode.CARRY) -> WaveReader:
        return WaveReader(store, smollm2_path, settings, max_note_tokens=32, mode=mode, snapshots=snapshots)

    first = reader()
    try:
        cold_run = first.read(corpus, Q1)
    finally:
        first.close()
    cold = _waves(store, cold_run.run_id)
    assert len(cold) >= 3
    assert all(w.detail["block"] == "prefill" and w.detail["block_saved"] for w in cold)
    files = sorted(p.name for p in (tmp_path / "snapshots").glob("*.kv"))
    assert len(files) == len(cold)

    # Another question, another process's worth of model (a new reader loads it again).
    second = reader()
    try:
        warm_run = second.read(corpus, Q2, session_id=cold_run.session_id)
        # The first question again: every wave's note was kept (m011_wave_notes), nothing
        # is restored, read or written.
        kept_run = second.read(corpus, Q1, session_id=cold_run.session_id)
        # The kept notes forgotten, once more: restored blocks must give the cold notes,
        # token for token.
        store.clear_wave_notes()
        again_run = second.read(corpus, Q1, session_id=cold_run.session_id)
    finally:
        second.close()
    kept = _waves(store, kept_run.run_id)
    assert [w.detail["block"] for w in kept] == ["notes"] * len(cold)
    assert [(w.prefill_tokens, w.output_tokens) for w in kept] == [(0, 0)] * len(cold)
    assert [w.text for w in kept] == [w.text for w in cold]
    for run_id in (warm_run.run_id, again_run.run_id):
        warm = _waves(store, run_id)
        assert [w.label for w in warm] == [w.label for w in cold]
        for w in warm:
            block = w.detail["block_tokens"]
            assert w.detail["block"] == "snapshot", w.detail
            # Only the check token and the notes, question and instructions after the pages.
            assert w.prefill_tokens == w.prompt_tokens - block + 1
            assert w.prompt_tokens - block < block  # the pages are most of the wave
    again = _waves(store, again_run.run_id)
    assert [w.detail["raw_notes"] for w in again] == [w.detail["raw_notes"] for w in cold]
    assert [w.text for w in again] == [w.text for w in cold]
    assert sorted(p.name for p in (tmp_path / "snapshots").glob("*.kv")) == files  # nothing rebuilt

    # Map mode reads the same blocks (restored) and each page once; then one reduce pass.
    mapper = reader(WaveMode.MAP)
    try:
        mapped = mapper.read(corpus, Q1, session_id=cold_run.session_id)
    finally:
        mapper.close()
    waves = _waves(store, mapped.run_id)
    assert [w.detail["block"] for w in waves] == ["snapshot"] * len(cold)
    pages = [p for w in waves for s in w.detail["segments"] for p in range(s["first"], s["last"] + 1)]
    assert pages == list(range(1, 9))
    assert mapped.answer


def test_parts_written_side_by_side_are_the_parts_written_one_by_one(smollm2_path: Path) -> None:
    """A wave's notes for a question of several parts are written at once, in sequences
    that share the page block's cells (``LoadedModel.generate_branches``): greedy, each
    writes what it writes alone, each stops where the note ends, and the context is left
    holding the block."""
    model = load_model(smollm2_path, LoadSettings(n_ctx=2048, kv_type=KvType.F16, n_threads=2, n_batch=512))
    try:
        block = model.tokenize_text(
            ("The harbor office opens at dawn. " + FILLER) * 3
            + f"The vault access code is {CODE}. The chief archivist is Miriam Okonkwo. "
        )
        questions = ("What is the vault access code?", "Who is the chief archivist?", "When does the office open?")
        tails = [model.tokenize_text(f"\nQuestion: {q}\nAnswer:") for q in questions]
        assert model.max_branches >= len(tails)
        model.prefill(block)
        together = model.generate_branches(tails, max_tokens=24, ends=[first_note_end] * len(tails))
        assert model.context_tokens == block
        alone = branches_one_by_one(model, tails, max_tokens=24, ends=[first_note_end] * len(tails))
        assert model.context_tokens == block
        assert together.texts == alone.texts and together.output_tokens == alone.output_tokens
        assert CODE in together.texts[0] and "Okonkwo" in together.texts[1]
        # Each stopped at its note's end (a sentence or a line), before the budget.
        assert all("\n" not in t.strip() for t in together.texts) and max(together.output_tokens) < 24
        assert together.prefill.evaluated == sum(len(t) for t in tails)
        # The context goes on as if nothing had been written: the next read reuses the block.
        assert model.prefill([*block, *tails[0]]).evaluated == len(tails[0])
    finally:
        model.close()
