"""Prefix reuse in a session, counted in real tokens (issue 4).

The corpus is read once; a follow-up evaluates only the tokens after the longest prefix
it shares with the context (never the corpus), and the previous answer is not part of
the next question's context. Sliding-window models keep the whole window (swa_full), so
rolling back to the end of the corpus is exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.ingest import read_documents
from engine.reading.ask import Reader
from engine.runtime.backend import LoadSettings
from engine.runtime.llama import load_model
from engine.store import Store
from tests.conftest import fact_pages, write_pdf


def _shared(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_a_follow_up_prefills_only_its_own_tokens(store: Store, tmp_path: Path, smollm2_path: Path) -> None:
    docs, _ = read_documents([write_pdf(tmp_path / "h.pdf", fact_pages(3, fact_page=2))], store=store)
    corpus = Corpus(tuple(docs))
    reader = Reader(store, smollm2_path, ReadSettings(max_answer_tokens=12, n_threads=2))
    try:
        first = reader.ask(corpus, "What is the vault access code?")
        assert reader.model is not None
        after_first = reader.model.context_tokens
        assert first.prefill.evaluated == first.budget.prompt_tokens  # read cold, once

        question = "Who signs in at the front desk, and what do they receive?"
        prompt, _ = reader.prepare(corpus, question)
        shared = _shared(after_first, prompt.tokens)
        second = reader.ask(corpus, question, session_id=first.session_id)

        assert second.warm is not None and second.warm.source == "context"
        assert shared >= prompt.corpus_only_end, "every document token is reused"
        # What is read: the first answer, now a memory entry after the documents, and the question.
        assert prompt.memory_ids and second.prefill.evaluated == len(prompt.tokens) - shared
        assert second.prefill.evaluated >= prompt.question_tokens
        # The first answer is gone: the context is the new prompt, then the new answer.
        context = reader.model.context_tokens
        assert context[: len(prompt.tokens)] == prompt.tokens
        assert len(context) == len(prompt.tokens) + second.answer_tokens
        steps = [r.answer_step for r in store.list_runs(first.session_id)]
        assert [s.prefill_tokens for s in steps if s] == [first.prefill.evaluated, second.prefill.evaluated]
    finally:
        reader.close()


def test_sliding_window_models_roll_back_exactly_with_swa_full(store: Store, gemma_path: Path) -> None:
    reader = Reader(store, gemma_path)
    assert reader.swa_full, "Gemma 3 has sliding-window layers: Reader loads it with swa_full"
    reader.close()
    text = (Path(__file__).parents[2] / "resources" / "sample" / "harbor-lease-dispute.md").read_text()
    logits = {}
    for swa_full in (True, False):
        model = load_model(gemma_path, LoadSettings(n_ctx=2048, n_threads=2, swa_full=swa_full))
        try:
            tokens = model.tokenize_template("", add_bos=True) + model.tokenize_text(text)
            corpus, later = tokens[:768], tokens[768:1768]  # 1,000 tokens past the 512 window
            model.prefill(corpus[:-1])
            model.prefill(corpus)  # the last token alone, as the rollback will evaluate it
            before = model.last_logits()
            model.prefill(corpus + later)
            stats = model.prefill(corpus)  # a follow-up rolls back to the end of the corpus
            assert stats.evaluated == 1
            logits[swa_full] = float(np.abs(model.last_logits() - before).max())
        finally:
            model.close()
    assert logits[True] == 0.0
    # The reason for swa_full: without it the window behind the corpus's end is gone.
    assert logits[False] > 0.5
