"""The scripted backend (engine/runtime/fake.py): it keeps the runtime interface's
contract, so tests of the engine above the runtime can run without weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.config import ReadSettings
from engine.errors import Cancelled, CancelToken, GenerationError
from engine.lane import ModelLane
from engine.reading.prompts import build_prompt
from engine.runtime.backend import LoadSettings, Model, PrefillProgress, Tokenizer
from engine.runtime.fake import DEFAULT_REPLY, IM_END, IM_START, FakeBackend, FakeModel
from engine.store import Store
from engine.warm import MIN_SNAPSHOT_TOKENS, SnapshotCache, make_key

MODEL = Path("fake.gguf")  # never read
TEXT = "Page 1 of the harbor handbook.\nThe vault  code is 482913.\n\n"


def _load(backend: FakeBackend, *, n_ctx: int = 2048, n_batch: int = 16) -> FakeModel:
    return backend.load_model(MODEL, LoadSettings(n_ctx=n_ctx, n_threads=1, n_batch=n_batch))


def test_tokenizer_is_invertible_and_keeps_special_tokens_out_of_text() -> None:
    backend = FakeBackend()
    tok = backend.load_tokenizer(MODEL)
    ids = tok.tokenize_text(TEXT)
    assert tok.detokenize(ids) == TEXT
    assert tok.tokenize_text(TEXT) == ids  # deterministic
    # The same vocabulary in every tokenizer and model of the backend.
    assert _load(backend).tokenize_text(TEXT) == ids

    chat = f"{IM_START}user\nHello{IM_END}\n"
    as_template = tok.tokenize_template(chat)
    as_text = tok.tokenize_text(chat)
    assert as_template[0] == tok.tokenize_template(IM_START)[0] and len(tok.tokenize_template(IM_START)) == 1
    assert as_template[0] not in as_text  # document text never becomes a control token
    assert tok.detokenize(as_template) == tok.detokenize(as_text) == chat
    assert tok.tokenize_template("Hi", add_bos=True)[1:] == tok.tokenize_template("Hi")


def test_prefill_reuses_the_common_prefix_in_batches() -> None:
    model = _load(FakeBackend(), n_batch=16)
    corpus = model.tokenize_text(TEXT * 5)
    question = model.tokenize_text("What is the code?")
    progress: list[PrefillProgress] = []

    first = model.prefill(corpus + question, on_progress=progress.append)
    assert (first.evaluated, first.reused) == (len(corpus) + len(question), 0)
    assert [p.done for p in progress][-1] == len(corpus) + len(question)
    assert all(b.done - a.done == 16 for a, b in zip(progress, progress[1:-1], strict=False))

    other = model.tokenize_text("Who signs the log?")
    follow_up = model.prefill(corpus + other)
    assert (follow_up.reused, follow_up.evaluated) == (len(corpus), len(other))
    assert model.context_tokens == corpus + other and model.n_tokens == len(corpus + other)

    again = model.prefill(corpus + other)  # all there: the last token again, for its logits
    assert (again.reused, again.evaluated) == (len(corpus + other) - 1, 1)
    assert [s.evaluated for s in model.prefills] == [first.evaluated, len(other), 1]

    with pytest.raises(GenerationError, match="empty"):
        model.prefill([])
    with pytest.raises(GenerationError, match="window holds"):
        model.prefill([corpus[0]] * (model.n_ctx + 1))


def test_cancel_mid_prefill_leaves_the_finished_batches() -> None:
    token = CancelToken()
    backend = FakeBackend(on_batch=lambda done, total: token.cancel() if done >= 32 else None)
    model = _load(backend, n_batch=16)
    tokens = model.tokenize_text(TEXT * 10)
    assert len(tokens) > 64

    with pytest.raises(Cancelled):
        model.prefill(tokens, should_cancel=token)
    assert model.context_tokens == tokens[:32]  # two whole batches, nothing half-done

    token.reset()
    backend.on_batch = None
    stats = model.prefill(tokens, should_cancel=token)
    assert (stats.reused, stats.evaluated) == (32, len(tokens) - 32)

    # A cancel already set stops before the first batch.
    model.clear()
    token.cancel()
    with pytest.raises(Cancelled):
        model.prefill(tokens, should_cancel=token)
    assert model.n_tokens == 0


def test_scripted_replies_stream_in_order_and_prompts_are_recorded() -> None:
    backend = FakeBackend(replies=["The code is 482913 [handbook.pdf p.1]."])
    backend.enqueue("Second answer.", lambda prompt: f"I saw {prompt.count('harbor')} harbor.")
    model = _load(backend)
    prompt = model.tokenize_text(TEXT)
    model.prefill(prompt)

    pieces = list(model.generate(max_tokens=100))
    assert "".join(pieces) == "The code is 482913 [handbook.pdf p.1]."
    assert len(pieces) > 1  # streamed piece by piece
    assert model.n_tokens == len(prompt) + len(pieces)  # the answer joined the context
    assert backend.prompts[0].tokens == tuple(prompt)
    assert backend.prompts[0].text == TEXT

    model.prefill(prompt)
    assert "".join(model.generate(max_tokens=2)) == "Second "  # max_tokens caps the pieces
    model.prefill(prompt)
    assert "".join(model.generate(max_tokens=100)) == "I saw 1 harbor."
    model.prefill(prompt)
    assert "".join(model.generate(max_tokens=100)) == DEFAULT_REPLY
    assert len(backend.prompts) == 4


def test_generate_honours_cancel_between_pieces_and_the_window() -> None:
    token = CancelToken()
    backend = FakeBackend(replies=["one two three four", "a b c d e f g h"])
    model = _load(backend)
    model.prefill(model.tokenize_text("Question?"))
    got = []
    with pytest.raises(Cancelled):
        for piece in model.generate(max_tokens=50, should_cancel=token):
            got.append(piece)
            if len(got) == 3:
                token.cancel()
    assert "".join(got) == "one two"

    small = _load(backend, n_ctx=256)
    small.prefill(small.tokenize_text("word " * 126)[:250])
    assert len(list(small.generate(max_tokens=50))) == 6  # the window filled up


def test_logits_follow_the_context_and_snapshots_round_trip(tmp_path: Path) -> None:
    model = _load(FakeBackend())
    tokens = model.tokenize_text(TEXT * 3)
    model.prefill(tokens)
    logits = model.last_logits()
    assert logits.shape == (model.n_vocab,)
    assert np.array_equal(logits, model.last_logits())

    path = tmp_path / "corpus.kv"
    written = model.save_sequence(path)
    assert written == path.stat().st_size > 4 * len(tokens)
    model.prefill(model.tokenize_text("something else entirely"))
    assert not np.array_equal(model.last_logits(), logits)

    assert model.load_sequence(path, max_tokens=len(tokens)) == tokens
    assert model.context_tokens == tokens and np.array_equal(model.last_logits(), logits)

    with pytest.raises(GenerationError):
        model.load_sequence(path, max_tokens=len(tokens) - 1)
    assert model.n_tokens == 0  # never half-loaded
    path.write_bytes(b"not a snapshot")
    with pytest.raises(GenerationError):
        model.load_sequence(path, max_tokens=len(tokens))
    assert model.n_tokens == 0


def test_warm_snapshots_run_unchanged_on_the_fake_backend(store: Store, tmp_path: Path) -> None:
    backend = FakeBackend()
    model = _load(backend)
    corpus = model.tokenize_template("", add_bos=True) + model.tokenize_text(TEXT * 20)
    assert len(corpus) > MIN_SNAPSHOT_TOKENS
    cache = SnapshotCache(store, tmp_path / "snapshots")
    key = make_key(model, model_sha256="fake-sha", corpus=corpus, swa_full=False)
    assert (key.llama_cpp_version, key.type_k) == (backend.version, "f16")

    model.prefill(corpus[:-1])
    pending = cache.write_pending(model, key, estimate_bytes=0)
    assert pending is not None
    model.prefill(corpus)
    saved = cache.commit(pending, key, model_name="fake", logits=model.last_logits(), prefill_s=0.5)
    assert saved is not None
    found = cache.find_windows(model_sha256="fake-sha", kv_type="f16", corpus=corpus, runtime_version=backend.version)
    assert found == [model.n_ctx]
    assert cache.find_windows(model_sha256="fake-sha", kv_type="f16", corpus=corpus, runtime_version="0.0") == []

    fresh = _load(backend)  # as after a restart: an empty context
    info, stats = cache.restore(fresh, key, corpus)
    assert info.key == key.fingerprint
    assert stats.evaluated == 1 and fresh.context_tokens == corpus


def test_fake_model_and_tokenizer_satisfy_the_runtime_protocols() -> None:
    backend = FakeBackend(chat_template=None, n_ctx_train=4096)
    tok = backend.load_tokenizer(MODEL)
    model = _load(backend, n_ctx=1000)
    assert isinstance(tok, Tokenizer) and not isinstance(tok, Model)
    assert isinstance(model, Model) and isinstance(model, Tokenizer)
    assert (model.n_ctx, model.n_ctx_train, model.chat_template) == (1024, 4096, None)
    assert model.kv_type == "f16" and not model.flash_attn
    assert model.runtime_version == backend.version
    info = backend.inspect_model(MODEL)
    assert info.context_length == 4096 and info.vocab_size == model.n_vocab


def test_a_model_lane_reads_through_the_fake_backend() -> None:
    backend = FakeBackend(replies=["Eight o'clock."])
    lane = ModelLane(MODEL, ReadSettings(n_threads=1), backend=backend)
    tok = lane.tokenizer()  # the vocabulary alone: nothing loaded yet
    assert backend.loads == []
    prompt = build_prompt(tok, [tok.tokenize_text(TEXT)], "When does the office open?")
    assert tok.detokenize(prompt.tokens).count(IM_START) == 3  # ChatML frame: system, user, assistant

    model = lane.ensure(1024, "f16")
    assert lane.ensure(512, "f16") is model  # big enough: kept
    model.prefill(prompt.tokens)
    assert "".join(model.generate(max_tokens=20)) == "Eight o'clock."
    assert "When does the office open?" in backend.prompts[0].text

    bigger = lane.ensure(2048, "q8_0")
    assert bigger is not model and bigger.flash_attn
    assert [(load.settings.n_ctx, load.settings.kv_type) for load in backend.loads] == [(1024, "f16"), (2048, "q8_0")]
    lane.close()
    assert bigger.closed and model.closed


@pytest.mark.slow
def test_the_llama_model_satisfies_the_runtime_protocols(smollm2_path: Path) -> None:
    from engine.lane import default_backend

    backend = default_backend()
    tok = backend.load_tokenizer(smollm2_path)
    try:
        assert isinstance(tok, Tokenizer) and not isinstance(tok, Model)
    finally:
        tok.close()
    model = backend.load_model(smollm2_path, LoadSettings(n_ctx=512, n_threads=1))
    try:
        assert isinstance(model, Model)
        assert model.runtime_version == backend.version
    finally:
        model.close()
