"""The runtime interface: what the engine above the runtime may ask of a model.

Everything above ``engine/runtime`` (reading, warm snapshots, the planner's calibration,
the facade) talks to a model through these protocols and never imports ``llama_cpp``.
Implementations:

- ``engine.runtime.llama.LlamaBackend``: llama.cpp in this process (the default).
- ``engine.runtime.fake.FakeBackend``: scripted replies and recorded prompts, for the
  fast tier of tests (in the spirit of simonw/llm's ``MockModel``).
- ``engine.runtime.server.ServerBackend``: a model on an OpenAI-compatible server
  (llama-server), a ``RemoteBackend`` (issue 16).

The contract, whoever implements it:

- ``Backend.inspect_model(path)`` gives the model's facts (``ModelInfo``: layers, KV
  heads, trained window) without loading it; the planner computes memory from them.
- ``Backend.describe_system()`` says in one line what the runtime's build runs with
  (llama.cpp's CPU features: the selftest refuses an AVX-512-only build).
- ``Backend.load_tokenizer(path)`` gives the vocabulary alone (fast, for exact counts);
  ``Backend.load_model(path, settings)`` gives a ``Model``: a tokenizer plus one sequence
  of context (``settings.n_ctx`` tokens) with a KV cache of ``settings.kv_type``. The
  settings come checked: the planner (``engine.planning.check_load``, called by
  ``ModelLane.ensure``) refuses a load that will not fit in memory before any backend
  sees it, so a backend loads what it is given and reports its own failures as
  ``ModelError``. Nothing in ``engine/runtime`` imports the planner.
- ``Model.prefill(tokens)`` makes the context hold exactly ``tokens``, evaluating only
  what it does not already hold (the longest common prefix is kept), in batches of
  ``n_batch``, calling ``on_progress`` after each and ``should_cancel`` before each:
  ``Cancelled`` leaves the context consistent up to the last finished batch.
- ``Model.generate`` streams text pieces after the context, greedy at temperature 0,
  stopping at end of generation, ``max_tokens`` or a full window; each generated token
  joins the context (``n_tokens`` grows).
- ``last_logits`` (the check logits of warm snapshots), ``save_sequence`` /
  ``load_sequence`` / ``clear`` (KV snapshots on disk). A backend that cannot save or
  restore raises ``GenerationError`` with the reason; the caller reads cold.
  ``runtime_version`` goes into snapshot keys: a snapshot is never restored by another.
- ``save_range`` / ``compose`` / ``can_shift`` (issue 17): save one span of the context
  (a document) with its tokens, and build a context from such files each moved to a new
  offset (the runtime moves the cached positions; llama.cpp rotates K again), evaluating
  the spans named ``recompute`` again in place. ``can_shift`` says why positions cannot
  be moved (sliding-window layers, a quantized K), or None. A backend that cannot do it
  raises ``GenerationError``; the caller reads cold.
- A ``Model`` is not thread-safe: one thread at a time (the GUI gives it one lane).
- ``CTX_ALIGN`` / ``align_ctx`` (windows are multiples of 256), ``KvType`` and
  ``LoadSettings`` live here because every layer uses them and none of them needs a
  runtime: the planner, the lane, the CLI and the GUI import them from this module.
"""

from __future__ import annotations

import array
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, cast, runtime_checkable

from engine.errors import Cancelled, GenerationError

if TYPE_CHECKING:
    import numpy as np

    from engine.models.gguf import ModelInfo

#: Windows are multiples of this many tokens: llama.cpp pads ``n_ctx`` up to it, and
#: llama-cpp-python's token buffer does not, so a longer prompt would crash in numpy.
CTX_ALIGN: Final = 256


def align_ctx(n: int) -> int:
    """Round a window up to a multiple of ``CTX_ALIGN`` (at least one)."""
    return max(CTX_ALIGN, -(-n // CTX_ALIGN) * CTX_ALIGN)


class KvType(StrEnum):
    """The KV cache types Longread offers, for both K and V caches (llama.cpp's names).

    Quantized types need flash attention; on CPUs they halve (q8_0) or quarter (q4_0)
    the cache and read 2-4x slower (docs/architecture.md, "Measured facts"). Every list of KV types (the CLI's
    choices, the settings dialog, the gauge, the planner) is this enum.
    """

    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_0 = "q4_0"

    @property
    def needs_flash_attn(self) -> bool:
        """llama.cpp needs flash attention for a quantized V cache."""
        return self is not KvType.F16


#: RoPE scalings that stretch a model beyond its trained window (the planner warns).
ROPE_SCALINGS: Final = ("linear", "yarn")


@dataclass(frozen=True, kw_only=True)
class LoadSettings:
    """How a model is loaded: window, KV cache, threads, batch and RoPE scaling.

    ``n_ctx`` is rounded up to a multiple of 256 and ``kv_type`` becomes a ``KvType``
    here, once. ``planned_bytes`` is the resident memory the planner expects the load
    to take, set when its check (``engine.planning.check_load``) passed it against the
    memory free now; ``None`` means nobody checked (tests and benchmarks that load
    directly).

    Raises:
        ValueError: an unknown KV type or RoPE scaling, or no threads (bugs in the caller).
    """

    n_ctx: int
    n_threads: int
    kv_type: KvType = KvType.F16
    n_batch: int = 512
    #: Keep a full-size cache for sliding-window layers (None: llama.cpp's default).
    swa_full: bool | None = None
    #: "linear" or "yarn" to stretch RoPE beyond the trained window; None: the model's own.
    rope_scaling: str | None = None
    #: RoPE frequency scale (trained / wanted window); 0: the model's.
    rope_freq_scale: float = 0.0
    #: YaRN's original (trained) window; 0: the model's.
    yarn_orig_ctx: int = 0
    planned_bytes: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_ctx", align_ctx(self.n_ctx))
        object.__setattr__(self, "kv_type", KvType(self.kv_type))
        if self.rope_scaling is not None and self.rope_scaling not in ROPE_SCALINGS:
            raise ValueError(f"unknown RoPE scaling {self.rope_scaling!r}")
        if self.n_threads < 1 or self.n_batch < 1:
            raise ValueError("n_threads and n_batch must be positive")


@dataclass(frozen=True)
class PrefillProgress:
    """Progress of a prefill: tokens done of total, speed and time left."""

    done: int
    total: int
    tokens_per_s: float
    eta_s: float
    reused: int = 0


@dataclass(frozen=True)
class PrefillStats:
    """What a prefill did: tokens evaluated now, tokens reused from the context, time."""

    evaluated: int
    reused: int
    seconds: float


ProgressFn = Callable[[PrefillProgress], None]
CancelFn = Callable[[], bool]
#: Where the text a model has written so far is complete (an offset to cut it at), or None.
EndFn = Callable[[str], int | None]


@dataclass(frozen=True)
class Branches:
    """What ``Model.generate_branches`` wrote: each continuation's text (cut where its
    ``ends`` said) and tokens written, the tails' prefill and the writing time of all together."""

    texts: list[str]
    output_tokens: list[int]
    prefill: PrefillStats
    generate_s: float


def branches_one_by_one(
    model: Model,
    tails: Sequence[Sequence[int]],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    ends: Sequence[EndFn | None] = (),
    should_cancel: CancelFn | None = None,
) -> Branches:
    """``generate_branches`` one continuation after the other: each tail read after the
    context and written after, then the context cut back to what it was. The runtimes
    that cannot write side by side use it (and the fake, so that the engine's path through
    branches is the one the fast tests run)."""
    base = model.context_tokens
    texts: list[str] = []
    outs: list[int] = []
    evaluated = 0
    prefill_s = generate_s = 0.0
    for k, tail in enumerate(tails):
        end = ends[k] if k < len(ends) else None
        stats = model.prefill([*base, *tail], should_cancel=should_cancel)
        evaluated += stats.evaluated
        prefill_s += stats.seconds
        started = time.perf_counter()
        written = ""
        cut: int | None = None
        for piece in model.generate(
            max_tokens=max_tokens, temperature=temperature, seed=seed, should_cancel=should_cancel
        ):
            written += piece
            if end is not None and (cut := end(written)) is not None:
                break
        generate_s += time.perf_counter() - started
        texts.append(written[:cut])
        outs.append(model.n_tokens - len(base) - len(tail))
    model.prefill(base)  # the context as it was: nothing to evaluate, the rest dropped
    reused = len(base) * len(tails) + sum(len(t) for t in tails) - evaluated
    return Branches(texts, outs, PrefillStats(evaluated, reused, prefill_s), generate_s)


class OneAtATime:
    """``Model.generate_branches`` for runtimes that write one continuation at a time
    (``branches_one_by_one``). ``max_branches`` is how many the engine may ask for at
    once: 1 unless the runtime says otherwise (the fake says 4, so that the fast tests run
    the engine's path through branches)."""

    max_branches: int = 1

    def generate_branches(
        self,
        tails: Sequence[Sequence[int]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        ends: Sequence[EndFn | None] = (),
        should_cancel: CancelFn | None = None,
    ) -> Branches:
        model = cast("Model", self)
        return branches_one_by_one(
            model,
            tails,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            ends=ends,
            should_cancel=should_cancel,
        )


def prefill_in_batches(
    tokens: Sequence[int],
    *,
    reused: int,
    n_ctx: int,
    n_batch: int,
    keep: Callable[[int], None],
    evaluate: Callable[[Sequence[int]], None],
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> PrefillStats:
    """The one prefill loop every ``Model`` runs: evaluate ``tokens[reused:]`` in batches
    of ``n_batch``, checking ``should_cancel`` before each batch and reporting progress
    after it, so every backend cancels and reports alike.

    Args:
        tokens: the whole prompt; the context already holds ``tokens[:reused]``.
        reused: how many leading tokens the context keeps (at most ``len(tokens) - 1``:
            the last token is always evaluated again, its logits start the answer).
        keep: cuts the context back to its first ``n`` tokens (called once, after the
            checks, before the first batch).
        evaluate: appends one batch to the context (raises ``GenerationError`` on failure).

    Raises:
        GenerationError: no tokens, or more than the window holds.
        Cancelled: ``should_cancel`` returned True before a batch; the context holds every
            batch evaluated until then.
    """
    total = len(tokens)
    if total == 0:
        raise GenerationError("There is nothing to read: the prompt is empty.")
    if total > n_ctx:
        raise GenerationError(f"The prompt has {total:,} tokens but the window holds {n_ctx:,}.")
    reused = min(reused, total - 1)
    keep(reused)
    start = time.perf_counter()
    done = reused
    while done < total:
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        batch = tokens[done : min(total, done + n_batch)]
        evaluate(batch)
        done += len(batch)
        if on_progress is not None:
            elapsed = time.perf_counter() - start
            rate = (done - reused) / elapsed if elapsed > 0 else 0.0
            eta = (total - done) / rate if rate > 0 else 0.0
            on_progress(PrefillProgress(done, total, rate, eta, reused))
    return PrefillStats(evaluated=total - reused, reused=reused, seconds=time.perf_counter() - start)


@runtime_checkable
class Tokenizer(Protocol):
    """A model's vocabulary and chat template."""

    path: Path

    @property
    def chat_template(self) -> str | None: ...

    @property
    def n_ctx_train(self) -> int: ...

    def tokenize_text(self, text: str) -> list[int]:
        """Document or user text: never special tokens, no BOS."""
        ...

    def tokenize_template(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Chat-template text, where special tokens are meant."""
        ...

    def detokenize(self, tokens: Sequence[int]) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class Model(Tokenizer, Protocol):
    """A tokenizer plus one sequence of context. One thread at a time."""

    n_threads: int

    @property
    def kv_type(self) -> KvType:
        """The K and V cache type."""
        ...

    @property
    def runtime_version(self) -> str:
        """The runtime's version (llama-cpp-python's): snapshots made by another are stale."""
        ...

    @property
    def n_ctx(self) -> int: ...

    @property
    def n_batch(self) -> int: ...

    @property
    def n_vocab(self) -> int: ...

    @property
    def flash_attn(self) -> bool: ...

    @property
    def n_tokens(self) -> int:
        """How many tokens the context holds now."""
        ...

    @property
    def context_tokens(self) -> list[int]:
        """The tokens the context holds now, in order."""
        ...

    def prefill(
        self,
        tokens: Sequence[int],
        *,
        on_progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> PrefillStats: ...

    def generate(
        self,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        should_cancel: CancelFn | None = None,
    ) -> Iterator[str]: ...

    def last_logits(self) -> np.ndarray: ...

    def save_sequence(self, path: Path) -> int: ...

    def load_sequence(self, path: Path, *, max_tokens: int) -> list[int]: ...

    def clear(self) -> None: ...

    @property
    def can_shift(self) -> str | None:
        """Why cached positions cannot be moved to other offsets here, or None."""
        ...

    def save_range(self, path: Path, start: int, end: int) -> int:
        """Write context positions ``[start, end)`` (cells and tokens) to ``path``."""
        ...

    def compose(
        self,
        parts: Sequence[tuple[Path, int]],
        *,
        tokens: Sequence[int],
        recompute: Sequence[tuple[int, int]],
    ) -> PrefillStats:
        """Make the context hold ``tokens`` from ``save_range`` files, each moved to the
        position given with it, evaluating ``recompute`` again in place (a range going on past ``tokens``
        gives only its cells inside them)."""
        ...

    def logits_after_each(self, tokens: Sequence[int]) -> np.ndarray:
        """Append ``tokens`` (at most a batch) and return the logits after each, in order."""
        ...

    @property
    def max_branches(self) -> int:
        """How many continuations ``generate_branches`` writes side by side (1: one at a time)."""
        ...

    def generate_branches(
        self,
        tails: Sequence[Sequence[int]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        ends: Sequence[EndFn | None] = (),
        should_cancel: CancelFn | None = None,
    ) -> Branches:
        """Continue the context with each of ``tails``: read each after the context and
        write up to ``max_tokens`` after it, until an end-of-generation token or until
        its ``ends[k]`` (if any) says its text is complete; side by side where the runtime can (up to
        ``max_branches``), else one after the other. The context is left as it was.

        Raises:
            Cancelled: ``should_cancel`` returned True between two tokens.
            GenerationError: the runtime failed.
        """
        ...


class Backend(Protocol):
    """Loads tokenizers and models. ``name`` and ``version`` go into snapshot keys."""

    name: str
    version: str

    def describe_system(self) -> str:
        """One line on what the runtime's build runs with (llama.cpp: its CPU features)."""
        ...

    def inspect_model(self, path: Path) -> ModelInfo:
        """The model's facts (layers, KV heads, trained window) without loading it."""
        ...

    def load_tokenizer(self, path: Path) -> Tokenizer: ...

    def load_model(self, path: Path, settings: LoadSettings) -> Model:
        """Load the model at ``path`` as ``settings`` say (checked by the planner).

        Raises:
            ModelFileError: not a model file this backend can read.
            ModelError: the runtime could not load it (out of memory, say).
        """
        ...


@runtime_checkable
class RemoteBackend(Backend, Protocol):
    """A backend whose model lives on a server: no local file, no local memory to plan.

    ``model_sha256(path)`` identifies the served model (token caches and calibrations are
    keyed by it, as a local model's by its file's sha256); ``slots`` is how many requests
    the server runs at once (``open_slot(i, settings)`` pins a model to one). The lane
    skips the planner's memory check for it: the server's memory is not this machine's.
    """

    remote: bool
    slots: int
    #: The server's address, named in every message about it.
    url: str

    @property
    def model_path(self) -> Path:
        """The served model's name as a path (for display; never opened)."""
        ...

    def model_sha256(self, path: Path) -> str: ...

    def open_slot(self, slot: int, settings: LoadSettings) -> Model: ...


def write_range_file(path: Path, magic: bytes, start: int, tokens: Sequence[int], cells: bytes = b"") -> int:
    """Write a snapshot file: ``magic``, the first position and the token count, the tokens
    (int32), then the runtime's ``cells`` (a ``save_range`` file; the fake's whole sequences).

    Returns:
        bytes written.

    Raises:
        GenerationError: the file cannot be written.
    """
    data = magic + struct.pack("<II", start, len(tokens)) + array.array("i", tokens).tobytes() + cells
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise GenerationError(f"Could not write the snapshot {path}: {exc.strerror}.") from exc
    return len(data)


def read_range_file(path: Path, magic: bytes) -> tuple[int, list[int], bytes]:
    """A ``write_range_file`` file: its first position, its tokens and the cells' bytes.

    Raises:
        GenerationError: unreadable, or not such a file.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GenerationError(f"Could not read the snapshot {path.name}: {exc.strerror}.") from exc
    head = len(magic) + 8
    if len(data) < head or not data.startswith(magic):
        raise GenerationError(f"The snapshot {path.name} is damaged or was not written by this runtime.")
    start, count = struct.unpack_from("<II", data, len(magic))
    tokens = array.array("i")
    tokens.frombytes(data[head : head + 4 * count])
    if len(tokens) != count:
        raise GenerationError(f"The snapshot {path.name} does not hold the tokens its header names.")
    return start, tokens.tolist(), data[head + 4 * count :]
