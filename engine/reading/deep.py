"""Deep thinking: a multi-step session over the whole corpus, stored step by step.

A question is worked in steps instead of one answer: plan, examine (quoting pages),
hypotheses, critique against the text, answer. Every step is generated with the whole
corpus in context, on the full window (normal questions can use a smaller one).

Contract:
- ``DeepThinker.start`` checks that the corpus, the question and every step's budget fit
  the window (``ContextOverflowError`` otherwise: read in waves instead), then stores a
  ``think`` run (engine/runs.py) with its five steps ``pending`` and returns its id.
- ``DeepThinker.run`` generates the steps not yet ``done``, in order, through the one
  ``RunRecorder``. A step is set ``running`` (with this process) before generation and
  ``done`` with its text,
  token counts, timings and checked citations right after. A process killed mid-step
  loses only that step: the store marks it ``interrupted`` when it next opens and ``run``
  generates it again. ``done`` steps are never generated again.
- Each step's prompt is the corpus prefix, then the question, the earlier steps' texts
  and the step's instruction, so the corpus is read once per process: later steps
  prefill only their new tokens (``LoadedModel.prefill`` reuses the common prefix).
- ``on_progress(RunProgress)`` after each prefill batch and piece; ``on_text`` streams
  the current step; ``on_step`` receives a ``Step`` each time a step changes status.
- Qt-free; one thread at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Unpack

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import CancelToken, ContextOverflowError
from engine.memory import MemoryBook, lay_memory
from engine.reading.citations import Citation, check_citations
from engine.reading.facts import Unfounded, find_unfounded, unfounded_detail
from engine.reading.prompts import LANGUAGE_RULE, PromptFrame, TokenizerLike, build_prompt, render_frame
from engine.reading.stepping import (
    LaneOptions,
    LaneReader,
    RunProgress,
    RunRecorder,
    StepFn,
    load_run,
    resume_model,
    run_step,
    session_title,
    stored_corpus,
)
from engine.runs import Run, RunKind, Status, Step
from engine.runtime.backend import PrefillProgress
from engine.store import Store
from engine.tokens import corpus_tokens

DEEP_SYSTEM = (
    "You are Longread, a careful reader who thinks in steps before answering. Use only the "
    "documents given. Cite the page for each fact with its marker, for example "
    "[report.pdf p.3], and quote passages word for word in quotation marks. " + LANGUAGE_RULE
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
class DeepResult:
    """A finished session: its answer with checked citations, its steps, and which
    steps this call generated (the others were done before)."""

    run_id: int
    session_id: int
    answer: str
    citations: list[Citation]
    steps: list[Step]
    ran: list[int]
    unfounded: list[Unfounded] = field(default_factory=list)  # facts on no page (engine/reading/facts.py)


def step_question(question: str, done: list[Step], kind: StepKind) -> str:
    """The text after the corpus for one step: the question, the work so far, the instruction."""
    work = "\n\n".join(f"{s.heading}:\n{s.text.strip()}" for s in done)
    return (
        f"{question.strip()}\n\nYour work so far:\n{work or 'Nothing yet.'}\n\n"
        f"Next step, {kind.heading}: {kind.instruction}"
    )


class DeepThinker(LaneReader):
    """Works questions over a whole corpus in stored steps. One thread at a time.

    Args:
        store: the store.
        model_path: the GGUF to think with.
        settings: window (0: the model's trained length, the full one), KV type, threads.
        step_tokens: the most tokens one step may write.
        options: where the model comes from (``LaneOptions``: model, lane, backend).
    """

    def __init__(
        self,
        store: Store,
        model_path: Path,
        settings: ReadSettings | None = None,
        *,
        step_tokens: int = 256,
        **options: Unpack[LaneOptions],
    ) -> None:
        super().__init__(store, model_path, settings, **options)
        self.step_tokens = step_tokens

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
        # The memory block (engine/memory.py) gets what the window leaves after every step.
        memory = self.lay_memory(corpus, self.lane.tokenizer(), used=need, extra=0)
        corpus_id = self.store.save_corpus(corpus)
        if session_id is None:
            session_id = self.store.create_session(title=session_title(question), corpus_id=corpus_id, kind="deep")
        settings = {
            **asdict(self.settings),
            "n_ctx": n_ctx,
            "step_tokens": self.step_tokens,
            "memory_ids": list(memory.ids),
        }
        return self.store.create_run(
            session_id,
            kind=RunKind.THINK,
            question=question,
            model=self.model_path.name,
            settings=settings,
            steps=[{"kind": k.kind} for k in STEPS],
        )

    def think(
        self,
        corpus: Corpus,
        question: str,
        *,
        session_id: int | None = None,
        on_progress: Callable[[RunProgress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_step: StepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> DeepResult:
        """``start`` then ``run``."""
        run_id = self.start(corpus, question, session_id=session_id)
        return self.run(run_id, on_progress=on_progress, on_text=on_text, on_step=on_step, cancel=cancel)

    def run(
        self,
        run_id: int,
        *,
        on_progress: Callable[[RunProgress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_step: StepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> DeepResult:
        """Generate every step of ``run_id`` not yet done. Resuming is calling this again.

        Args:
            run_id: a run stored by ``start``.
            on_progress: "step i of n" with an ETA, after each batch and piece.
            on_text: each piece of the current step as it streams.
            on_step: a step each time its status changes.
            cancel: checked between prefill batches and between tokens.

        Returns:
            the answer step's text with checked citations, all steps, and which ran now.

        Raises:
            EngineError: no such run, its documents are gone, or another process runs it.
            Cancelled: cancelled (the step in progress is marked cancelled).
            GenerationError: llama.cpp failed (the step is marked failed).
        """
        cancel = cancel or CancelToken()
        run = load_run(self.store, run_id, RunKind.THINK)
        recorder = RunRecorder(self.store, run, on_step)
        recorder.claim()
        corpus = stored_corpus(self.store, run.session_id, what=f"deep-thinking run {run_id}")
        if run.status is Status.DONE:
            return self._result(run, corpus, run.steps, [])
        step_tokens = int(run.settings.get("step_tokens", self.step_tokens))
        model, gen = resume_model(self.lane, self.settings, run.settings)
        frame = self._frame(model)
        lists = corpus_tokens(corpus, model)
        # The memory the run started with (the entries still there, their text as it is now).
        entries = MemoryBook(self.store).by_ids(int(i) for i in run.settings.get("memory_ids", []))
        memory = lay_memory(model, entries, room=None)
        recorder.begin()
        steps = recorder.steps
        n = len(steps)
        gen_times = [st.generate_s for st in steps if st.done and st.generate_s is not None]
        ran: list[int] = []
        for i, step in enumerate(list(steps)):
            if step.done:
                continue
            kind = _KINDS[step.kind]
            done = [st for st in steps[:i] if st.done]
            tokens = build_prompt(
                model,
                lists,
                step_question(run.question, done, kind),
                frame=frame,
                memory=memory.tokens,
                memory_ids=memory.ids,
            ).tokens
            step = recorder.start_step(i)
            left_after = n - i

            def per_step() -> float:
                return sum(gen_times) / len(gen_times) if gen_times else 0.0

            def on_prefill(p: PrefillProgress, i: int = i, kind: str = step.kind, left_after: int = left_after) -> None:
                if on_progress is not None:
                    rate = p.tokens_per_s
                    eta = (p.total - p.done) / rate + left_after * per_step() if rate > 0 else None
                    on_progress(RunProgress(RunKind.THINK, i + 1, n, kind, "reading", p.done, p.total, rate, eta))

            def on_piece(
                piece: str, i: int = i, kind: str = step.kind, left_after: int = left_after, total: int = len(tokens)
            ) -> None:
                if on_text is not None:
                    on_text(piece)
                if on_progress is not None:
                    eta = left_after * per_step() if gen_times else None
                    on_progress(RunProgress(RunKind.THINK, i + 1, n, kind, "writing", total, total, 0.0, eta))

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
                recorder.fail(i, exc)
                raise
            gen_times.append(out.generate_s)
            citations = check_citations(out.text, corpus)
            facts = find_unfounded(out.text, corpus, question=run.question, citations=citations)
            step = recorder.finish_step(i, out, text=out.text, citations=citations, detail=unfounded_detail(facts))
            ran.append(step.position)
        result = self._result(run, corpus, recorder.steps, ran)
        recorder.done(answer=result.answer, citations=result.citations)
        return result

    def _result(self, run: Run, corpus: Corpus, steps: list[Step], ran: list[int]) -> DeepResult:
        answer = next((s.text for s in reversed(steps) if s.kind == "answer" and s.done), "")
        citations = check_citations(answer, corpus)
        unfounded = find_unfounded(answer, corpus, question=run.question, citations=citations)
        return DeepResult(run.id, run.session_id, answer, citations, steps, ran, unfounded)
