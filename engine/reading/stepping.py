"""What waves and deep thinking share: a generation step, row bookkeeping.

Contract:
- The model holder (``ModelLane``) lives in engine/lane.py.
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
from engine.lane import ModelLane
from engine.runtime.backend import Model as LoadedModel
from engine.runtime.backend import PrefillProgress
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
        output_tokens=model.n_tokens - len(tokens),
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
