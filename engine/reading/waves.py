"""Waves: read a corpus larger than the window, window by window, carrying notes.

Follows Chain-of-Agents (Google, 2024) and ReadAgent's gist memory (DeepMind, 2024):
the corpus is split at page boundaries into waves that each fit the window with room
for the instructions, the question, the notes so far and the wave's own notes. Each wave
reads its pages and points at the passages relevant to the question, with page markers;
the engine copies those passages from the pages (grounded notes, issue 13 item 1,
engine/reading/notes.py); the pages are then dropped and only the notes go on. A final
pass answers from the notes and its citations are checked against the real pages.

Contract:
- ``plan_waves`` splits at page boundaries, never inside a page; every page is read by
  exactly one wave. Each wave's pages are laid out as a document of those pages alone,
  so the model sees the true markers (``[filing.pdf p.37]``). A page that cannot fit a
  wave raises ``ContextOverflowError``.
- ``WaveReader.start`` stores a ``waves`` run (engine/runs.py: question, window,
  settings, plan) with one ``wave`` step per wave and a final ``answer`` step, all
  ``pending``, before the model runs, and returns the run's id.
- ``WaveReader.run`` reads the waves that are not ``done``, in order, through the one
  ``RunRecorder``. A wave is set ``running`` (with this process) before the model reads it and ``done``, with
  its notes, token counts and timings, right after; the final answer likewise. A read
  killed mid-wave loses only that wave: the store marks the row ``interrupted`` when it
  next opens, and ``run`` reads it again. A ``done`` wave is never read again: its notes
  come from the store. A cancel marks the wave ``cancelled``; it is read on resume.
- Notes are grounded (``ground_notes``): each note the model writes points at its page
  (its marker, which must name a page of the wave, else the wave's page it is found on)
  by the facts it names or its first words; the engine stores the page's own sentences
  (``[name p.N] exact text``, one per line) as the wave's text, and a note that is not
  on its page is dropped, never carried: the wave's ``detail`` keeps ``dropped_notes``,
  ``pointed_notes`` and the model's ``raw_notes``. A wave left with no note stores
  "Nothing relevant.", which is not carried.
  When the carried notes outgrow a wave's room, the oldest are left out of that wave
  (they all reach the final answer while they fit its window).
- Look before answering (issue 13 item 2, ReadAgent's look-up): the final pass first
  sees the notes and the question and may name up to ``LOOKUP_PAGES`` pages to read
  again; when it names none, the pages the notes come from (most noted first) are read
  again. Those pages are laid in whole, after the notes, with their true markers, as
  many as fit the window; then it answers. The answer step's ``detail`` keeps the pages
  laid in (``looked_up``), who chose them (``lookup_by``: model, notes or none) and what
  the look-up cost.
- ``on_progress(RunProgress)`` reports "wave 3 of 12" with an ETA after each prefill
  batch and each generated piece; ``on_text`` streams notes and answer; ``on_step``
  receives a ``Step`` each time a wave or the answer changes status (for a timeline).
- Qt-free; one thread at a time (one model lane).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Unpack

from engine.config import ReadSettings
from engine.corpus import Corpus, Document, layout_document
from engine.errors import CancelToken, ContextOverflowError
from engine.memory import MemoryBook, MemoryLayout, lay_memory
from engine.planning import SpeedModel
from engine.reading.citations import MARKER, Citation, check_citations
from engine.reading.facts import Unfounded, find_unfounded, unfounded_detail
from engine.reading.notes import ground_notes
from engine.reading.prompts import SYSTEM_PROMPT, PromptFrame, TokenizerLike, build_prompt, render_frame
from engine.reading.stepping import (
    LaneOptions,
    LaneReader,
    RunProgress,
    RunRecorder,
    StepFn,
    StepOutput,
    load_run,
    resume_model,
    run_step,
    session_title,
    stored_corpus,
)
from engine.runs import RunKind, Status, Step
from engine.runtime.backend import Model as LoadedModel
from engine.runtime.backend import PrefillProgress
from engine.store import Store

WAVE_SYSTEM = (
    "You are Longread, a careful reader taking notes. A long corpus is read part by part; "
    "you see one part now. Write brief notes with the facts from these pages that help "
    "answer the question, one per line: copy numbers, names, dates and codes exactly, each "
    "note starting with its page marker, for example [report.pdf p.3]. If these pages say "
    "nothing about the question, write: Nothing relevant."
)
# The notes are the model's own words and the engine points for it (engine/reading/notes.py):
# asked to point itself (by quoting, by sentence starts, by sentence numbers), SmolLM2-135M
# did no better, and mostly echoed the instructions' example (benchmarks/pointing.py).
WAVE_INTRO = "Read this part of the documents. Each page starts with a marker like [name p.N].\n\n"
FINAL_INTRO = (
    "These are passages copied from the documents while reading them part by part. Each "
    "passage starts with the marker of its page, like [name p.N].\n\n"
)
NOTHING = "Nothing relevant."
# Look before answering (issue 13 item 2): the final pass may read this many pages again.
LOOKUP_PAGES = 3
LOOKUP_TOKENS = 32
MEMORY_SHARE = 4  # the memory block takes at most 1/4 of the final pass window
# Room kept in each wave for the model's own notes beyond max_note_tokens, and slack for
# the question and notes tokenizing a little longer than planned.
MARGIN_TOKENS = 32
MIN_PAGE_ROOM = 64
_NOTHING_RE = re.compile(r"^\W*(nothing|no)\b[^.]{0,40}\b(relevant|information|mention)", re.IGNORECASE)


# -- plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A run of consecutive pages of one document read in a wave."""

    doc: int  # the document's position in the corpus
    name: str
    first: int
    last: int

    def label(self) -> str:
        if self.first == self.last:
            return f"{self.name} p.{self.first}"
        return f"{self.name} p.{self.first}-{self.last}"


@dataclass(frozen=True)
class WavePlan:
    """The pages one wave reads, and how many tokens they take laid out."""

    segments: tuple[Segment, ...]
    tokens: int

    @property
    def label(self) -> str:
        return "; ".join(s.label() for s in self.segments)


def sub_document(doc: Document, first: int, last: int) -> Document:
    """``doc`` cut down to pages ``first``..``last`` (1-based, inclusive), true numbers kept."""
    return replace(doc, pages=doc.pages[first - 1 : last])


def segment_tokens(corpus: Corpus, segments: tuple[Segment, ...], tokenizer: TokenizerLike) -> list[list[int]]:
    """Each segment laid out as a document of its pages alone, tokenized on its own."""
    return [
        tokenizer.tokenize_text(layout_document(sub_document(corpus.documents[s.doc], s.first, s.last)))
        for s in segments
    ]


def plan_waves(corpus: Corpus, tokenizer: TokenizerLike, *, page_room: int) -> list[WavePlan]:
    """Split ``corpus`` at page boundaries into waves of at most ``page_room`` tokens.

    Args:
        corpus: the documents, in reading order.
        tokenizer: the model's tokenizer.
        page_room: tokens a wave's pages may take.

    Returns:
        the waves, in reading order; together they read every page once.

    Raises:
        ContextOverflowError: one page alone does not fit ``page_room``.
    """
    # A page laid out alone costs its text plus one document wrapper; summing those
    # over-counts a run of pages by a wrapper per page, so a planned wave always fits.
    waves: list[list[Segment]] = []
    current: list[Segment] = []
    used = 0
    for d, doc in enumerate(corpus.documents):
        for page in doc.pages:
            cost = len(tokenizer.tokenize_text(layout_document(sub_document(doc, page.number, page.number))))
            if cost > page_room:
                raise ContextOverflowError(
                    f"Page {page.number} of {doc.name} takes {cost:,} tokens, more than a wave can hold "
                    f"({page_room:,}) in this window. Choose a larger window.",
                    corpus_tokens=cost,
                    needed_tokens=cost,
                    n_ctx=page_room,
                )
            if current and used + cost > page_room:
                waves.append(current)
                current, used = [], 0
            if current and current[-1].doc == d and current[-1].last == page.number - 1:
                current[-1] = replace(current[-1], last=page.number)
            else:
                current.append(Segment(d, doc.name, page.number, page.number))
            used += cost
    if current:
        waves.append(current)
    plans = []
    for segs in waves:
        seg_tuple = tuple(segs)
        plans.append(WavePlan(seg_tuple, sum(len(t) for t in segment_tokens(corpus, seg_tuple, tokenizer))))
    return plans


# -- steps -------------------------------------------------------------------------


def wave_segments(step: Step) -> tuple[Segment, ...]:
    """The pages a wave step reads (from its stored plan)."""
    return tuple(Segment(**seg) for seg in step.detail.get("segments", []))


def planned_tokens(step: Step) -> int:
    """The tokens a wave's pages take laid out (from its stored plan)."""
    return int(step.detail.get("planned_tokens", 0))


def is_relevant(step: Step) -> bool:
    """Whether a wave's notes say something (not empty, not "Nothing relevant")."""
    return step.done and bool(step.text.strip()) and not _NOTHING_RE.match(step.text.strip())


# -- progress -----------------------------------------------------------------------


class _Eta:
    """Time left: prefill tokens still to read at the measured speed, plus each
    remaining step's generation at its measured pace."""

    def __init__(self, done_waves: list[Step]) -> None:
        self.prefill_tokens = sum(w.prefill_tokens or 0 for w in done_waves)
        self.prefill_s = sum(w.prefill_s or 0.0 for w in done_waves)
        self.gen_s = [w.generate_s for w in done_waves if w.generate_s is not None]

    def add(self, out: StepOutput) -> None:
        self.prefill_tokens += out.prefill_tokens
        self.prefill_s += out.prefill_s
        self.gen_s.append(out.generate_s)

    def estimate(self, *, tokens_left: int, steps_left: int, live_rate: float) -> float | None:
        rate = self.prefill_tokens / self.prefill_s if self.prefill_s > 0 else live_rate
        if rate <= 0:
            return None
        per_step = sum(self.gen_s) / len(self.gen_s) if self.gen_s else 0.0
        return tokens_left / rate + steps_left * per_step


# -- estimate -----------------------------------------------------------------------

# Rough speeds for an estimate before this machine was measured (`longread plan`
# measures it): SmolLM2 on the project's two cores reads about 90 tokens/s at an 8k
# window (docs/architecture.md, "Measured facts"); writing is not calibrated, and 10
# tokens/s is a deliberately low guess for a small model on a laptop CPU.
ROUGH_READ_TOKENS_S = 90.0
ROUGH_WRITE_TOKENS_S = 10.0


@dataclass(frozen=True)
class WavesEstimate:
    """About how long a read in waves takes, before it starts (issue 13 item 6)."""

    n_waves: int
    n_ctx: int
    seconds: float
    measured: bool  # reading speed from this machine's calibration, else a rough guess

    @property
    def about(self) -> str:
        """``about 12 min``: what the refusal and the window's button say."""
        minutes = self.seconds / 60
        return "about 1 min" if minutes < 1.5 else f"about {round(minutes)} min"

    def describe(self) -> str:
        """``about 12 min for 9 waves of 8,192 tokens, at this machine's measured speed``."""
        basis = (
            "at this machine's measured reading speed"
            if self.measured
            else "a rough guess: this machine's speed is not measured yet (longread plan measures it)"
        )
        return (
            f"{self.about} for {self.n_waves} wave{'s' if self.n_waves != 1 else ''} of {self.n_ctx:,} tokens, {basis}"
        )


# -- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class WaveResult:
    """A finished read: the answer, its checked citations, the waves, and which waves
    this call read (the others were done before)."""

    run_id: int
    session_id: int
    answer: str
    citations: list[Citation]
    waves: list[Step]
    ran: list[int]
    unfounded: list[Unfounded] = field(default_factory=list)  # facts on no page (engine/reading/facts.py)


class WaveReader(LaneReader):
    """Reads corpora in waves with one local model. One thread at a time.

    Args:
        store: the store (documents, sessions, runs).
        model_path: the GGUF to read with.
        settings: window (0: the model's trained length), KV type, threads, answer budget.
        max_note_tokens: the most tokens a wave's notes may take.
        options: where the model comes from (``LaneOptions``: model, lane, backend).
    """

    def __init__(
        self,
        store: Store,
        model_path: Path,
        settings: ReadSettings | None = None,
        *,
        max_note_tokens: int = 96,
        **options: Unpack[LaneOptions],
    ) -> None:
        super().__init__(store, model_path, settings, **options)
        self.max_note_tokens = max_note_tokens

    # -- planning --------------------------------------------------------------

    def _frames(self) -> tuple[PromptFrame, PromptFrame]:
        template = self.lane.tokenizer().chat_template
        return (
            render_frame(template, system=WAVE_SYSTEM, intro=WAVE_INTRO),
            render_frame(template, system=SYSTEM_PROMPT, intro=FINAL_INTRO),
        )

    def notes_room(self, n_ctx: int, max_note_tokens: int) -> int:
        """Tokens kept in each wave for the notes carried from earlier waves."""
        return min(n_ctx // 4, max(4 * max_note_tokens, 128))

    def page_room(self, n_ctx: int, question: str) -> int:
        """Tokens each wave of a ``n_ctx`` window leaves for pages, once the instructions,
        the question, the carried notes and the wave's own notes are in."""
        wave_frame, _ = self._frames()
        fixed = len(build_prompt(self.lane.tokenizer(), [], _wave_question(question, []), frame=wave_frame))
        return n_ctx - fixed - self.notes_room(n_ctx, self.max_note_tokens) - self.max_note_tokens - MARGIN_TOKENS

    def estimate(
        self, corpus_tokens: int, question: str, *, n_pages: int, speed: SpeedModel | None, answer_tokens: int
    ) -> WavesEstimate:
        """About how long reading ``corpus_tokens`` in waves takes on the full window:
        each wave's prompt read at ``speed`` (the planner's model of this machine), else
        at the rough ``ROUGH_READ_TOKENS_S``; the notes and answer written at the rough
        ``ROUGH_WRITE_TOKENS_S`` (generation is not calibrated). Nothing is loaded.

        Raises:
            ContextOverflowError: the window cannot hold a page and the notes (no read in
                waves would start).
        """
        n_ctx = self.lane.full_window()
        room = self.page_room(n_ctx, question)
        if room < MIN_PAGE_ROOM:
            raise ContextOverflowError(
                f"A {n_ctx:,}-token window leaves no room for pages in a wave.",
                corpus_tokens=corpus_tokens,
                needed_tokens=n_ctx - room + MIN_PAGE_ROOM,
                n_ctx=n_ctx,
            )
        # Waves end at page boundaries: as many whole pages of the average size as fit.
        pages = max(n_pages, 1)
        per_wave_pages = max(1, int(room // max(corpus_tokens / pages, 1)))
        n_waves = -(-pages // per_wave_pages)
        per_wave = min(n_ctx, n_ctx - room + min(room, corpus_tokens))
        final = min(n_ctx, n_waves * 2 * self.max_note_tokens + 256)
        if speed is not None:
            info = self.lane.info
            read_s = n_waves * speed.estimate_seconds(info, per_wave) + speed.estimate_seconds(info, final)
        else:
            read_s = (n_waves * per_wave + final) / ROUGH_READ_TOKENS_S
        write_s = (n_waves * self.max_note_tokens + answer_tokens) / ROUGH_WRITE_TOKENS_S
        return WavesEstimate(n_waves, n_ctx, read_s + write_s, measured=speed is not None)

    def plan(self, corpus: Corpus, question: str, *, n_ctx: int | None = None) -> tuple[int, list[WavePlan]]:
        """Choose the window and split ``corpus`` into waves for ``question``.

        Returns:
            the window and the waves.

        Raises:
            ContextOverflowError: the window is too small for even one page per wave.
        """
        tok = self.lane.tokenizer()
        n_ctx = n_ctx or self.lane.full_window()
        room = self.page_room(n_ctx, question)
        if room < MIN_PAGE_ROOM:
            fixed = n_ctx - room - self.notes_room(n_ctx, self.max_note_tokens) - self.max_note_tokens - MARGIN_TOKENS
            raise ContextOverflowError(
                f"A {n_ctx:,}-token window leaves no room for pages once the instructions, the question "
                f"and the notes are in ({room:,} tokens). Choose a larger window or a shorter question.",
                corpus_tokens=0,
                needed_tokens=fixed + MIN_PAGE_ROOM,
                n_ctx=n_ctx,
            )
        return n_ctx, plan_waves(corpus, tok, page_room=room)

    def start(self, corpus: Corpus, question: str, *, session_id: int | None = None) -> int:
        """Plan the read and store it with every wave ``pending``; return its id.

        Args:
            corpus: the documents, already stored.
            question: the user's question.
            session_id: add the read to this session (default: a new ``waves`` session).

        Raises:
            ContextOverflowError: the window cannot hold a page plus the notes.
        """
        n_ctx, plans = self.plan(corpus, question)
        # Memory (engine/memory.py) goes into the final pass, with at most a quarter of its
        # window: the notes keep the rest.
        memory = self.lay_memory(corpus, self.lane.tokenizer(), used=0, extra=0, cap=n_ctx // MEMORY_SHARE)
        corpus_id = self.store.save_corpus(corpus)
        if session_id is None:
            session_id = self.store.create_session(title=session_title(question), corpus_id=corpus_id, kind="waves")
        settings = {
            **asdict(self.settings),
            "n_ctx": n_ctx,
            "max_note_tokens": self.max_note_tokens,
            "memory_ids": list(memory.ids),
        }
        steps: list[dict[str, Any]] = [
            {
                "kind": "wave",
                "label": p.label,
                "detail": {"segments": [asdict(s) for s in p.segments], "planned_tokens": p.tokens},
            }
            for p in plans
        ]
        return self.store.create_run(
            session_id,
            kind=RunKind.WAVES,
            question=question,
            model=self.model_path.name,
            settings=settings,
            plan=[{"segments": [asdict(s) for s in p.segments], "tokens": p.tokens} for p in plans],
            steps=[*steps, {"kind": "answer"}],
        )

    def read(
        self,
        corpus: Corpus,
        question: str,
        *,
        session_id: int | None = None,
        on_progress: Callable[[RunProgress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_step: StepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> WaveResult:
        """``start`` then ``run``: read ``corpus`` in waves and answer ``question``."""
        run_id = self.start(corpus, question, session_id=session_id)
        return self.run(run_id, on_progress=on_progress, on_text=on_text, on_step=on_step, cancel=cancel)

    # -- running ---------------------------------------------------------------

    def run(
        self,
        run_id: int,
        *,
        on_progress: Callable[[RunProgress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        on_step: StepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> WaveResult:
        """Read every wave of ``run_id`` not yet done, then answer from the notes.

        Resuming a read is calling this again: done waves are never read again.

        Args:
            run_id: a read stored by ``start``.
            on_progress: "wave i of n" with an ETA, after each batch and piece.
            on_text: each piece of notes and answer as it streams.
            on_step: a wave (or the answer) each time its status changes.
            cancel: checked between prefill batches and between tokens.

        Returns:
            the answer with checked citations, and which waves this call read.

        Raises:
            EngineError: no such read, its documents are gone, or another process runs it.
            Cancelled: cancelled (the wave in progress is marked cancelled).
            GenerationError: llama.cpp failed (the wave is marked failed).
        """
        cancel = cancel or CancelToken()
        run = load_run(self.store, run_id, RunKind.WAVES)
        recorder = RunRecorder(self.store, run, on_step)
        recorder.claim()
        corpus = stored_corpus(self.store, run.session_id, what=f"read {run_id}")
        if run.status is Status.DONE:
            unfounded = find_unfounded(run.answer, corpus, question=run.question, citations=run.citations)
            return WaveResult(run.id, run.session_id, run.answer, run.citations, run.waves, [], unfounded)
        n_ctx = int(run.settings["n_ctx"])
        max_note = int(run.settings.get("max_note_tokens", self.max_note_tokens))
        model, gen_settings = resume_model(self.lane, self.settings, run.settings)
        wave_frame, final_frame = self._frames()
        recorder.begin()
        steps = recorder.steps
        n = len(run.waves)
        eta = _Eta([w for w in run.waves if w.done])
        ran: list[int] = []

        def tokens_left(from_index: int) -> int:
            return sum(planned_tokens(w) for w in steps[from_index:n] if not w.done)

        for i in range(n):
            wave = steps[i]
            if wave.done:
                continue
            carried = [w for w in steps[:i] if is_relevant(w)]
            lists = segment_tokens(corpus, wave_segments(wave), model)
            tokens = _fit_wave(model, lists, run.question, carried, frame=wave_frame, n_ctx=n_ctx, max_note=max_note)
            recorder.start_step(i)
            later = tokens_left(i + 1)
            steps_after = n - i  # this wave's notes, later waves' notes, the answer

            def on_prefill(p: PrefillProgress, i: int = i, later: int = later, steps_after: int = steps_after) -> None:
                if on_progress is not None:
                    left = eta.estimate(
                        tokens_left=p.total - p.done + later, steps_left=steps_after, live_rate=p.tokens_per_s
                    )
                    on_progress(
                        RunProgress(RunKind.WAVES, i + 1, n, "wave", "reading", p.done, p.total, p.tokens_per_s, left)
                    )

            def on_piece(
                piece: str, i: int = i, later: int = later, steps_after: int = steps_after, total: int = len(tokens)
            ) -> None:
                if on_text is not None:
                    on_text(piece)
                if on_progress is not None:
                    left = eta.estimate(tokens_left=later, steps_left=steps_after, live_rate=0.0)
                    on_progress(RunProgress(RunKind.WAVES, i + 1, n, "wave", "notes", total, total, 0.0, left))

            try:
                out = run_step(
                    model,
                    tokens,
                    max_tokens=max_note,
                    settings=gen_settings,
                    on_progress=on_prefill,
                    on_text=on_piece,
                    should_cancel=cancel,
                )
            except BaseException as exc:
                recorder.fail(i, exc)
                raise
            eta.add(out)
            grounded = ground_notes(out.text, corpus, wave_pages(wave))
            notes = "\n".join(grounded.notes) or NOTHING
            detail = {
                "dropped_notes": grounded.dropped,
                "pointed_notes": grounded.pointed,
                "raw_notes": out.text,
            }
            done = recorder.finish_step(i, out, text=notes, citations=check_citations(notes, corpus), detail=detail)
            ran.append(done.position)

        # The final pass: look before answering (ReadAgent's look-up), then the question
        # over every relevant note and the pages looked up, laid in with their true markers.
        relevant = [w for w in steps[:n] if is_relevant(w)]
        max_answer = self.settings.max_answer_tokens

        def on_final_prefill(p: PrefillProgress) -> None:
            if on_progress is not None:
                left = eta.estimate(tokens_left=p.total - p.done, steps_left=1, live_rate=p.tokens_per_s)
                on_progress(
                    RunProgress(RunKind.WAVES, n + 1, n, "answer", "answer", p.done, p.total, p.tokens_per_s, left)
                )

        entries = MemoryBook(self.store).by_ids(int(i) for i in run.settings.get("memory_ids", []))
        memory = lay_memory(model, entries, room=None)
        recorder.start_step(n)
        try:
            ask_pages, _ = _fit_final(
                model,
                relevant,
                _lookup_question(run.question),
                frame=final_frame,
                n_ctx=n_ctx,
                max_answer=LOOKUP_TOKENS,
                memory=memory,
            )
            look = run_step(
                model,
                ask_pages,
                max_tokens=LOOKUP_TOKENS,
                settings=gen_settings,
                on_progress=on_final_prefill,
                should_cancel=cancel,
            )
            wanted, by = looked_up_pages(look.text, corpus, relevant)
            tokens, laid = _fit_final(
                model,
                relevant,
                run.question,
                frame=final_frame,
                n_ctx=n_ctx,
                max_answer=max_answer,
                pages=wanted,
                memory=memory,
            )
            out = run_step(
                model,
                tokens,
                max_tokens=max_answer,
                settings=gen_settings,
                on_progress=on_final_prefill,
                on_text=on_text,
                should_cancel=cancel,
            )
        except BaseException as exc:
            recorder.fail(n, exc)
            raise
        citations = check_citations(out.text, corpus)
        unfounded = find_unfounded(out.text, corpus, question=run.question, citations=citations)
        detail = {
            **unfounded_detail(unfounded),
            "looked_up": [f"{d.name} p.{p}" for d, p in laid],
            "lookup_by": by,
            "lookup_raw": look.text,
            "lookup_tokens": look.prompt_tokens + look.output_tokens,
            "lookup_s": round(look.prefill_s + look.generate_s, 3),
        }
        recorder.finish_step(n, out, text=out.text, citations=citations, detail=detail)
        recorder.done(answer=out.text, citations=citations)
        return WaveResult(run_id, run.session_id, out.text, citations, recorder.steps[:n], ran, unfounded)


def wave_pages(step: Step) -> set[tuple[str, int]]:
    """The (document name, page) pairs a wave step reads."""
    return {(s.name, p) for s in wave_segments(step) for p in range(s.first, s.last + 1)}


def dropped_notes(step: Step) -> int:
    """How many of a wave's notes were not on their pages (dropped, never carried)."""
    return int(step.detail.get("dropped_notes", 0))


def _notes_block(carried: list[Step]) -> list[str]:
    """One line per carried note: grounded notes carry their own page's marker; a wave
    stored before notes were grounded carries its pages' label."""
    lines = []
    for w in carried:
        for line in w.text.splitlines():
            line = " ".join(line.split())
            if line:
                lines.append(line if MARKER.match(line) else f"[{w.label}] {line}")
    return lines


def _wave_question(question: str, notes: list[str]) -> str:
    earlier = "\n".join(notes) if notes else "None yet."
    return (
        f"{question.strip()}\n\nPassages kept from the parts read before:\n{earlier}\n\n"
        "Write brief notes on the pages above that help answer the question, one per line, each starting "
        f"with its page marker. If they say nothing about it, write: {NOTHING}"
    )


def _fit_wave(
    model: LoadedModel,
    lists: list[list[int]],
    question: str,
    carried: list[Step],
    *,
    frame: PromptFrame,
    n_ctx: int,
    max_note: int,
) -> list[int]:
    """The wave's prompt with as many of the latest notes as leave room for its own."""
    notes = _notes_block(carried)
    while True:
        prompt = build_prompt(model, lists, _wave_question(question, notes), frame=frame)
        if len(prompt) + max_note <= n_ctx or not notes:
            return prompt.tokens
        notes = notes[1:]  # the oldest notes give way first (they all reach the final answer)


def _lookup_question(question: str) -> str:
    return (
        f"{question.strip()}\n\nBefore answering, you may read up to {LOOKUP_PAGES} pages again in full. "
        "Write the markers of the pages to read again, like [report.pdf p.3], or write: None."
    )


def looked_up_pages(
    text: str, corpus: Corpus, relevant: list[Step], *, limit: int | None = None
) -> tuple[list[tuple[Document, int]], str]:
    """The pages to read again before answering: those the look-up names (pages of the
    corpus, at most ``limit``, in the order named), else the pages the carried notes come
    from, most noted first (a small model often names none).

    Returns:
        the pages, and who chose them: ``model``, ``notes`` or ``none``.
    """
    limit = LOOKUP_PAGES if limit is None else limit
    single = corpus.documents[0] if len(corpus.documents) == 1 else None

    def pick(source: str) -> list[tuple[Document, int]]:
        """Every existing page a marker of ``source`` names, once per mention, in order."""
        found: list[tuple[Document, int]] = []
        for m in MARKER.finditer(source):
            name = (m.group("name") or "").strip().strip('"')
            doc = corpus.find(name) if name else single
            page = int(m.group("page"))
            if doc is not None and doc.page(page) is not None:
                found.append((doc, page))
        return found

    def unique(found: list[tuple[Document, int]]) -> list[tuple[Document, int]]:
        keys = list(dict.fromkeys((d.name, p) for d, p in found))
        docs = {d.name: d for d, _ in found}
        return [(docs[name], p) for name, p in keys]

    named = unique(pick(text))[:limit]
    if named:
        return named, "model"
    mentions = pick("\n".join(_notes_block(relevant)))
    counts = Counter((d.name, p) for d, p in mentions)
    noted = sorted(unique(mentions), key=lambda dp: -counts[(dp[0].name, dp[1])])  # stable among equals
    return (noted[:limit], "notes") if noted else ([], "none")


def _fit_final(
    model: LoadedModel,
    relevant: list[Step],
    question: str,
    *,
    frame: PromptFrame,
    n_ctx: int,
    max_answer: int,
    pages: list[tuple[Document, int]] | None = None,
    memory: MemoryLayout | None = None,
) -> tuple[list[int], list[tuple[Document, int]]]:
    """The final prompt: the notes, then ``pages`` laid out whole with their true markers,
    then the memory block (engine/memory.py), then the question. Pages that do not fit
    give way first (the last named first), then the oldest notes. Returns the tokens and
    the pages laid in."""
    block = memory.tokens if memory is not None else ()
    ids = memory.ids if memory is not None else ()
    notes = _notes_block(relevant)
    laid = list(pages or [])
    while True:
        text = "\n".join(notes) if notes else "The documents gave no notes relevant to the question."
        lists = [model.tokenize_text(text + "\n")]
        if laid:
            lists.append(model.tokenize_text("\nPages read again in full:\n\n"))
            lists += [model.tokenize_text(layout_document(sub_document(d, p, p))) for d, p in laid]
        prompt = build_prompt(model, lists, question, frame=frame, memory=block, memory_ids=ids)
        if len(prompt) + max_answer <= n_ctx or not (notes or laid):
            return prompt.tokens, laid
        if laid:
            laid = laid[:-1]
        else:
            notes = notes[1:]
