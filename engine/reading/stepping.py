"""What waves and deep thinking share: one model lane, a generation step, row bookkeeping.

Contract:
- ``ModelLane`` loads the model once, at the window a read needs, and keeps it while the
  window and KV type still fit (a borrowed model is used, never closed). Sliding-window
  models load with ``swa_full``: steps roll the context back to the corpus prefix, which a
  truncated window would silently spoil (engine/reading/ask.py).
- ``run_step`` prefills a prompt (reusing the longest prefix already in the context) and
  streams at most ``max_tokens`` tokens, reporting progress and honouring a cancel.
- ``claim_rows`` refuses to resume rows another live process is running.
Used from one thread at a time, like every ``LoadedModel``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import EngineError
from engine.models.gguf import ModelInfo, inspect_gguf
from engine.runtime.llama import LoadedModel, PrefillProgress, Tokenizer, align_ctx, load_model, load_tokenizer
from engine.store import Store

TextFn = Callable[[str], None]
ProgressFn = Callable[[PrefillProgress], None]
CancelFn = Callable[[], bool]


def now_iso() -> str:
    """The time now, as the store writes it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StepOutput:
    """What one generation step produced and cost."""

    text: str
    prompt_tokens: int
    prefill_tokens: int
    reused_tokens: int
    output_tokens: int
    prefill_s: float
    generate_s: float


class ModelLane:
    """The model a read uses, loaded lazily at the window it needs.

    Args:
        model_path: the GGUF file.
        settings: KV type, threads, batch size, temperature, seed.
        model: an already loaded model to use while it fits (never closed here).
    """

    def __init__(self, model_path: Path, settings: ReadSettings, *, model: LoadedModel | None = None) -> None:
        self.model_path = model_path
        self.settings = settings
        self._model = model
        self._borrowed = model is not None
        self._tokenizer: Tokenizer | None = None
        self._info: ModelInfo | None = None

    @property
    def model(self) -> LoadedModel | None:
        """The loaded model, if one is."""
        return self._model

    @property
    def info(self) -> ModelInfo:
        """The model file's header (layers, KV heads, sliding window), read once."""
        if self._info is None:
            self._info = inspect_gguf(self.model_path)
        return self._info

    @property
    def swa_full(self) -> bool:
        """Whether the model loads with a full-size sliding-window cache (engine/reading/ask.py)."""
        return self.info.n_sliding_layers > 0

    def tokenizer(self) -> Tokenizer:
        """The loaded model if any, else the vocabulary alone (fast)."""
        if self._model is not None:
            return self._model
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.model_path)
        return self._tokenizer

    def full_window(self) -> int:
        """The window to read with: the settings' if set, else the model's trained length."""
        if self.settings.n_ctx:
            return align_ctx(self.settings.n_ctx)
        return align_ctx(self.tokenizer().n_ctx_train)

    def ensure(self, n_ctx: int, kv_type: str) -> LoadedModel:
        """Return a model with at least ``n_ctx`` tokens of window and this KV type."""
        model = self._model
        if model is not None and model.n_ctx >= n_ctx and model.kv_type == kv_type:
            return model
        if model is not None and not self._borrowed:
            model.close()
        self._model = None
        self._borrowed = False
        s = self.settings
        self._model = load_model(
            self.model_path,
            n_ctx=n_ctx,
            kv_type=kv_type,
            n_threads=s.threads(),
            n_batch=s.n_batch,
            swa_full=True if self.swa_full else None,
        )
        if self._tokenizer is not None:
            self._tokenizer.close()
            self._tokenizer = None
        return self._model

    def close(self) -> None:
        """Free what this lane loaded (a borrowed model stays open)."""
        if self._model is not None and not self._borrowed:
            self._model.close()
        if self._tokenizer is not None:
            self._tokenizer.close()
        self._model = self._tokenizer = None


def run_step(
    model: LoadedModel,
    tokens: Sequence[int],
    *,
    max_tokens: int,
    settings: ReadSettings,
    on_progress: ProgressFn | None = None,
    on_text: TextFn | None = None,
    should_cancel: CancelFn | None = None,
) -> StepOutput:
    """Prefill ``tokens`` and generate up to ``max_tokens`` tokens after them.

    Raises:
        Cancelled: the cancel flag was set between two batches or two tokens.
        GenerationError: llama.cpp failed.
    """
    stats = model.prefill(tokens, on_progress=on_progress, should_cancel=should_cancel)
    start = time.perf_counter()
    pieces: list[str] = []
    for piece in model.generate(
        max_tokens=max_tokens, temperature=settings.temperature, seed=settings.seed, should_cancel=should_cancel
    ):
        pieces.append(piece)
        if on_text is not None:
            on_text(piece)
    generate_s = time.perf_counter() - start
    return StepOutput(
        text="".join(pieces).strip(),
        prompt_tokens=len(tokens),
        prefill_tokens=stats.evaluated,
        reused_tokens=stats.reused,
        output_tokens=model.llama.n_tokens - len(tokens),
        prefill_s=stats.seconds,
        generate_s=generate_s,
    )


def stored_corpus(store: Store, session_id: int, *, what: str) -> Corpus:
    """The documents of a stored run's session.

    Raises:
        EngineError: they are no longer in the store.
    """
    session = store.get_session(session_id)
    corpus = store.get_corpus(session.corpus_id) if session and session.corpus_id else None
    if corpus is None:
        raise EngineError(f"The documents of {what} are no longer in the store.")
    return corpus


def resume_model(lane: ModelLane, settings: ReadSettings, stored: dict[str, Any]) -> tuple[LoadedModel, ReadSettings]:
    """The model at a stored run's own window and KV type, and the generation settings it
    started with, so that a resumed run writes as the first one would have."""
    model = lane.ensure(int(stored["n_ctx"]), str(stored.get("kv_type", settings.kv_type)))
    gen = replace(settings, temperature=float(stored.get("temperature", 0.0)), seed=int(stored.get("seed", 0)))
    return model, gen


def claim_rows(rows: Sequence[dict[str, Any]], *, what: str) -> None:
    """Refuse to run rows that a live process other than this one is running.

    Raises:
        EngineError: another Longread process is running them now.
    """
    from engine.store.db import _pid_alive  # the store's own liveness test, for the same answer

    for row in rows:
        pid = row.get("pid")
        if row.get("status") == "running" and pid and pid != os.getpid() and _pid_alive(pid):
            raise EngineError(
                f"This {what} is running in another Longread process (pid {pid}). "
                "Wait for it to finish or stop it, then resume."
            )
