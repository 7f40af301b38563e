"""The planner's model of a load: memory and speed from a model's facts, no I/O.

Pure: nothing here reads a file, the clock or the OS, or loads a model. What it needs
comes in as arguments (``ModelInfo`` from ``Backend.inspect_model``, the memory free now,
stored calibrations); ``engine/planner.py`` gathers those and ``engine/lane.py`` checks
each load here before the backend sees it.

The contract:

- ``make_plan(model, corpus_tokens, available_bytes=...)`` builds one ``Plan``: for each
  KV cache type (``KvType``) the resident memory of weights, KV cache, compute buffers
  and fixed overhead at the chosen window, whether that fits the memory available, the
  estimated prefill time (from calibrations stored for this model, when there are
  any), whether the type needs flash attention, and a warning where one is due. It
  recommends the fastest type that fits, or refuses with the numbers and the ways out
  (``Plan.refusal`` / ``Plan.raise_if_refused``). The CLI and the GUI show the same
  object (``Plan.describe()`` and the budget gauge), with ``engine.units``' wording.
- A window beyond the model's trained length is refused unless RoPE scaling ("linear"
  or "yarn") is asked for; with scaling it is allowed with a warning that answers may
  get worse. ``Plan.load_settings()`` gives ``Backend.load_model`` the matching
  ``LoadSettings``.
- ``check_load(model, settings, available_bytes=...)`` is the check every load passes:
  it returns the settings with ``planned_bytes`` set, or raises ``PlanRefused`` with
  the numbers and the ways out, so the OS never has to kill the process (issue 5).
- A model's measured effective context (``MeasuredContext``, from ``engine/probe.py``'s
  probes, issue 14) is passed in per KV type: a corpus that fits the window but is longer
  than what the model reliably reads gets the row's ``reliability`` note ("fits the
  window, beyond what this model reliably reads (measured 2,048 tokens at q8_0)") and,
  when the recommended type is such a row, ``Plan.waves``: read in waves of the measured
  length instead, with their number and time.
- ``SpeedModel`` turns calibration timings (two batches at different positions) into a
  prediction for a long corpus: ``T(N) = a*N + b*S(N)`` with ``S(N)`` the positions
  attended, summed over the corpus, sliding-window layers counted at their window.

What "memory" means here (and in ``benchmarks/memory.py``, which checks it): the
resident memory a load plus a full prefill adds to the process. The weights are mmapped
and count once their pages are read (every tensor is read during a prefill), plus the
copy llama.cpp's CPU backend makes of repacked matrices. The KV cache is written in
full at load (llama.cpp clears it). The compute buffer is reserved at llama.cpp's worst
case (logits for a whole batch: 512 MiB for Gemma's 262k vocabulary) but only the pages
a prefill touches become resident: the attention scores of one batch against the
window, and the batch's activations. Fitted constants below were measured with
llama-cpp-python 0.3.36 on Linux; ``benchmarks/memory.py`` re-measures them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from engine.errors import EngineError
from engine.models.gguf import ModelInfo
from engine.runtime.backend import CTX_ALIGN, ROPE_SCALINGS, KvType, LoadSettings, align_ctx
from engine.units import format_bytes, format_count, format_duration

if TYPE_CHECKING:
    from engine.store.db import CalibrationRow

__all__ = [
    "ANSWER_RESERVE",
    "FOLLOW_UP_HEADROOM",
    "MeasuredContext",
    "PROMPT_RESERVE",
    "Plan",
    "PlanRefused",
    "PlanRow",
    "SpeedModel",
    "WavesAdvice",
    "check_load",
    "estimate_compute_bytes",
    "estimate_overhead_bytes",
    "fit_speed_models",
    "make_plan",
    "sum_attended_positions",
]

#: Tokens kept for the prompt frame and the question, and for the answer, on top of the
#: corpus; plus room for follow-ups (the Reader's FOLLOW_UP_HEADROOM) when the window is
#: chosen automatically.
PROMPT_RESERVE: Final = 128
ANSWER_RESERVE: Final = 256
FOLLOW_UP_HEADROOM: Final = 512
MIB: Final = 1 << 20
_MAX_WINDOW: Final = 1 << 22

# Fitted on SmolLM2-135M and Gemma 3 270M (benchmarks/memory.py), llama-cpp-python
# 0.3.36, Linux x86-64. Activations of one batch: this many f32 vectors of the
# embedding size and of the feed-forward size per token stay live at the peak.
_ACT_EMBD_VECTORS: Final = 8
_ACT_FF_VECTORS: Final = 3
# Without flash attention, bytes per cell and batch token beyond the f32 scores and
# masks (measured: ggml-cpu's work buffer converting part of the scores to f16).
_NO_FA_EXTRA_PER_CELL: Final = 10
# Fixed process overhead of a loaded model (llama.cpp context, threadpool, Python
# wrappers) and per vocabulary entry (token strings, maps, llama-cpp-python's copies).
_FIXED_OVERHEAD: Final = 10 * MIB
_PER_VOCAB_ENTRY: Final = 120


class PlanRefused(EngineError):
    """The corpus cannot be read with these settings; the message says why and what to do.
    ``plan`` is the plan refused (None when a load was refused by ``check_load``)."""

    def __init__(self, message: str, *, plan: Plan | None) -> None:
        super().__init__(message)
        self.plan = plan


# --- memory ----------------------------------------------------------------------------


def estimate_compute_bytes(model: ModelInfo, n_ctx: int, *, flash_attn: bool, n_ubatch: int = 512) -> int:
    """Resident bytes of llama.cpp's compute buffer at the peak of a prefill.

    Without flash attention the attention scores of one batch against every cell are
    materialized in f32 (``n_head x n_kv x n_ubatch``, softmax in place), next to the
    f32 masks (``n_kv x n_ubatch``; two for sliding-window models) and ggml-cpu's work
    buffer. Flash attention never materializes the scores and takes f16 masks. The batch's activations come on top. Only the last token's
    logits are computed in a prefill, so llama.cpp's reserved logits buffer (the
    figure it logs) stays untouched.

    Args:
        model: the model's inspection.
        n_ctx: the window (cells the full-attention layers attend to at the end).
        flash_attn: whether flash attention is on (always for a quantized V cache).
        n_ubatch: llama.cpp's physical batch.
        measured: the effective context probed per KV type (``engine.probe``), if any.

    Returns:
        Bytes.
    """
    n_kv = align_ctx(n_ctx)
    # Sliding-window models build a second mask for their sliding layers.
    n_masks = 2 if model.n_sliding_layers else 1
    if flash_attn:
        attention = n_ubatch * n_kv * 2 * n_masks
    else:
        attention = n_ubatch * n_kv * (4 * (model.n_head + n_masks) + _NO_FA_EXTRA_PER_CELL)
    activations = (
        n_ubatch
        * 4
        * (
            _ACT_EMBD_VECTORS * max(model.embedding_length, model.n_head * model.key_length)
            + _ACT_FF_VECTORS * model.feed_forward_length
        )
    )
    return attention + activations


def _weights_bytes(model: ModelInfo) -> int:
    # The whole file is mmapped and read (header and vocabulary pages too), plus the
    # copy of repacked matrices.
    return model.file_size + model.repackable_bytes


def estimate_overhead_bytes(model: ModelInfo) -> int:
    """Bytes a loaded model adds besides weights, KV cache and compute buffer:
    llama.cpp's vocabulary structures and context, llama-cpp-python's wrappers."""
    return _FIXED_OVERHEAD + _PER_VOCAB_ENTRY * model.vocab_size


# --- speed -----------------------------------------------------------------------------


def sum_attended_positions(model: ModelInfo, n_tokens: int, *, start: int = 0, sliding_full: bool = False) -> float:
    """Positions attended by tokens ``start..n_tokens-1``, averaged over the layers'
    KV heads: each full-attention layer attends to every earlier position, a
    sliding-window layer to at most ``sliding_window`` of them.

    ``sliding_full``: count sliding-window layers as full attention. That is their cost
    when the cache keeps every position (``swa_full``) and flash attention is off:
    llama.cpp then multiplies over every cell it keeps and masks afterwards. Measured
    on Gemma 3 270M, f16, 2 threads: a cold read of 32,512 tokens took 618.5 s; fitted
    from the same two 512-token calibration batches, the windowed count predicted 257 s
    and this one 627 s. With flash attention the CPU kernel skips masked cells, and
    the windowed count is the closer one (q8_0: 357 s predicted, 428 s measured; counted
    as full, 926 s).
    """

    def triangle(n: int, window: int | None) -> float:
        if window is None or n <= window:
            return n * (n + 1) / 2
        return window * (window + 1) / 2 + (n - window) * window

    weights = [max(h, 1) for h in model.n_head_kv]
    pattern = model.sliding_window_pattern
    total = 0.0
    for il, weight in enumerate(weights):
        sliding = pattern is not None and il < len(pattern) and pattern[il] and model.sliding_window
        window = model.sliding_window if sliding and not sliding_full else None
        total += weight * (triangle(n_tokens, window) - triangle(start, window))
    return total / sum(weights)


@dataclass(frozen=True)
class SpeedModel:
    """Prefill seconds for ``n`` tokens: ``per_token * n + per_position * S(n)``, with
    ``S`` from ``sum_attended_positions`` (``sliding_full`` as there)."""

    kv_type: str
    per_token_s: float
    per_position_s: float
    calibrated_tokens: int
    sliding_full: bool = False

    def estimate_seconds(self, model: ModelInfo, n_tokens: int) -> float:
        """Seconds to prefill ``n_tokens`` from an empty context."""
        attended = sum_attended_positions(model, n_tokens, sliding_full=self.sliding_full)
        return self.per_token_s * n_tokens + self.per_position_s * attended

    @classmethod
    def fit(
        cls, model: ModelInfo, kv_type: str, batch: int, seconds: Sequence[float], *, sliding_full: bool = False
    ) -> SpeedModel:
        """Fit the two costs to consecutive batch timings (least squares, costs >= 0)."""
        rows: list[tuple[float, float, float]] = []
        for i, secs in enumerate(seconds):
            start, end = i * batch, (i + 1) * batch
            rows.append(
                (float(batch), sum_attended_positions(model, end, start=start, sliding_full=sliding_full), secs)
            )
        # Normal equations of y = a*x1 + b*x2.
        s11 = sum(r[0] * r[0] for r in rows)
        s12 = sum(r[0] * r[1] for r in rows)
        s22 = sum(r[1] * r[1] for r in rows)
        s1y = sum(r[0] * r[2] for r in rows)
        s2y = sum(r[1] * r[2] for r in rows)
        det = s11 * s22 - s12 * s12
        a = b = -1.0
        if len(rows) >= 2 and det > 0:
            a = (s1y * s22 - s2y * s12) / det
            b = (s11 * s2y - s12 * s1y) / det
        if a <= 0 or b < 0:
            # Timing noise (another program running): fall back to one rate, no growth.
            a, b = sum(r[2] for r in rows) / sum(r[0] for r in rows), 0.0
        return cls(kv_type, a, b, batch * len(seconds), sliding_full)


# --- the measured effective context (issue 14) ---------------------------------------


@dataclass(frozen=True)
class MeasuredContext:
    """What a probe measured at one KV cache type (engine/probe.py): the longest length, in
    tokens of prompt and answer, at which every task scored at least ``threshold``.
    ``tokens`` is 0 when even ``shortest_tested`` fell below; ``weakest`` names the task
    and length that ended it ("" when every length tested passed)."""

    kv_type: KvType
    tokens: int
    shortest_tested: int
    longest_tested: int
    window: int
    threshold: float
    weakest: str = ""

    def describe(self) -> str:
        """``measured 2,048 tokens at q8_0`` (or what fell short)."""
        if self.tokens:
            return f"measured {self.tokens:,} tokens at {self.kv_type}"
        return f"below {self.threshold:.1%} even at {self.shortest_tested:,} tokens at {self.kv_type}"


@dataclass(frozen=True)
class WavesAdvice:
    """Read a corpus beyond the effective context in waves of the measured length."""

    kv_type: KvType
    wave_tokens: int
    n_waves: int
    est_s: float | None

    def describe(self) -> str:
        took = f", about {format_duration(self.est_s)} of reading" if self.est_s else ""
        return f"read in {self.n_waves} waves of about {self.wave_tokens:,} tokens (KV cache {self.kv_type}{took})"


# --- the plan --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    """One KV cache type at the plan's window."""

    kv_type: KvType
    n_ctx: int
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    overhead_bytes: int
    fits_memory: bool
    est_prefill_s: float | None
    needs_flash_attn: bool
    max_ctx_fitting: int
    warning: str | None = None
    #: Set when the corpus fits the window but not the measured effective context.
    reliability: str | None = None

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.overhead_bytes


@dataclass(frozen=True)
class Plan:
    """What reading a corpus with a model will take, per KV cache type, and what to use."""

    model: ModelInfo
    corpus_tokens: int
    tokens_exact: bool
    needed_tokens: int
    n_ctx: int
    available_bytes: int | None
    rows: tuple[PlanRow, ...]
    recommended: PlanRow | None
    rope_scaling: str | None
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    swa_full: bool = True
    #: The probe measurements used (issue 14) and, when the recommended type cannot be
    #: trusted with the whole corpus, the waves to read in instead.
    measured: tuple[MeasuredContext, ...] = ()
    waves: WavesAdvice | None = None
    #: The server the model runs on (issue 16): its window is the server's, and this
    #: machine's memory is not involved (no rows).
    server: str | None = None

    @property
    def max_ctx(self) -> int:
        """The model's trained window (the largest without RoPE scaling)."""
        return self.model.context_length

    @property
    def stretched(self) -> bool:
        """True when the window goes beyond the trained length with RoPE scaling."""
        return self.rope_scaling is not None and self.n_ctx > self.model.context_length

    @property
    def ok(self) -> bool:
        """True when the corpus can be read as planned (``recommended`` is set)."""
        return not self.problems and self.recommended is not None

    @property
    def fits_window(self) -> bool:
        return self.needed_tokens <= self.n_ctx

    def row(self, kv_type: str) -> PlanRow:
        """The row of one KV cache type."""
        for row in self.rows:
            if row.kv_type == kv_type:
                return row
        raise KeyError(kv_type)

    def refusal(self) -> str | None:
        """The message that refuses the load, or None when it can go ahead."""
        if self.ok:
            return None
        return " ".join(self.problems) or "No KV cache type fits."

    def raise_if_refused(self) -> None:
        """Raises:
        PlanRefused: the plan cannot be carried out; its message gives the numbers and
            the ways out."""
        message = self.refusal()
        if message is not None:
            raise PlanRefused(message, plan=self)

    def load_settings(self, *, n_threads: int, n_batch: int = 512, kv_type: str | None = None) -> LoadSettings:
        """``LoadSettings`` that carry out this plan: its window, the recommended KV type
        (or ``kv_type``), RoPE scaling when the window goes beyond the trained length.
        ``planned_bytes`` is left for ``check_load`` to set against the memory free then.
        """
        kv = KvType(kv_type) if kv_type is not None else (self.recommended or self.rows[0]).kv_type
        trained = self.model.context_length
        return LoadSettings(
            n_ctx=self.n_ctx,
            kv_type=kv,
            n_threads=n_threads,
            n_batch=n_batch,
            swa_full=self.swa_full,
            rope_scaling=self.rope_scaling if self.stretched else None,
            rope_freq_scale=trained / self.n_ctx if self.stretched else 0.0,
            yarn_orig_ctx=trained if self.stretched and self.rope_scaling == "yarn" else 0,
        )

    def describe(self) -> list[str]:
        """Lines a user can read: the corpus, a table per KV type, the verdict."""
        m = self.model
        approx = "" if self.tokens_exact else "about "
        lines = [
            f"Model: {m.name} ({m.file_type}, {format_count(m.parameter_count)} parameters, "
            f"trained on {m.context_length:,}-token windows)",
            f"Corpus: {approx}{self.corpus_tokens:,} tokens; with question and answer {self.needed_tokens:,}; "
            f"window {self.n_ctx:,} tokens",
            "Memory available now: "
            + (format_bytes(self.available_bytes) if self.available_bytes is not None else "unknown"),
            "",
            f"{'KV cache':<9}{'weights':>10}{'KV cache':>10}{'compute':>10}{'other':>9}{'total':>10}"
            f"{'fits':>6}  {'reading time':<14} largest window that fits",
        ]
        for row in self.rows:
            speed = format_duration(row.est_prefill_s) if row.est_prefill_s is not None else "not measured"
            lines.append(
                f"{row.kv_type:<9}{format_bytes(row.weights_bytes):>10}{format_bytes(row.kv_bytes):>10}"
                f"{format_bytes(row.compute_bytes):>10}{format_bytes(row.overhead_bytes):>9}"
                f"{format_bytes(row.total_bytes):>10}{'yes' if row.fits_memory else 'NO':>6}  "
                f"{speed:<14} {row.max_ctx_fitting:,}"
            )
        lines.append("")
        for row in self.rows:
            if row.warning:
                lines.append(f"{row.kv_type}: {row.warning}")
            if row.reliability:
                lines.append(f"{row.kv_type}: {row.reliability}.")
        lines.extend(self.warnings)
        if self.ok and self.recommended is not None:
            rec = self.recommended
            speed = f", reading takes about {format_duration(rec.est_prefill_s)}" if rec.est_prefill_s else ""
            scaling = f", RoPE scaling {self.rope_scaling}" if self.stretched else ""
            whole = (
                f"KV cache {rec.kv_type}, window {self.n_ctx:,} tokens{scaling} "
                f"({format_bytes(rec.total_bytes)}{speed})"
            )
            if self.waves is not None:
                lines.append(
                    f"Recommended: {self.waves.describe()}: the corpus {rec.reliability}. "
                    f"Reading it whole is possible: {whole}."
                )
            else:
                lines.append(f"Recommended: {whole}.")
        else:
            lines.append("Cannot read: " + (self.refusal() or ""))
        return lines


def make_plan(
    model: ModelInfo,
    corpus_tokens: int,
    *,
    tokens_exact: bool = True,
    n_ctx: int = 0,
    kv_types: Sequence[str] = tuple(KvType),
    answer_tokens: int = ANSWER_RESERVE,
    prompt_tokens: int = PROMPT_RESERVE,
    available_bytes: int | None,
    calibrations: Sequence[CalibrationRow] = (),
    rope_scaling: str | None = None,
    swa_full: bool = True,
    n_ubatch: int = 512,
    measured: Mapping[KvType, MeasuredContext] | None = None,
) -> Plan:
    """Plan reading ``corpus_tokens`` tokens with ``model`` on this machine.

    Args:
        model: the model's facts (``Backend.inspect_model``).
        corpus_tokens: the corpus's tokens (exact model counts, or an estimate).
        tokens_exact: False when ``corpus_tokens`` is an estimate (said in the text).
        n_ctx: the window asked for; 0 chooses the smallest that holds the corpus,
            question, answer and room for follow-ups (at most the trained length,
            unless RoPE scaling is asked for).
        kv_types: the cache types to compare (the first is the fallback recommendation).
        answer_tokens: tokens kept for the answer.
        prompt_tokens: tokens kept for the prompt frame and the question.
        available_bytes: memory available now (``engine.machine.read_available_memory``);
            None means unknown (then every type "fits" and the plan says so).
        calibrations: stored measurements for this model (``Store.get_calibrations``).
        rope_scaling: "linear" or "yarn" to allow a window beyond the trained length.
        swa_full: whether sliding-window layers keep the whole window (llama.cpp's
            default, which ``load_model`` keeps).
        n_ubatch: llama.cpp's physical batch.

    Returns:
        The ``Plan``.

    Raises:
        ValueError: a negative token count, an unknown KV type or RoPE scaling (bugs
            in the caller).
    """
    if corpus_tokens < 0:
        raise ValueError("corpus_tokens must not be negative")
    if rope_scaling is not None and rope_scaling not in ROPE_SCALINGS:
        raise ValueError(f"unknown RoPE scaling {rope_scaling!r}")
    if not kv_types:
        raise ValueError("no KV cache types to plan")
    kinds = [KvType(t) for t in kv_types]  # ValueError on an unknown one

    trained = model.context_length
    needed = corpus_tokens + prompt_tokens + answer_tokens
    problems: list[str] = []
    warnings: list[str] = []
    if n_ctx:
        window = align_ctx(n_ctx)
    else:
        window = align_ctx(needed + FOLLOW_UP_HEADROOM)
        if window > trained and align_ctx(needed) <= trained:
            window = trained  # fits without the follow-up room: no scaling needed
        elif window > trained and rope_scaling is None:
            window = align_ctx(trained) if trained % CTX_ALIGN else trained
    if needed > window:
        problems.append(
            f"The corpus needs {needed:,} tokens (corpus {corpus_tokens:,}, question and answer "
            f"{prompt_tokens + answer_tokens:,}) but the window holds {window:,}. "
            + _ways_out_of_window(model, needed, explicit=bool(n_ctx), rope_scaling=rope_scaling)
        )
    if window > trained:
        if rope_scaling is None:
            problems.append(
                f"A {window:,}-token window is beyond the {trained:,} tokens {model.name} was trained on: "
                "it would read garbage past that point. Use a window of at most "
                f"{trained:,}, or allow RoPE scaling (--rope yarn) and accept that answers may get worse."
            )
        else:
            warnings.append(
                f"Reading {window:,} tokens stretches {model.name} beyond its trained {trained:,} tokens with "
                f"{rope_scaling} RoPE scaling ({window / trained:.1f}x): answers may be worse, especially "
                "about text far from the end. Check important answers against the pages."
            )

    speed_models = fit_speed_models(model, calibrations, swa_full=swa_full)
    rows = tuple(
        _make_row(
            model,
            kv,
            window,
            prefill_tokens=min(needed, window),
            available=available_bytes,
            speed=speed_models.get(kv),
            swa_full=swa_full,
            n_ubatch=n_ubatch,
            f16_speed=speed_models.get(KvType.F16),
            ctx_limit=trained if rope_scaling is None else _MAX_WINDOW,
        )
        for kv in kinds
    )
    measured = measured or {}
    rows = tuple(_with_reliability(row, measured.get(row.kv_type), needed, window) for row in rows)
    if available_bytes is None:
        warnings.append("Longread could not read how much memory is free: the memory check was skipped.")
    recommended = _recommend(rows)
    if recommended is None and rows:
        smallest = min(rows, key=lambda r: r.total_bytes)
        problems.append(
            f"A {window:,}-token window needs at least {format_bytes(smallest.total_bytes)} "
            f"(KV cache {smallest.kv_type}: weights {format_bytes(smallest.weights_bytes)}, "
            f"KV cache {format_bytes(smallest.kv_bytes)}, compute {format_bytes(smallest.compute_bytes)}) "
            f"but only {format_bytes(available_bytes or 0)} is free. " + _ways_out_of_memory(rows)
        )
    return Plan(
        model=model,
        corpus_tokens=corpus_tokens,
        tokens_exact=tokens_exact,
        needed_tokens=needed,
        n_ctx=window,
        available_bytes=available_bytes,
        rows=rows,
        recommended=None if problems else recommended,
        rope_scaling=rope_scaling,
        problems=tuple(problems),
        warnings=tuple(warnings),
        swa_full=swa_full,
        measured=tuple(measured.values()),
        waves=None
        if problems or recommended is None
        else _advise_waves(
            model,
            recommended,
            measured.get(recommended.kv_type),
            corpus_tokens=corpus_tokens,
            frame_tokens=prompt_tokens + answer_tokens,
            speed=speed_models.get(recommended.kv_type),
        ),
    )


def _with_reliability(row: PlanRow, m: MeasuredContext | None, needed: int, window: int) -> PlanRow:
    if m is None or needed <= m.tokens or needed > window:
        return row
    return replace(row, reliability=f"fits the window, beyond what this model reliably reads ({m.describe()})")


def _advise_waves(
    model: ModelInfo,
    row: PlanRow,
    m: MeasuredContext | None,
    *,
    corpus_tokens: int,
    frame_tokens: int,
    speed: SpeedModel | None,
) -> WavesAdvice | None:
    """Waves of the measured length for a corpus beyond it (None when it is within it, or
    when nothing was read reliably: smaller waves would then be a guess)."""
    if m is None or row.reliability is None or m.tokens <= frame_tokens:
        return None
    per_wave = m.tokens - frame_tokens
    n_waves = max(1, math.ceil(corpus_tokens / per_wave))
    est = n_waves * speed.estimate_seconds(model, m.tokens) if speed is not None else None
    return WavesAdvice(row.kv_type, m.tokens, n_waves, est)


def _make_row(
    model: ModelInfo,
    kv_type: KvType,
    n_ctx: int,
    *,
    prefill_tokens: int,
    available: int | None,
    speed: SpeedModel | None,
    f16_speed: SpeedModel | None,
    swa_full: bool,
    n_ubatch: int,
    ctx_limit: int,
) -> PlanRow:
    flash = kv_type.needs_flash_attn

    def total_at(ctx: int) -> int:
        return (
            _weights_bytes(model)
            + model.kv_cache_bytes(ctx, kv_type, kv_type, swa_full=swa_full, n_ubatch=n_ubatch)
            + estimate_compute_bytes(model, ctx, flash_attn=flash, n_ubatch=n_ubatch)
            + estimate_overhead_bytes(model)
        )

    est = speed.estimate_seconds(model, prefill_tokens) if speed is not None else None
    warning = None
    if flash:
        warning = "needs flash attention (llama.cpp requires it for a quantized cache)"
        if est is not None and f16_speed is not None:
            f16_est = f16_speed.estimate_seconds(model, prefill_tokens)
            if f16_est > 0:
                warning += f"; measured on this machine, reading takes {est / f16_est:.1f}x the time of f16"
        else:
            warning += "; on CPUs that path often reads 2-4x slower than f16 (not measured here yet)"
        warning += "."
    fits = available is None or total_at(n_ctx) <= available
    return PlanRow(
        kv_type=kv_type,
        n_ctx=n_ctx,
        weights_bytes=_weights_bytes(model),
        kv_bytes=model.kv_cache_bytes(n_ctx, kv_type, kv_type, swa_full=swa_full, n_ubatch=n_ubatch),
        compute_bytes=estimate_compute_bytes(model, n_ctx, flash_attn=flash, n_ubatch=n_ubatch),
        overhead_bytes=estimate_overhead_bytes(model),
        fits_memory=fits,
        est_prefill_s=est,
        needs_flash_attn=flash,
        max_ctx_fitting=_find_max_ctx(total_at, available, limit=ctx_limit),
        warning=warning,
    )


def _find_max_ctx(total_at: Callable[[int], int], available: int | None, *, limit: int) -> int:
    """The largest window (multiple of 256, at most ``limit``) whose total fits ``available``."""
    if available is None:
        return limit
    lo, hi = 0, limit // CTX_ALIGN
    if total_at(CTX_ALIGN) > available:
        return 0
    while lo < hi:  # total grows with the window: bisect on multiples of 256
        mid = (lo + hi + 1) // 2
        if total_at(mid * CTX_ALIGN) <= available:
            lo = mid
        else:
            hi = mid - 1
    return lo * CTX_ALIGN


def _recommend(rows: Sequence[PlanRow]) -> PlanRow | None:
    """The fastest measured type that fits; unmeasured, the first that fits (f16 first:
    on CPUs the unquantized cache without flash attention reads fastest, docs/architecture.md)."""
    fitting = [r for r in rows if r.fits_memory]
    if not fitting:
        return None
    measured = [r for r in fitting if r.est_prefill_s is not None]
    if len(measured) == len(fitting):
        return min(measured, key=lambda r: r.est_prefill_s or 0.0)
    return fitting[0]


def fit_speed_models(
    model: ModelInfo, calibrations: Sequence[CalibrationRow], *, swa_full: bool
) -> dict[str, SpeedModel]:
    """One ``SpeedModel`` per KV type from stored calibrations (newest first)."""
    found: dict[str, SpeedModel] = {}
    for row in calibrations:  # newest first: keep the first per type
        if row.kv_type not in found and row.batch_seconds:
            # Without flash attention a full-size sliding-window cache costs full attention.
            sliding_full = swa_full and not row.flash_attn
            found[row.kv_type] = SpeedModel.fit(
                model, row.kv_type, row.batch_size, row.batch_seconds, sliding_full=sliding_full
            )
    return found


def _ways_out_of_window(model: ModelInfo, needed: int, *, explicit: bool, rope_scaling: str | None) -> str:
    ways = []
    if explicit:
        ways.append(f"choose a window of at least {align_ctx(needed):,} tokens")
    if needed > model.context_length and rope_scaling is None:
        ways.append("use a model trained on longer windows")
        ways.append("allow RoPE scaling (--rope yarn; answers may get worse)")
    ways.append("read fewer documents at once")
    ways.append("or read in waves, window by window")
    return "Ways out: " + ", ".join(ways) + "."


def _ways_out_of_memory(rows: Sequence[PlanRow]) -> str:
    best = max(rows, key=lambda r: r.max_ctx_fitting)
    ways = []
    if best.max_ctx_fitting >= CTX_ALIGN:
        ways.append(f"a window of at most {best.max_ctx_fitting:,} tokens fits with KV cache {best.kv_type}")
    else:
        ways.append("this model does not fit in the free memory at any window: choose a smaller model")
    ways.append("close other programs")
    ways.append("or read in waves, window by window")
    return "Ways out: " + ", ".join(ways) + "."


def check_load(model: ModelInfo, settings: LoadSettings, *, available_bytes: int | None) -> LoadSettings:
    """Refuse a load that will not fit in the memory available, before any runtime
    tries it (an allocation that the OS grants lazily can end in the OOM killer).

    Args:
        model: the model's facts (``Backend.inspect_model``).
        settings: the load asked for.
        available_bytes: memory available now; None (unknown) passes.

    Returns:
        ``settings`` with ``planned_bytes`` set: what ``Backend.load_model`` takes.

    Raises:
        PlanRefused: the load needs more memory than is available; the message gives the
            numbers and the ways out (a smaller window, another KV type).
    """
    swa_full = settings.swa_full is not False  # None is llama.cpp's default: a full cache
    rows = [
        _make_row(
            model,
            kv,
            settings.n_ctx,
            prefill_tokens=settings.n_ctx,
            available=available_bytes,
            speed=None,
            f16_speed=None,
            swa_full=swa_full,
            n_ubatch=settings.n_batch,
            ctx_limit=_MAX_WINDOW,
        )
        for kv in dict.fromkeys((settings.kv_type, *KvType))
    ]
    row = rows[0]
    if not row.fits_memory:
        raise PlanRefused(
            f"{model.path.name} with a {settings.n_ctx:,}-token window and a {settings.kv_type} KV cache needs "
            f"about {format_bytes(row.total_bytes)} (weights {format_bytes(row.weights_bytes)}, KV cache "
            f"{format_bytes(row.kv_bytes)}, compute {format_bytes(row.compute_bytes)}) but only "
            f"{format_bytes(available_bytes or 0)} is free. " + _ways_out_of_memory(rows),
            plan=None,
        )
    return replace(settings, planned_bytes=row.total_bytes)
