"""The numbers behind the budget gauge: tokens against the window, memory against RAM.

``measure_corpus`` runs on the model lane (it needs the model's tokenizer) and returns a
``Measure``: each document's exact token count, the engine's ``Budget`` for the corpus
(an empty question: the question's own tokens are added when one is asked) and a
``MemoryPlan`` for that window. ``plan_memory`` is the one place the GUI computes
memory: it asks the engine's planner (``engine.planner.make_plan``: weights, KV cache,
compute buffers and overhead per KV type, against the memory available now, with the
prefill time estimated from this machine's calibrations when there are any), so the
GUI and ``longread plan`` show the same numbers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.corpus import Corpus
from engine.machine import read_available_memory
from engine.models.gguf import ModelInfo, inspect_gguf
from engine.planning import make_plan
from engine.reading.ask import Budget, Reader
from engine.reading.prompts import build_prompt
from engine.runtime.llama import LLAMA_CPP_VERSION
from engine.tokens import corpus_tokens, count, tokenizer_key
from engine.units import format_bytes, format_duration  # noqa: F401  (used by the views)

KV_TYPES = ("f16", "q8_0", "q4_0")


@dataclass(frozen=True)
class MemoryRow:
    """Memory one KV cache type needs: the weights plus the cache for the window."""

    kv_type: str
    weights_bytes: int
    kv_bytes: int
    available_bytes: int
    other_bytes: int = 0  # compute buffers and fixed overhead
    est_prefill_s: float | None = None

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.other_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.available_bytes


@dataclass(frozen=True)
class MemoryPlan:
    """Memory rows for f16, q8_0 and q4_0 at one window size."""

    n_ctx: int
    rows: tuple[MemoryRow, ...]
    available_bytes: int

    def row(self, kv_type: str) -> MemoryRow:
        return next(r for r in self.rows if r.kv_type == kv_type)


@dataclass(frozen=True)
class ModelSummary:
    """What the picker shows about a model file."""

    name: str
    architecture: str
    context_length: int
    size_bytes: int


@dataclass(frozen=True)
class Measure:
    """What the corpus needs: per-document tokens, the engine's budget, and memory."""

    doc_tokens: tuple[int, ...]
    budget: Budget
    memory: MemoryPlan
    model: ModelSummary


def available_ram() -> int:
    """Bytes of memory available now (the planner's reading; ``MemAvailable`` on Linux)."""
    measured = read_available_memory()
    if measured is not None:
        return measured
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30  # unknown platform: a common laptop


def summarize_model(info: ModelInfo) -> ModelSummary:
    return ModelSummary(info.name, info.architecture, info.context_length, info.file_size)


def plan_memory(
    info: ModelInfo,
    n_ctx: int,
    *,
    corpus_tokens: int = 0,
    available_bytes: int | None = None,
    calibrations: Sequence[Any] = (),
) -> MemoryPlan:
    """Memory for the model at ``n_ctx`` with each KV cache type, against available RAM."""
    available = available_ram() if available_bytes is None else available_bytes
    plan = make_plan(
        info, corpus_tokens, n_ctx=n_ctx, kv_types=KV_TYPES, available_bytes=available, calibrations=calibrations
    )
    rows = tuple(
        MemoryRow(
            r.kv_type,
            r.weights_bytes,
            r.kv_bytes,
            available,
            other_bytes=r.compute_bytes + r.overhead_bytes,
            est_prefill_s=r.est_prefill_s,
        )
        for r in plan.rows
    )
    return MemoryPlan(plan.n_ctx, rows, available)


def measure_corpus(reader: Reader, corpus: Corpus) -> Measure:
    """Count the corpus's tokens with the reader's model and plan its window and memory.

    Runs on the model lane. Raises what the engine raises (``ModelFileError``, ...).
    """
    tok = reader.tokenizer()
    lists = corpus_tokens(corpus, tok, key=tokenizer_key(reader.model_sha), store=reader.store)
    prompt = build_prompt(tok, lists, "")
    budget = reader.budget(prompt, count(lists))
    info = inspect_gguf(reader.model_path)
    calibrations = reader.store.get_calibrations(
        reader.model_sha, n_threads=reader.settings.threads(), llama_cpp_version=LLAMA_CPP_VERSION
    )
    return Measure(
        doc_tokens=tuple(len(t) for t in lists),
        budget=budget,
        memory=plan_memory(info, budget.n_ctx, corpus_tokens=budget.corpus_tokens, calibrations=calibrations),
        model=summarize_model(info),
    )
