"""Deep thinking: a multi-step session over the whole corpus, stored step by step.

A question is worked in steps instead of one answer: plan, examine (quoting pages),
hypotheses, critique against the text, answer. Every step is generated with the whole
corpus in context, on the full window (normal questions can use a smaller one).

Contract:
- ``DeepThinker.start`` checks that the corpus, the question and every step's budget fit
  the window (``ContextOverflowError`` otherwise: read in waves instead), then stores the
  session and its steps as ``pending`` and returns its id.
- ``DeepThinker.run`` generates the steps not yet ``done``, in order. A step's row is set
  ``running`` (with this process's id) before generation and ``done`` with its text,
  token counts, timings and checked citations right after. A process killed mid-step
  loses only that step: the store marks it ``interrupted`` when it next opens and ``run``
  generates it again. ``done`` steps are never generated again.
- Each step's prompt is the corpus prefix, then the question, the earlier steps' texts
  and the step's instruction, so the corpus is read once per process: later steps
  prefill only their new tokens (``LoadedModel.prefill`` reuses the common prefix).
- ``on_progress(DeepProgress)`` after each prefill batch and piece; ``on_text`` streams
  the current step; ``on_step`` receives a ``DeepStep`` each time a step changes status.
- Qt-free; one thread at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import Cancelled, CancelToken, ContextOverflowError, EngineError
from engine.reading.citations import Citation, check_citations, citations_from_json, citations_to_json
from engine.reading.prompts import PromptFrame, TokenizerLike, build_prompt, render_frame
from engine.reading.stepping import ModelLane, claim_rows, now_iso, resume_model, run_step, stored_corpus
from engine.runtime.backend import Model as LoadedModel
from engine.runtime.backend import PrefillProgress
from engine.store import Store
from engine.tokens import corpus_tokens
from engine.units import format_duration

DEEP_SYSTEM = (
    "You are Longread, a careful reader who thinks in steps before answering. Use only the "
    "documents given. Cite the page for each fact with its marker, for example "
    "[report.pdf p.3], and quote passages word for word in quotation marks."
)


@dataclass(frozen=True)
class StepKind:
    """One kind of step: its name, its heading and what the model is asked to do."""

    kind: str
    heading: str
    instruction: str


STEPS: tuple[StepKind, ...] = (
    StepKind(
        "plan",
        "Plan",
        "Plan how to answer the question: which documents and pages to look at, and what to look for. Be brief.",
    ),
    StepKind(
        "examine",
        "Examination",
        "Examine the relevant pages: quote the key passages word for word in quotation marks, "
        "each followed by its page marker.",
    ),
    StepKind("hypotheses", "Hypotheses", "State the possible answers, each with the pages that support it."),
    StepKind(
        "critique",
        "Critique",
        "Check each possible answer against the text: which passages support or contradict it, and which answers fail.",
    ),
    StepKind("answer", "Answer", "Give the final answer to the question, citing pages with their markers."),
)
_KINDS = {s.kind: s for s in STEPS}
STEP_OVERHEAD = 12  # tokens of a step's heading and spacing when it is carried forward


@dataclass(frozen=True)
class DeepStep:
    """One step as stored."""

    deep_id: int
    position: int  # 1-based
    kind: str
    status: str  # pending, running, done, interrupted, cancelled, failed
    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    prompt_tokens: int | None = None
    prefill_tokens: int | None = None
    reused_tokens: int | None = None
    output_tokens: int | None = None
    prefill_s: float | None = None
    generate_s: float | None = None
    error: str | None = None
    pid: int | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def heading(self) -> str:
        return _KINDS[self.kind].heading if self.kind in _KINDS else self.kind.title()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DeepStep:
        fields = dict(row)
        fields["citations"] = citations_from_json(fields["citations"])
        return cls(**fields)


@dataclass(frozen=True)
class DeepSession:
    """A deep-thinking session as stored, with its steps in order."""

    id: int
    session_id: int
    question: str
    model: str
    settings: dict[str, Any]
    status: str  # planned, running, done, interrupted, cancelled, failed
    steps: list[DeepStep]
    created_at: str
    finished_at: str | None
    error: str | None = None

    @property
    def answer(self) -> str:
        done = [s for s in self.steps if s.kind == "answer" and s.status == "done"]
        return done[-1].text if done else ""


def load_deep(store: Store, deep_id: int) -> DeepSession | None:
    """Return the stored deep-thinking session ``deep_id`` with its steps, or None."""
    rows = store.list_reading_rows("deep_sessions", {"id": deep_id})
    if not rows:
        return None
    r = rows[0]
    steps = [
        DeepStep.from_row(s) for s in store.list_reading_rows("deep_steps", {"deep_id": deep_id}, order_by="position")
    ]
    return DeepSession(
        id=r["id"],
        session_id=r["session_id"],
        question=r["question"],
        model=r["model"],
        settings=json.loads(r["settings"]),
        status=r["status"],
        steps=steps,
        created_at=r["created_at"],
        finished_at=r["finished_at"],
        error=r["error"],
    )


def list_deep(store: Store, session_id: int) -> list[DeepSession]:
    """Every deep-thinking run of a session, oldest first."""
    rows = store.list_reading_rows("deep_sessions", {"session_id": session_id}, order_by="id")
    return [d for d in (load_deep(store, row["id"]) for row in rows) if d is not None]


@dataclass(frozen=True)
class DeepProgress:
    """Where a deep-thinking session is: which step, what stage, about how long is left."""

    step: int  # 1-based
    n_steps: int
    kind: str
    stage: str  # "reading" (prefill) or "writing"
    tokens_done: int
    tokens_total: int
    tokens_per_s: float
    eta_s: float | None

    def describe(self) -> str:
        """``Step 2 of 5 (examine), about 40 s left``."""
        head = f"Step {self.step} of {self.n_steps} ({self.kind})"
        return head if self.eta_s is None else f"{head}, about {format_duration(self.eta_s)} left"


@dataclass(frozen=True)
class DeepResult:
    """A finished session: its answer with checked citations, its steps, and which
    steps this call generated (the others were done before)."""

    deep_id: int
    session_id: int
    answer: str
    citations: list[Citation]
    steps: list[DeepStep]
    ran: list[int]


DeepStepFn = Callable[[DeepStep], None]


def step_question(question: str, done: list[DeepStep], kind: StepKind) -> str:
    """The text after the corpus for one step: the question, the work so far, the instruction."""
    work = "\n\n".join(f"{s.heading}:\n{s.text.strip()}" for s in done)
    return (
        f"{question.strip()}\n\nYour work so far:\n{work or 'Nothing yet.'}\n\n"
        f"Next step, {kind.heading}: {kind.instruction}"
    )


class DeepThinker:
    """Works questions over a whole corpus in stored steps. One thread at a time.

    Args:
        store: the store.
        model_path: the GGUF to think with.
        settings: window (0: the model's trained length, the full one), KV type, threads.
        step_tokens: the most tokens one step may write.
        model: an already loaded model to use while it fits (not closed by ``close``).
    """

    def __init__(
        self,
        store: Store,
        model_path: Path,
        settings: ReadSettings | None = None,
        *,
        step_tokens: int = 256,
        model: LoadedModel | None = None,
    ) -> None:
        self.store = store
        self.model_path = model_path
        self.settings = settings or ReadSettings()
        self.step_tokens = step_tokens
        self.lane = ModelLane(model_path, self.settings, model=model)

    def close(self) -> None:
        """Free the model. Call before exit."""
        self.lane.close()

    def _frame(self, tokenizer: TokenizerLike) -> PromptFrame:
        return render_frame(tokenizer.chat_template, system=DEEP_SYSTEM)

    def needed_tokens(self, corpus: Corpus, question: str, *, step_tokens: int | None = None) -> int:
        """The window the whole session needs: corpus, question, instructions, every step."""
        tok = self.lane.tokenizer()
        step_tokens = step_tokens or self.step_tokens
        lists = corpus_tokens(corpus, tok)
        longest = max(STEPS, key=lambda k: len(k.instruction))
        base = len(build_prompt(tok, lists, step_question(question, [], longest), frame=self._frame(tok)))
        return base + len(STEPS) * (step_tokens + STEP_OVERHEAD)

    def start(self, corpus: Corpus, question: str, *, session_id: int | None = None) -> int:
        """Check the session fits and store it with every step ``pending``; return its id.

        Raises:
            ContextOverflowError: the corpus and the steps do not fit the window.
        """
        n_ctx = self.lane.full_window()
        need = self.needed_tokens(corpus, question)
        if need > n_ctx:
            raise ContextOverflowError(
                f"Deep thinking needs {need:,} tokens for these documents, the question and its "
                f"{len(STEPS)} steps, but the window holds {n_ctx:,}. Read them in waves instead "
                "(longread waves), or choose fewer documents.",
                corpus_tokens=need,
                needed_tokens=need,
                n_ctx=n_ctx,
            )
        corpus_id = self.store.save_corpus(corpus)
        if session_id is None:
            title = " ".join(question.split())
            session_id = self.store.create_session(
                title=title if len(title) <= 80 else title[:77] + "...", corpus_id=corpus_id, kind="deep"
            )
        settings = {**asdict(self.settings), "n_ctx": n_ctx, "step_tokens": self.step_tokens}
        now = now_iso()
        deep_id = self.store.insert_reading_rows(
            "deep_sessions",
            [
                {
                    "session_id": session_id,
                    "question": question,
                    "model": self.model_path.name,
                    "settings": json.dumps(settings, sort_keys=True),
                    "status": "planned",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        self.store.insert_reading_rows(
            "deep_steps",
            [
                {"deep_id": deep_id, "position": i, "kind": k.kind, "status": "pending"}
                for i, k in enumerate(STEPS, start=1)
            ],
        )
        return deep_id

    def think(
        self,
        corpus: Corpus,
        question: str,
        *,
        session_id: int | None = None,
        on_progress: Callable[[DeepProgress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_step: DeepStepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> DeepResult:
        """``start`` then ``run``."""
        deep_id = self.start(corpus, question, session_id=session_id)
        return self.run(deep_id, on_progress=on_progress, on_text=on_text, on_step=on_step, cancel=cancel)

    def run(
        self,
        deep_id: int,
        *,
        on_progress: Callable[[DeepProgress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_step: DeepStepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> DeepResult:
        """Generate every step of ``deep_id`` not yet done. Resuming is calling this again.

        Args:
            deep_id: a session stored by ``start``.
            on_progress: "step i of n" with an ETA, after each batch and piece.
            on_text: each piece of the current step as it streams.
            on_step: a step's row each time its status changes.
            cancel: checked between prefill batches and between tokens.

        Returns:
            the answer step's text with checked citations, all steps, and which ran now.

        Raises:
            EngineError: no such session, its documents are gone, or another process runs it.
            Cancelled: cancelled (the step in progress is marked cancelled).
            GenerationError: llama.cpp failed (the step is marked failed).
        """
        cancel = cancel or CancelToken()
        deep = load_deep(self.store, deep_id)
        if deep is None:
            raise EngineError(f"There is no deep-thinking session with id {deep_id}.")
        claim_rows(self.store.list_reading_rows("deep_steps", {"deep_id": deep_id}), what="deep-thinking session")
        corpus = stored_corpus(self.store, deep.session_id, what=f"deep-thinking session {deep_id}")
        steps = list(deep.steps)
        if deep.status == "done":
            return self._result(deep, corpus, steps, [])
        step_tokens = int(deep.settings.get("step_tokens", self.step_tokens))
        model, gen = resume_model(self.lane, self.settings, deep.settings)
        frame = self._frame(model)
        lists = corpus_tokens(corpus, model)
        self._update(deep_id, status="running", pid=os.getpid(), error=None)
        n = len(steps)
        gen_times = [st.generate_s for st in steps if st.status == "done" and st.generate_s is not None]
        ran: list[int] = []
        for i, step in enumerate(steps):
            if step.status == "done":
                continue
            kind = _KINDS[step.kind]
            done = [st for st in steps[:i] if st.status == "done"]
            tokens = build_prompt(model, lists, step_question(deep.question, done, kind), frame=frame).tokens
            step = self._set_step(step, on_step, status="running", pid=os.getpid(), started_at=now_iso(), error=None)
            steps[i] = step
            left_after = n - i

            def per_step() -> float:
                return sum(gen_times) / len(gen_times) if gen_times else 0.0

            def on_prefill(p: PrefillProgress, i: int = i, kind: str = step.kind, left_after: int = left_after) -> None:
                if on_progress is not None:
                    rate = p.tokens_per_s
                    eta = (p.total - p.done) / rate + left_after * per_step() if rate > 0 else None
                    on_progress(DeepProgress(i + 1, n, kind, "reading", p.done, p.total, rate, eta))

            def on_piece(
                piece: str, i: int = i, kind: str = step.kind, left_after: int = left_after, total: int = len(tokens)
            ) -> None:
                if on_text is not None:
                    on_text(piece)
                if on_progress is not None:
                    eta = left_after * per_step() if gen_times else None
                    on_progress(DeepProgress(i + 1, n, kind, "writing", total, total, 0.0, eta))

            try:
                out = run_step(
                    model,
                    tokens,
                    max_tokens=step_tokens,
                    settings=gen,
                    on_progress=on_prefill,
                    on_text=on_piece,
                    should_cancel=cancel,
                )
            except BaseException as exc:
                status, error = _failure(exc)
                self._set_step(step, on_step, status=status, error=error)
                self._update(deep_id, status=status, error=error)
                raise
            gen_times.append(out.generate_s)
            step = self._set_step(
                step,
                on_step,
                status="done",
                text=out.text,
                citations=citations_to_json(check_citations(out.text, corpus)),
                prompt_tokens=out.prompt_tokens,
                prefill_tokens=out.prefill_tokens,
                reused_tokens=out.reused_tokens,
                output_tokens=out.output_tokens,
                prefill_s=round(out.prefill_s, 3),
                generate_s=round(out.generate_s, 3),
                finished_at=now_iso(),
            )
            steps[i] = step
            ran.append(step.position)
        self._update(deep_id, status="done", finished_at=now_iso())
        return self._result(deep, corpus, steps, ran)

    def _result(self, deep: DeepSession, corpus: Corpus, steps: list[DeepStep], ran: list[int]) -> DeepResult:
        answer = next((s.text for s in reversed(steps) if s.kind == "answer" and s.status == "done"), "")
        return DeepResult(deep.id, deep.session_id, answer, check_citations(answer, corpus), steps, ran)

    def _update(self, deep_id: int, **fields: Any) -> None:
        self.store.update_reading_rows("deep_sessions", {"id": deep_id}, {**fields, "updated_at": now_iso()})

    def _set_step(self, step: DeepStep, on_step: DeepStepFn | None, **fields: Any) -> DeepStep:
        self.store.update_reading_rows("deep_steps", {"deep_id": step.deep_id, "position": step.position}, fields)
        if "citations" in fields:
            fields["citations"] = citations_from_json(fields["citations"])
        updated = replace(step, **fields)
        if on_step is not None:
            on_step(updated)
        return updated


def _failure(exc: BaseException) -> tuple[str, str | None]:
    if isinstance(exc, Cancelled):
        return "cancelled", None
    if isinstance(exc, EngineError):
        return "failed", exc.message
    return "interrupted", None
