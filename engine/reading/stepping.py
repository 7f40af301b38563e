"""What every way of reading shares: a generation step and the run's bookkeeping.

Contract:
- ``run_step`` prefills a prompt (reusing the longest prefix already in the context) and
  streams at most ``max_tokens`` tokens, reporting progress and honouring a cancel.
- ``RunRecorder`` is the one writer of a run's rows (engine/runs.py): it claims the run
  (refusing one another live process is running), sets a step ``running`` with this
  process's pid and start time, saves streamed text, records a finished step with its
  numbers and checked citations, and maps whatever stopped a step to its status with
  ``engine.runs.status_for``. Ask, deep thinking and waves all write through it.
- ``RunProgress`` is the one progress report of a run of steps ("Step 2 of 5 (examine),
  about 40 s left", "Wave 3 of 12, ...", "Answering from the notes, ...").
The model holder (``ModelLane``) lives in engine/lane.py. One thread at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import EngineError
from engine.lane import ModelLane
from engine.memory import MemoryBook, MemoryLayout, MemoryOptions, lay_memory
from engine.procs import current_process, is_alive
from engine.reading.citations import Citation, citations_to_json
from engine.runs import Run, RunKind, Status, Step, status_for
from engine.runtime.backend import Backend, EndFn, PrefillProgress, align_ctx
from engine.runtime.backend import Model as LoadedModel
from engine.store import Store
from engine.units import format_duration

TextFn = Callable[[str], None]
ProgressFn = Callable[[PrefillProgress], None]
CancelFn = Callable[[], bool]


class LaneOptions(TypedDict, total=False):
    """Where a reader's model comes from (each optional)."""

    model: LoadedModel | None  # an already loaded model to use while it fits (never closed here)
    lane: ModelLane | None  # the model holder to share with other readers (default: a new one)
    backend: Backend | None  # the runtime, for a new lane (default: llama.cpp in this process)


class LaneReader:
    """What every reader holds: the store, the model file, the settings, the model holder.

    Args:
        store: the store (documents, sessions, runs).
        model_path: the GGUF to read with.
        settings: window, KV type, threads, answer budget.
        options: ``model``, ``lane`` or ``backend`` (``LaneOptions``).
    """

    def __init__(
        self, store: Store, model_path: Path, settings: ReadSettings | None = None, **options: Unpack[LaneOptions]
    ) -> None:
        self.store = store
        self.model_path = model_path
        self.settings = settings or ReadSettings()
        lane = options.get("lane")
        self.lane = (
            lane
            if lane is not None
            else ModelLane(model_path, self.settings, model=options.get("model"), backend=options.get("backend"))
        )
        self.memory = MemoryOptions()

    def lay_memory(
        self,
        corpus: Corpus,
        tokenizer: Any,
        *,
        used: int,
        extra: int,
        pick: Sequence[int] | None = None,
        cap: int | None = None,
    ) -> MemoryLayout:
        """The memory block for a prompt about ``corpus`` (engine/memory.py): the entries
        tied to its documents and the pinned ones, within the room the window leaves after
        ``used`` prompt tokens and ``extra`` (answers, steps), or the model's measured
        effective context where it is smaller, and at most ``cap`` tokens. ``pick``
        overrides ``self.memory.pick``."""
        if not self.memory.enabled:
            return MemoryLayout()
        candidates = MemoryBook(self.store).entries(documents=[d.sha256 for d in corpus.documents])
        if not candidates:
            return MemoryLayout()
        limit = align_ctx(self.settings.n_ctx) if self.settings.n_ctx else int(tokenizer.n_ctx_train)
        reason = "the window"
        measured = self._effective_tokens()
        if measured and measured < limit:
            limit, reason = measured, f"the model's measured effective context, {measured:,} tokens"
        room = max(0, limit - used - extra)
        if cap is not None and cap < room:
            room, reason = cap, f"the room kept for memory, {cap:,} tokens"
        return lay_memory(
            tokenizer,
            candidates,
            room=room,
            pick=self.memory.pick if pick is None else pick,
            reason=reason,
        )

    def _effective_tokens(self) -> int:
        from engine.models.bundled import model_sha256
        from engine.probe import stored_effective_context

        try:
            measured = stored_effective_context(self.store, model_sha256(self.model_path)).get(self.settings.kv_type)
        except OSError:
            return 0
        return measured.tokens if measured is not None and measured.tokens > 0 else 0

    def close(self) -> None:
        """Free the model this reader loaded (a shared lane's owner frees it). Call before exit."""
        self.lane.close()


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
    #: One text per part of the question, when it was asked part by part (engine/reading/waves.py).
    part_texts: tuple[str, ...] = ()
    #: The tokens each part wrote (0: its text was given, not written).
    part_tokens: tuple[int, ...] = ()


def ends_before(stop: str) -> EndFn:
    """An ``EndFn``: the text ends before ``stop``, once some text is written."""

    def end(text: str) -> int | None:
        at = text.find(stop, len(text) - len(text.lstrip()))
        return at if at >= 0 else None

    return end


def run_step(
    model: LoadedModel,
    tokens: Sequence[int],
    *,
    max_tokens: int,
    settings: ReadSettings,
    on_progress: ProgressFn | None = None,
    on_text: TextFn | None = None,
    should_cancel: CancelFn | None = None,
    end: EndFn | None = None,
) -> StepOutput:
    """Prefill ``tokens`` and generate up to ``max_tokens`` tokens after them, and no
    further than where ``end`` says the text written so far is complete (it is cut there).

    Raises:
        Cancelled: the cancel flag was set between two batches or two tokens.
        GenerationError: llama.cpp failed.
    """
    stats = model.prefill(tokens, on_progress=on_progress, should_cancel=should_cancel)
    start = time.perf_counter()
    written = ""
    cut: int | None = None
    for piece in model.generate(
        max_tokens=max_tokens, temperature=settings.temperature, seed=settings.seed, should_cancel=should_cancel
    ):
        written += piece
        if on_text is not None:
            on_text(piece)
        if end is not None and (cut := end(written)) is not None:
            break
    generate_s = time.perf_counter() - start
    return StepOutput(
        text=written[:cut].strip(),
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


@dataclass(frozen=True)
class RunProgress:
    """Where a run of steps is: which step, what stage, about how long is left."""

    kind: RunKind
    step: int  # 1-based; for waves, n_steps + 1 while answering
    n_steps: int  # deep thinking: its steps; waves: its waves
    step_kind: str  # plan, examine, ..., wave, answer
    stage: str  # "reading" (prefill), "writing" (notes or a step), "answer" (the final pass of waves)
    tokens_done: int
    tokens_total: int
    tokens_per_s: float
    eta_s: float | None  # the whole run; None until a speed is known

    @property
    def wave(self) -> int:
        return self.step

    @property
    def n_waves(self) -> int:
        return self.n_steps

    def describe(self) -> str:
        """``Step 2 of 5 (examine), about 40 s left``, ``Wave 3 of 12, ...``."""
        if self.kind is RunKind.WAVES:
            head = "Answering from the notes" if self.stage == "answer" else f"Wave {self.step} of {self.n_steps}"
        else:
            head = f"Step {self.step} of {self.n_steps} ({self.step_kind})"
        return head if self.eta_s is None else f"{head}, about {format_duration(self.eta_s)} left"


StepFn = Callable[[Step], None]


class RunRecorder:
    """Writes one run's status changes to the store; tells ``on_step`` of each.

    Args:
        store: the store.
        run: the run as loaded.
        on_step: called with a step each time its status changes (a timeline).
    """

    def __init__(self, store: Store, run: Run, on_step: StepFn | None = None) -> None:
        self.store = store
        self.run = run
        self.on_step = on_step
        self.steps = list(run.steps)
        self.pid, self.pid_started = current_process()

    def claim(self) -> None:
        """Refuse to run steps that a live process other than this one is running.

        Raises:
            EngineError: another Longread process is running this run now.
        """
        for step in self.steps:
            if step.status is not Status.RUNNING or not step.pid or step.pid == self.pid:
                continue
            if is_alive(step.pid, step.pid_started):
                raise EngineError(
                    f"This {self.run.kind.what} is running in another Longread process (pid {step.pid}). "
                    "Wait for it to finish or stop it, then resume."
                )

    def begin(self) -> None:
        """Mark the run running in this process."""
        self.store.update_run(
            self.run.id, status=Status.RUNNING, pid=self.pid, pid_started=self.pid_started, error=None
        )

    def start_step(self, index: int) -> Step:
        """Mark step ``index`` (0-based) running; return it."""
        return self._set(
            index,
            status=Status.RUNNING,
            pid=self.pid,
            pid_started=self.pid_started,
            started_at=now_iso(),
            error=None,
        )

    def save_text(self, index: int, text: str) -> None:
        """Keep a step's text as it streams."""
        self.store.save_step_text(self.run.id, self.steps[index].position, text)

    def finish_step(
        self,
        index: int,
        out: StepOutput,
        *,
        text: str,
        citations: list[Citation],
        detail: dict[str, Any] | None = None,
    ) -> Step:
        """Record a done step with its text, checked citations and numbers; ``detail``
        adds keys to the step's ``detail`` (a wave's dropped notes, an answer's
        unfounded facts)."""
        extra = {} if detail is None else {"detail": {**self.steps[index].detail, **detail}}
        return self._set(
            index,
            status=Status.DONE,
            **extra,
            text=text,
            citations=citations,
            prompt_tokens=out.prompt_tokens,
            prefill_tokens=out.prefill_tokens,
            reused_tokens=out.reused_tokens,
            output_tokens=out.output_tokens,
            prefill_s=round(out.prefill_s, 3),
            generate_s=round(out.generate_s, 3),
            finished_at=now_iso(),
        )

    def fail(self, index: int | None, exc: BaseException, *, text: str | None = None) -> None:
        """Store what stopped the run: the step (if one was running) and the run get the
        status ``status_for(exc)`` gives, and any partial text is kept."""
        status, error = status_for(exc)
        if index is not None:
            extra = {} if text is None else {"text": text}
            self._set(index, status=status, error=error, **extra)
        self.store.update_run(self.run.id, status=status, error=error)

    def done(self, *, answer: str, citations: list[Citation]) -> None:
        """Mark the run done with its final answer, and remember it: its memory entry
        (engine/memory.py) is written in the same transaction, so both are or neither is."""
        with self.store.atomic():
            self.store.update_run(
                self.run.id,
                status=Status.DONE,
                answer=answer,
                citations=citations_to_json(citations),
                finished_at=now_iso(),
                error=None,
            )
            MemoryBook(self.store).record_run(self.run.id)

    def _set(self, index: int, **fields: Any) -> Step:
        step = self.steps[index]
        stored = dict(fields)
        if "citations" in stored:
            stored["citations"] = citations_to_json(stored["citations"])
        if "detail" in stored:
            stored["detail"] = json.dumps(stored["detail"], ensure_ascii=False)
        self.store.update_step(self.run.id, step.position, **stored)
        updated = replace(step, **fields)
        self.steps[index] = updated
        if self.on_step is not None:
            self.on_step(updated)
        return updated


def load_run(store: Store, run_id: int, kind: RunKind) -> Run:
    """The stored run ``run_id`` of this kind.

    Raises:
        EngineError: there is no such run.
    """
    run = store.get_run(run_id)
    if run is None or run.kind is not kind:
        raise EngineError(f"There is no {kind.what} with id {run_id}.")
    return run


def session_title(question: str) -> str:
    """A session's title from its first question: one line, at most 80 characters."""
    title = " ".join(question.split())
    return title if len(title) <= 80 else title[:77] + "..."
