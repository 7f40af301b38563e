"""The numbers behind the budget gauge: tokens against the window, memory against RAM.

``measure_corpus`` runs on the model lane (it needs the model's tokenizer) and returns a
``Measure``: each document's exact token count, the engine's ``Budget`` for the corpus
(an empty question: the question's own tokens are added when one is asked) and a
``MemoryPlan`` for that window. ``plan_memory`` is the one place the GUI computes
memory; it uses ``engine.planner`` when that module exists and otherwise the GGUF
header (``inspect_gguf(...).kv_cache_bytes`` plus the file size for the weights), so it
can switch without touching the views.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.corpus import Corpus
from engine.models.gguf import ModelInfo, inspect_gguf
from engine.reading.ask import Budget, Reader
from engine.reading.prompts import build_prompt
from engine.tokens import corpus_tokens, count, tokenizer_key

KV_TYPES = ("f16", "q8_0", "q4_0")


@dataclass(frozen=True)
class MemoryRow:
    """Memory one KV cache type needs: the weights plus the cache for the window."""

    kv_type: str
    weights_bytes: int
    kv_bytes: int
    available_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes

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
    """Bytes of memory available to a new process now (``MemAvailable`` on Linux)."""
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


def plan_memory(info: ModelInfo, n_ctx: int, *, available_bytes: int | None = None) -> MemoryPlan:
    """Memory for the model at ``n_ctx`` with each KV cache type, against available RAM."""
    available = available_ram() if available_bytes is None else available_bytes
    rows = tuple(
        MemoryRow(kv, info.file_size, info.kv_cache_bytes(n_ctx, kv, kv), available) for kv in KV_TYPES
    )
    return MemoryPlan(n_ctx, rows, available)


def measure_corpus(reader: Reader, corpus: Corpus) -> Measure:
    """Count the corpus's tokens with the reader's model and plan its window and memory.

    Runs on the model lane. Raises what the engine raises (``ModelFileError``, ...).
    """
    tok = reader.tokenizer()
    lists = corpus_tokens(corpus, tok, key=tokenizer_key(reader.model_sha), store=reader.store)
    prompt = build_prompt(tok, lists, "")
    budget = reader.budget(prompt, count(lists))
    info = inspect_gguf(reader.model_path)
    return Measure(
        doc_tokens=tuple(len(t) for t in lists),
        budget=budget,
        memory=plan_memory(info, budget.n_ctx),
        model=summarize_model(info),
    )


def format_bytes(n: float) -> str:
    """``98 MB``, ``1.4 GB``: decimal units, as file managers show sizes."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{int(n)} B"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
