"""Know before loading: what a corpus will cost on this machine, and good settings.

The orchestration around the planner's pure model (engine/planning.py): this module
reads files, the store and the machine, and runs the model through a ``Backend``
(engine/runtime/backend.py), never through ``llama_cpp``.

The contract:

- ``plan_corpus(corpus, model_path, store=...)`` is what ``longread plan`` shows: it
  inspects the model file (rejecting a bad one before llama.cpp sees it), counts the
  corpus's tokens exactly with the model's vocabulary (cached per document in the
  store), reads this machine's calibrations for the model and the memory free now
  and, if asked, measures the missing calibrations first; then ``make_plan``.
- ``measure_corpus(lane, corpus, store=...)`` is what the GUI's budget gauge shows,
  computed on its model lane: each document's exact tokens and the ``Plan`` for the
  window a question about the corpus needs (the prompt frame counted exactly), on this
  machine. The gauge draws the plan's own rows and numbers, so it and ``longread plan``
  never disagree.
- ``calibrate(model_path, kv_type, ...)`` runs a short real prefill (two batches of 512
  tokens) through a ``ModelLane`` (so the load is checked like any other) and stores
  each batch's seconds (``Store.put_calibration``). Two batches at different positions
  separate the per-token cost from the cost that grows with position
  (``engine.planning.SpeedModel``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from engine.config import ReadSettings, default_threads
from engine.lane import ModelLane, default_backend
from engine.machine import read_available_memory
from engine.memory import MemoryLayout
from engine.models.bundled import model_sha256 as find_model_sha256
from engine.planning import ANSWER_RESERVE, Plan, make_plan
from engine.probe import stored_effective_context
from engine.reading.prompts import build_prompt
from engine.reading.waves import WavesEstimate
from engine.runtime.backend import CTX_ALIGN, Backend, KvType, RemoteBackend
from engine.store.db import CalibrationRow
from engine.tokens import corpus_tokens, count, tokenizer_key

if TYPE_CHECKING:
    from engine.corpus import Corpus
    from engine.store import Store

__all__ = [
    "CALIBRATION_BATCH",
    "CALIBRATION_BATCHES",
    "CorpusMeasure",
    "calibrate",
    "measure_corpus",
    "plan_corpus",
]

CALIBRATION_BATCH: Final = 512
CALIBRATION_BATCHES: Final = 2


def plan_corpus(
    corpus: Corpus,
    model_path: Path,
    *,
    store: Store,
    n_ctx: int = 0,
    n_threads: int = 0,
    rope_scaling: str | None = None,
    answer_tokens: int = ANSWER_RESERVE,
    calibrate_missing: bool = False,
    on_calibrate: Callable[[str], None] | None = None,
    backend: Backend | None = None,
) -> Plan:
    """The plan for reading ``corpus`` with the model at ``model_path``: what the CLI's
    ``longread plan`` shows.

    Args:
        corpus: the documents.
        model_path: the GGUF.
        store: token cache and calibrations.
        n_ctx: the window asked for (0: the smallest that fits).
        n_threads: threads the reading will use (0: every core).
        rope_scaling: "linear" or "yarn" to allow a window beyond the trained length.
        answer_tokens: tokens kept for the answer.
        calibrate_missing: run ``calibrate`` for each KV type not measured yet.
        on_calibrate: called with the KV type before each calibration (for progress).
        backend: the runtime (default: llama.cpp in this process).

    Returns:
        The ``Plan``.

    Raises:
        ModelFileError: the file is not a usable GGUF.
        ModelError, GenerationError: the runtime failed while counting or calibrating.
        PlanRefused: a calibration load would not fit in memory.
    """
    backend = backend if backend is not None else default_backend()
    info = backend.inspect_model(model_path)
    sha = find_model_sha256(model_path)
    tokenizer = backend.load_tokenizer(model_path)
    try:
        n_tokens = count(corpus_tokens(corpus, tokenizer, key=tokenizer_key(sha), store=store))
    finally:
        tokenizer.close()
    threads = n_threads or default_threads()
    calibrations = store.get_calibrations(sha, n_threads=threads, llama_cpp_version=backend.version)
    if calibrate_missing:
        have = {c.kv_type for c in calibrations}
        for kv in KvType:
            if kv not in have:
                if on_calibrate is not None:
                    on_calibrate(kv)
                calibrate(model_path, kv, store=store, n_threads=threads, model_sha256=sha, backend=backend)
        calibrations = store.get_calibrations(sha, n_threads=threads, llama_cpp_version=backend.version)
    return make_plan(
        info,
        n_tokens,
        n_ctx=n_ctx,
        calibrations=calibrations,
        rope_scaling=rope_scaling,
        answer_tokens=answer_tokens,
        available_bytes=read_available_memory(),
        measured=stored_effective_context(store, sha),
    )


@dataclass(frozen=True)
class CorpusMeasure:
    """What the budget gauge shows: each document's exact tokens and the planner's plan."""

    doc_tokens: tuple[int, ...]
    plan: Plan
    memory: MemoryLayout = field(default_factory=MemoryLayout)  # issue 15: the memory block, and what is left out
    #: When the corpus does not fit the window: what reading it in waves costs (the first
    #: question, each next one, the snapshots; issue 13 item 3), or None.
    waves: WavesEstimate | None = None

    @property
    def memory_tokens(self) -> int:
        return self.memory.n_tokens


def measure_corpus(
    lane: ModelLane,
    corpus: Corpus,
    *,
    store: Store,
    settings: ReadSettings | None = None,
    model_sha256: str | None = None,
    n_ctx: int | None = None,
    memory: MemoryLayout | None = None,
) -> CorpusMeasure:
    """Count ``corpus`` with the lane's model and plan a question about it on this machine.

    The window is the one a question will get: ``n_ctx`` if given, else the settings'
    window, else the loaded model's when it already holds the corpus, question frame and
    answer at the settings' KV type (it is then used as it is), else the smallest that
    fits with room for follow-ups. The prompt frame (instructions, chat template) is
    counted exactly, with an empty question; the answer gets the settings' budget.
    Runs on the model lane (one thread at a time, like the lane).

    Args:
        lane: the model lane (its tokenizer, settings, backend and model facts).
        corpus: the documents, in reading order.
        store: the token cache and calibrations.
        settings: the reading's settings (default: the lane's).
        model_sha256: the model file's hash if known (computed otherwise).
        n_ctx: the window to plan for, when the caller has chosen it.
        memory: the memory block a question will carry (engine/memory.py): its tokens are
            planned with the prompt and shown as their own segment.

    Returns:
        The ``CorpusMeasure``.

    Raises:
        ModelFileError: the model file is not a usable GGUF.
    """
    sha = model_sha256 or lane.model_sha
    tok = lane.tokenizer()
    lists = corpus_tokens(corpus, tok, key=tokenizer_key(sha), store=store)
    n_corpus = count(lists)
    memory = memory or MemoryLayout()
    prompt_tokens = len(build_prompt(tok, lists, "")) - n_corpus + memory.n_tokens
    s = settings if settings is not None else lane.settings
    window = s.n_ctx if n_ctx is None else n_ctx
    model = lane.model
    needed = n_corpus + prompt_tokens + s.max_answer_tokens
    if not window and model is not None and model.kv_type == s.kv_type and model.n_ctx >= needed:
        window = model.n_ctx
    calibrations = store.get_calibrations(sha, n_threads=s.threads(), llama_cpp_version=lane.backend.version)
    plan = make_plan(
        lane.info,
        n_corpus,
        n_ctx=window,
        prompt_tokens=prompt_tokens,
        answer_tokens=s.max_answer_tokens,
        available_bytes=read_available_memory(),
        calibrations=calibrations,
        n_ubatch=s.n_batch,
        measured=stored_effective_context(store, sha),
    )
    if isinstance(lane.backend, RemoteBackend):  # the server's memory is not this machine's
        plan = replace(plan, rows=(), recommended=None, available_bytes=None, server=lane.backend.url)
    return CorpusMeasure(tuple(len(t) for t in lists), plan, memory)


def calibrate(
    model_path: Path,
    kv_type: str,
    *,
    store: Store,
    n_threads: int,
    model_sha256: str | None = None,
    batch_size: int = CALIBRATION_BATCH,
    n_batches: int = CALIBRATION_BATCHES,
    backend: Backend | None = None,
) -> CalibrationRow:
    """Measure prefill speed with a short real prefill and store it.

    Loads the model with a window just big enough (checked like every load), prefills
    ``n_batches`` batches of ``batch_size`` tokens and records each batch's seconds.
    Takes a few seconds for a small model, a minute or two for a 7B one on a CPU.

    Args:
        model_path: the GGUF.
        kv_type: a ``KvType`` value.
        store: where the measurement is kept (``Store.put_calibration``).
        n_threads: threads, as the reading will use.
        model_sha256: the file's hash if known (computed otherwise).
        batch_size: tokens per batch (the reading's batch).
        n_batches: batches to time (two or more separate the two costs).
        backend: the runtime (default: llama.cpp in this process).

    Returns:
        The stored ``CalibrationRow``.

    Raises:
        ModelFileError, ModelError: the model cannot be loaded.
        PlanRefused: the load would not fit in the memory free now.
        GenerationError: the runtime failed during the prefill.
    """
    kv = KvType(kv_type)
    n_tokens = batch_size * n_batches
    # As a reader loads it: the lane checks memory and gives sliding-window models a
    # full-size cache.
    lane = ModelLane(model_path, ReadSettings(kv_type=kv, n_threads=n_threads, n_batch=batch_size), backend=backend)
    try:
        model = lane.ensure(n_tokens + CTX_ALIGN, kv)
        n_vocab = model.n_vocab
        # Token ids spread over the vocabulary: the content does not change the speed.
        tokens = [(1009 + i * 7919) % max(n_vocab - 1, 1) + 1 for i in range(n_tokens)]
        seconds: list[float] = []
        last = time.perf_counter()

        def on_progress(_: object) -> None:
            nonlocal last
            now = time.perf_counter()
            seconds.append(now - last)
            last = now

        model.prefill(tokens, on_progress=on_progress)
        flash = model.flash_attn
    finally:
        lane.close()
    row = CalibrationRow(
        model_sha256=model_sha256 or find_model_sha256(model_path),
        kv_type=kv.value,
        n_threads=n_threads,
        batch_size=batch_size,
        llama_cpp_version=lane.backend.version,
        batch_seconds=tuple(seconds),
        flash_attn=flash,
    )
    store.put_calibration(row)
    return row
