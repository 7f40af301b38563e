"""KV snapshots with the real models, real PDFs and a real store (issue 4).

Restored greedy output equals cold greedy output token for token; damaged snapshots
are rebuilt, never used; snapshots of other settings or models are never used; a new
process restores instead of reading; the disk budget evicts the least recently used.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.ingest import read_documents
from engine.memory import MemoryOptions
from engine.models.gguf import inspect_gguf
from engine.reading.ask import AskResult, Reader
from engine.store import Store
from engine.warm import SnapshotCache, SnapshotInvalid, crc32_file, make_key
from tests.conftest import fact_pages, write_pdf

ROOT = Path(__file__).parents[2]
QUESTION = "What is the vault access code?"
SETTINGS = ReadSettings(max_answer_tokens=12, n_threads=2)


def _corpus(store: Store, pdf: Path) -> Corpus:
    docs, _ = read_documents([pdf], store=store)
    return Corpus(tuple(docs))


def _ask(
    store: Store, model: Path, corpus: Corpus, *, settings: ReadSettings = SETTINGS
) -> tuple[AskResult, list[int]]:
    """Ask with a fresh Reader (as after a restart); return the result and the context's tokens."""
    reader = Reader(store, model, settings)
    # The corpus snapshot alone, the same prompt each time: documents' own snapshots are
    # tested in test_compose_real.py, memory in test_memory*.py.
    reader.memory = MemoryOptions(enabled=False)
    reader.compose_k = None
    try:
        result = reader.ask(corpus, QUESTION)
        assert reader.model is not None
        return result, reader.model.context_tokens
    finally:
        reader.close()


@pytest.fixture
def small_pdf(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "handbook.pdf", fact_pages(3, fact_page=2))


@pytest.mark.slow  # real GGUFs (by fixture name, or in a CLI child)
@pytest.mark.parametrize("model_fixture", ["smollm2_path", "gemma_path"])
def test_restored_output_equals_cold_output_token_for_token(
    model_fixture: str, request: pytest.FixtureRequest, store: Store, tmp_path: Path
) -> None:
    model: Path = request.getfixturevalue(model_fixture)
    # Gemma's sliding window is 512 tokens: a longer corpus makes the restore cross it.
    n_pages = 3 if model_fixture == "smollm2_path" else 6
    corpus = _corpus(store, write_pdf(tmp_path / "doc.pdf", fact_pages(n_pages, fact_page=2)))

    cold, cold_context = _ask(store, model, corpus)
    assert cold.warm is not None and cold.warm.source == "prefill" and cold.warm.saved
    assert cold.prefill.evaluated == cold.budget.prompt_tokens

    warm, warm_context = _ask(store, model, corpus)
    assert warm.warm is not None and warm.warm.restored, warm.warm
    assert warm.warm.cold_prefill_s is not None and warm.warm.snapshot_bytes > 0
    assert warm_context == cold_context  # prompt and every answer token
    assert warm.answer == cold.answer
    # The file holds what the KV arithmetic says (sliding-window layers: their last
    # window only), plus about 16 bytes a token of token ids and cell positions.
    kv_bytes = inspect_gguf(model).kv_state_bytes(cold.warm.corpus_tokens - 1)
    assert kv_bytes <= cold.warm.snapshot_bytes <= kv_bytes + 32 * cold.warm.corpus_tokens + 65536
    # Only the corpus's last token (the restore check) and the question part were evaluated.
    corpus_end = warm.warm.corpus_tokens
    assert warm.prefill.evaluated == warm.budget.prompt_tokens - corpus_end + 1
    turn = store.list_runs(warm.session_id)[-1].answer_step
    assert turn is not None and turn.prefill_tokens == warm.prefill.evaluated


def test_damaged_snapshots_are_rebuilt_never_used(store: Store, small_pdf: Path, smollm2_path: Path) -> None:
    corpus = _corpus(store, small_pdf)
    cold, cold_context = _ask(store, smollm2_path, corpus)
    cache = SnapshotCache(store)
    [snap] = cache.list_snapshots()

    # 1. Bytes flipped in the middle: the checksum catches it.
    data = bytearray(snap.path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(b ^ 0xFF for b in data[middle : middle + 4096])
    snap.path.write_bytes(bytes(data))
    result, context = _ask(store, smollm2_path, corpus)
    assert result.warm is not None and result.warm.source == "prefill"
    assert result.warm.notice is not None and "damaged" in result.warm.notice
    assert result.warm.saved, "rebuilt"
    assert context == cold_context

    # 2. Truncated: caught by size before llama.cpp reads it.
    [snap] = cache.list_snapshots()
    with snap.path.open("r+b") as fh:
        fh.truncate(snap.size_bytes // 3)
    result, context = _ask(store, smollm2_path, corpus)
    assert result.warm is not None and not result.warm.restored and result.warm.notice
    assert context == cold_context

    # 3. Damaged where no checksum can see it (the row re-signed): the KV values are
    # wrong, and the logits check after the restore refuses them.
    [snap] = cache.list_snapshots()
    data = bytearray(snap.path.read_bytes())
    start = len(data) // 3
    data[start : start + len(data) // 3] = bytes(len(data) // 3)
    snap.path.write_bytes(bytes(data))
    row = store.get_snapshot(snap.key)
    assert row is not None
    store.put_snapshot({**row, "checksum": crc32_file(snap.path)})
    result, context = _ask(store, smollm2_path, corpus)
    assert result.warm is not None and not result.warm.restored
    assert result.warm.notice is not None and "reading it again" in result.warm.notice
    assert context == cold_context
    assert result.answer == cold.answer

    # 4. The file gone: the row is dropped and the corpus read again.
    [snap] = cache.list_snapshots()
    snap.path.unlink()
    result, _ = _ask(store, smollm2_path, corpus)
    assert result.warm is not None and result.warm.notice is not None and "missing" in result.warm.notice
    assert len(cache.list_snapshots()) == 1 and cache.list_snapshots()[0].path.is_file()


def test_snapshots_of_other_settings_or_models_are_never_used(
    store: Store, small_pdf: Path, smollm2_path: Path, gemma_path: Path
) -> None:
    corpus = _corpus(store, small_pdf)
    _ask(store, smollm2_path, corpus)
    cache = SnapshotCache(store)
    [f16] = cache.list_snapshots()

    # Another KV cache type: read cold, a second snapshot saved beside the first.
    q8, _ = _ask(store, smollm2_path, corpus, settings=replace(SETTINGS, kv_type="q8_0"))
    assert q8.warm is not None and q8.warm.source == "prefill" and q8.warm.saved
    assert {s.kv_type for s in cache.list_snapshots()} == {"f16", "q8_0"}
    # Another model on the same documents: read cold.
    gemma, _ = _ask(store, gemma_path, corpus)
    assert gemma.warm is not None and gemma.warm.source == "prefill"

    # Every input of the fingerprint changes the key, so lookups miss...
    reader = Reader(store, smollm2_path, SETTINGS)
    reader.memory = MemoryOptions(enabled=False)
    try:
        prompt, budget = reader.prepare(corpus, QUESTION)
        model = reader._ensure_model(budget.n_ctx)
        corpus_tokens = prompt.tokens[: prompt.corpus_end]
        key = make_key(model, model_sha256=reader.model_sha, corpus=corpus_tokens, swa_full=reader.swa_full)
        assert cache.find(key) is not None and cache.find(key).key == f16.key  # type: ignore[union-attr]
        for change in (
            {"model_sha256": "0" * 64},
            {"n_ctx": key.n_ctx + 256},
            {"type_k": "q4_0"},
            {"flash_attn": True},
            {"swa_full": True},
            {"llama_cpp_version": "0.0.1"},
            {"tokens_sha256": "0" * 64},
        ):
            assert cache.find(replace(key, **change)) is None, change  # type: ignore[arg-type]

        # ...and a row whose columns disagree with its key (a hand-edited or older
        # store) is removed instead of restored.
        row = store.get_snapshot(key.fingerprint)
        assert row is not None
        store.put_snapshot({**row, "model_sha256": "0" * 64})
        with pytest.raises(SnapshotInvalid):
            cache.restore(model, key, corpus_tokens)
        assert cache.find(key) is None and not f16.path.exists()
    finally:
        reader.close()


def _run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LONGREAD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow  # real GGUFs (by fixture name, or in a CLI child)
def test_a_new_process_restores_instead_of_reading(home: Path, small_pdf: Path) -> None:
    ask = ("ask", str(small_pdf), "-q", QUESTION, "--max-answer", "12", "--threads", "2", "--no-memory")
    first = _run_cli(home, *ask)
    assert first.returncode == 0, first.stderr
    assert "Saved a snapshot of the corpus" in first.stderr
    second = _run_cli(home, *ask)
    assert second.returncode == 0, second.stderr
    assert "Corpus restored from its snapshot in" in second.stderr and "instead of" in second.stderr
    assert second.stdout == first.stdout

    store = Store(home / "longread.db")
    try:
        [cold_turn] = [r.answer_step for r in store.list_runs(1)]
        [warm_turn] = [r.answer_step for r in store.list_runs(2)]
        rows = [r for r in store.list_snapshots() if r.get("kind", "corpus") == "corpus"]
    finally:
        store.close()
    [row] = rows
    corpus_end = row["n_tokens"]
    assert cold_turn.prefill_tokens == cold_turn.prompt_tokens
    # The second process evaluated the question part and the corpus's last token
    # (the restore check): no other corpus token.
    assert warm_turn.prefill_tokens == warm_turn.prompt_tokens - corpus_end + 1
    assert warm_turn.prompt_tokens is not None and warm_turn.prefill_tokens < warm_turn.prompt_tokens - 100

    # With memory (the default), a third process restores the documents and reads only
    # the memory block, the two answers above, on top of them.
    third = _run_cli(home, *ask[:-1])
    assert third.returncode == 0, third.stderr
    assert "Memory: 2 entries from earlier sessions" in third.stderr
    assert "Documents restored in" in third.stderr, third.stderr
    assert f"({corpus_end:,} tokens); the memory block" in third.stderr

    listed = _run_cli(home, "snapshots")
    # The corpus, the corpus with its memory block, and the first read's documents (the
    # frame's head and the one document: engine/compose.py).
    assert listed.returncode == 0 and "4 snapshots (2 of single documents)," in listed.stdout, listed.stdout
    assert f"{corpus_end:,} tokens  window" in listed.stdout
    cleared = _run_cli(home, "snapshots", "--clear")
    assert cleared.returncode == 0 and "freed" in cleared.stdout
    assert not any((home / "snapshots").iterdir())


def test_the_budget_evicts_the_least_recently_used(store: Store, tmp_path: Path, smollm2_path: Path) -> None:
    first = _corpus(store, write_pdf(tmp_path / "a.pdf", fact_pages(1, fact_page=1, fact="The code is 111111.")))
    second = _corpus(store, write_pdf(tmp_path / "b.pdf", fact_pages(1, fact_page=1, fact="The code is 222222.")))
    cache = SnapshotCache(store)
    _ask(store, smollm2_path, first)
    [a] = cache.list_snapshots()
    assert cache.total_bytes() == a.size_bytes == a.path.stat().st_size

    # Room for one and a half: the second snapshot pushes out the first.
    cache.set_budget_bytes(a.size_bytes * 3 // 2)
    _ask(store, smollm2_path, second)
    [b] = cache.list_snapshots()
    assert b.key != a.key and not a.path.exists()

    # A budget below one snapshot: nothing is saved, and the user is told.
    cache.set_budget_bytes(a.size_bytes // 2)
    assert cache.list_snapshots() == [] and not b.path.exists()
    result, _ = _ask(store, smollm2_path, first)
    assert result.warm is not None and not result.warm.saved
    assert result.warm.notice is not None and "budget" in result.warm.notice
    assert cache.list_snapshots() == []

    cache.set_budget_bytes(None)
    assert cache.budget_bytes == cache.default_budget_bytes() > 0
    assert cache.budget_bytes <= 10_000_000_000
