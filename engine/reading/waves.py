"""Waves: read a corpus larger than the window, window by window, carrying notes (or
mapping each part alone, then reducing).

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
  wave raises ``ContextOverflowError``. The split does not depend on the question (each
  wave keeps ``QUESTION_ROOM`` tokens for any question), and a document of at least half
  a wave has waves of its own, so changing or removing it changes only its waves.
- Warm waves (issue 13 item 3): a wave's prompt is the instructions, then its pages (its
  *page block*, the same for every question and both modes), then the carried notes and
  the question. The block goes into the context through ``engine.warm.load_prefix``, as
  ask's corpus does: restored from its KV snapshot when one matches (same key: model
  sha256, window, cache types, runtime version, the block's tokens; checked on restore
  by size, crc32, tokens and logits), else read and saved. So a second question on the
  same corpus and settings evaluates per wave only the block's last token (the check),
  the notes, the question and the instructions. The disk budget and LRU of the snapshot
  cache apply. A wave's ``detail`` says how its block came (``block``: snapshot, prefill
  or context; ``block_tokens``, ``block_saved``, ``block_bytes``).
- Map mode (issue 13 item 4, ``WaveMode.MAP``, stored in the run's settings): waves carry
  no notes (each reads its pages and the question only), then the final pass reduces
  over every note. On a runtime that serves several requests at once (``slots`` > 1: a
  server backend) map waves run at once (``read_waves_at_once``); this thread alone
  writes the store, so resume and crash safety are the same. With one slot they run in
  order, exactly as carry waves do.
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
  again. Those pages are laid in whole with their true markers, as many as fit the
  window, before the notes (the passages kept sit nearest the question: SmolLM2 answers
  from what is nearest); then it answers.
- Waves take at most the model's reading span (``WaveReader.wave_span``): the length at
  which ``longread probe`` measured it finding a single fact at every depth, else the
  whole window (``ReadSettings.wave_tokens`` sets it). A question of several parts
  (``question_parts``: "What is the code, and who signed it?") is read part by part:
  every wave writes notes for each part after the same page block (``run_parts``; the
  notes' budget is shared, a part's note ends at a blank line), each part carries its
  own notes (``detail["part_notes"]``), and the final pass answers each part from its
  own notes, one paragraph each. The answer step's ``detail`` keeps the pages
  laid in (``looked_up``), who chose them (``lookup_by``: model, notes or none) and what
  the look-up cost.
- ``on_progress(RunProgress)`` reports "wave 3 of 12" with an ETA after each prefill
  batch and each generated piece; ``on_text`` streams notes and answer; ``on_step``
  receives a ``Step`` each time a wave or the answer changes status (for a timeline).
- Qt-free; one thread at a time (one model lane).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple, Unpack

from engine.config import ReadSettings
from engine.corpus import Corpus, Document, layout_document
from engine.errors import Cancelled, CancelToken, ContextOverflowError
from engine.memory import MemoryBook, MemoryLayout, lay_memory
from engine.planning import MeasuredContext, SpeedModel
from engine.probe import stored_reading_span
from engine.reading.citations import MARKER, Citation, check_citations
from engine.reading.facts import Unfounded, find_unfounded, unfounded_detail
from engine.reading.notes import (
    NOTE_RULE,
    answer_prefix,
    ground_notes,
    note_end,
    question_parts,
    quoted_answer,
    says_nothing,
)
from engine.reading.prompts import SYSTEM_PROMPT, Prompt, PromptFrame, TokenizerLike, build_prompt, render_frame
from engine.reading.stepping import (
    CancelFn,
    LaneOptions,
    LaneReader,
    ProgressFn,
    RunProgress,
    RunRecorder,
    StepFn,
    StepOutput,
    TextFn,
    ends_before,
    load_run,
    resume_model,
    run_step,
    session_title,
    stored_corpus,
)
from engine.runs import RunKind, Status, Step
from engine.runtime.backend import EndFn, PrefillProgress, PrefillStats
from engine.runtime.backend import Model as LoadedModel
from engine.store import Store
from engine.units import format_bytes
from engine.warm import SnapshotCache, WarmStart, load_prefix, make_key

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
PART_END = "\n\n"
MIN_PART_TOKENS = 32  # the least a part of the question gets of a wave's notes or the answer's budget
LOOKUP_TOKENS = 32
MEMORY_SHARE = 4  # the memory block takes at most 1/4 of the final pass window
# Room kept in each wave for the model's own notes beyond max_note_tokens, and slack for
# the question and notes tokenizing a little longer than planned.
MARGIN_TOKENS = 32
MIN_PAGE_ROOM = 64
# Room every wave keeps for the question, whatever it is: the waves of a corpus are then
# the same for every question, and so are their page blocks and snapshots (issue 13
# item 3). A longer question takes room from the carried notes (the oldest give way).
QUESTION_ROOM = 128
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

    A document of at least half a wave (``page_room // 2`` tokens) starts a wave of its
    own and shares its last wave with no other document, so changing or removing it
    changes only the waves that read it: the other waves keep their page blocks and
    their snapshots (issue 13 item 3). Smaller documents are packed together, so a
    change in one of them can move the boundaries of the waves packed after it, up to
    the next large document.

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
        costs = []
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
            costs.append(cost)
        large = sum(costs) >= page_room // 2
        if large and current:
            waves.append(current)
            current, used = [], 0
        for page, cost in zip(doc.pages, costs, strict=True):
            if current and used + cost > page_room:
                waves.append(current)
                current, used = [], 0
            if current and current[-1].doc == d and current[-1].last == page.number - 1:
                current[-1] = replace(current[-1], last=page.number)
            else:
                current.append(Segment(d, doc.name, page.number, page.number))
            used += cost
        if large and current:
            waves.append(current)
            current, used = [], 0
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
# tokens/s is a deliberately low guess for a small model on a laptop CPU. Restoring a
# snapshot is reading its file twice (crc32, then llama.cpp's load): 500 MB/s is a
# laptop SSD's pace with room to spare.
ROUGH_READ_TOKENS_S = 90.0
ROUGH_WRITE_TOKENS_S = 10.0
ROUGH_RESTORE_BYTES_S = 500e6


@dataclass(frozen=True)
class WavesEstimate:
    """About how long a read in waves takes, before it starts (issue 13 items 3 and 6):
    the first question (every wave read cold, its page block saved), each next question
    on the same corpus and settings (every block restored from its snapshot), and the
    disk those snapshots take."""

    n_waves: int
    n_ctx: int
    seconds: float
    measured: bool  # reading speed from this machine's calibration, else a rough guess
    next_seconds: float | None = None  # None: snapshots are off, every question reads cold
    snapshot_bytes: int = 0
    kv_type: str = "f16"
    budget_bytes: int | None = None  # the snapshot disk budget, when the blocks exceed it

    @property
    def about(self) -> str:
        """``about 12 min``: the first question."""
        return _about(self.seconds)

    @property
    def about_both(self) -> str:
        """``about 24 min, each next question about 2 min``: what the refusal and the
        window's button say."""
        if self.next_seconds is None:
            return self.about
        return f"{self.about}, each next question {_about(self.next_seconds)}"

    def describe(self) -> str:
        """``first question about 24 min, each next one about 2 min, 3.1 GB of snapshots at
        q8_0 (16 waves of 8,192 tokens, at this machine's measured reading speed)``."""
        basis = (
            "at this machine's measured reading speed"
            if self.measured
            else "a rough guess: this machine's speed is not measured yet (longread plan measures it)"
        )
        waves = f"{self.n_waves} wave{'s' if self.n_waves != 1 else ''} of {self.n_ctx:,} tokens"
        if self.next_seconds is None:
            return f"{self.about} for {waves}, {basis}"
        over = (
            f", more than the {format_bytes(self.budget_bytes)} snapshot budget: the oldest are dropped and read again"
            if self.budget_bytes is not None
            else ""
        )
        return (
            f"first question {self.about}, each next one {_about(self.next_seconds)}, "
            f"{format_bytes(self.snapshot_bytes)} of snapshots at {self.kv_type}{over} ({waves}, {basis})"
        )


def _about(seconds: float) -> str:
    minutes = seconds / 60
    return "about 1 min" if minutes < 1.5 else f"about {round(minutes)} min"


class WaveMode(StrEnum):
    """How the waves of a read share what they found (issue 13 item 4)."""

    CARRY = "carry"  # each wave sees the notes of the waves before it (Chain-of-Agents)
    MAP = "map"  # each wave reads its pages and the question only; one reduce pass answers


#: The mode a read in waves uses unless told. Measured with benchmarks/waves_scale.py
#: (SmolLM2-135M, window 1,024, 1x/2x/4x, 2 corpora each, greedy): map found the code in
#: 6 of 6 corpora, carry in 5; of the three facts asked together map found 7 of 18,
#: carry 5 of 18; map was never worse in a cell. Map's waves also run at once on slots.
DEFAULT_WAVE_MODE = WaveMode.MAP


def model_slots(model: object, backend: object) -> int:
    """How many requests the runtime serves at once: the model's (or else the backend's)
    ``slots`` attribute, 1 when neither has one (llama.cpp in this process, the fake).

    A runtime with ``slots > 1`` serves ``prefill`` then ``generate`` called from each of
    that many threads as one independent request (a server backend: issue 16)."""
    for holder in (model, backend):
        slots = getattr(holder, "slots", None)
        if isinstance(slots, int) and slots >= 1:
            return slots
    return 1


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


class WavesLayout(NamedTuple):
    """A read's waves: the window (the final pass's), the waves, the tokens each takes."""

    n_ctx: int
    waves: list[WavePlan]
    span: int


@dataclass
class _Read:
    """What ``run`` keeps while it reads one stored run."""

    run_id: int
    question: str
    corpus: Corpus
    model: LoadedModel
    gen: ReadSettings
    recorder: RunRecorder
    mode: WaveMode
    n_ctx: int
    span: int  # the most tokens one wave's prompt and notes take (<= n_ctx)
    max_note: int
    frame: PromptFrame
    eta: _Eta
    cancel: CancelToken
    on_progress: Callable[[RunProgress], None] | None
    on_text: Callable[[str], None] | None
    ran: list[int] = field(default_factory=list)

    @property
    def steps(self) -> list[Step]:
        return self.recorder.steps

    @property
    def n(self) -> int:
        return len(self.recorder.steps) - 1  # the waves; the last step is the answer

    def tokens_left(self, from_index: int) -> int:
        return sum(planned_tokens(w) for w in self.steps[from_index : self.n] if not w.done)


class WaveReader(LaneReader):
    """Reads corpora in waves with one local model. One thread at a time.

    Args:
        store: the store (documents, sessions, runs).
        model_path: the GGUF to read with.
        settings: window (0: the model's trained length), KV type, threads, answer budget.
        max_note_tokens: the most tokens a wave's notes may take.
        mode: carry notes from wave to wave, or map (no notes carried, then a reduce pass).
        snapshots: the KV snapshot cache for the waves' page blocks (default: the data
            folder's); ``None`` with ``use_snapshots=False`` reads every block cold.
        options: where the model comes from (``LaneOptions``: model, lane, backend).

    Each wave takes at most ``wave_span`` tokens (``ReadSettings.wave_tokens``, by default
    the length at which the model was measured to find a single fact at every depth,
    ``engine.probe.reading_span``): waves of the whole window lose what the model cannot
    find in them. The final pass reads on the whole window. A question of several parts
    (``question_parts``) is read part by part: each wave writes notes for each part after
    the same page block, each part carries its own notes, and the answer has a paragraph
    per part.
    """

    def __init__(
        self,
        store: Store,
        model_path: Path,
        settings: ReadSettings | None = None,
        *,
        max_note_tokens: int = 96,
        mode: WaveMode | str = DEFAULT_WAVE_MODE,
        snapshots: SnapshotCache | None = None,
        use_snapshots: bool = True,
        **options: Unpack[LaneOptions],
    ) -> None:
        super().__init__(store, model_path, settings, **options)
        self._span: tuple[int, MeasuredContext | None] | None = None
        self.max_note_tokens = max_note_tokens
        self.mode = WaveMode(mode)
        self.snapshots = snapshots if snapshots is not None or not use_snapshots else SnapshotCache(store)
        self._model_sha: str | None = None

    @property
    def model_sha(self) -> str:
        if self._model_sha is None:
            self._model_sha = self.lane.model_sha
        return self._model_sha

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

    def page_room(self, n_ctx: int) -> int:
        """Tokens each wave of a ``n_ctx`` window leaves for pages, once the instructions,
        a question of ``QUESTION_ROOM`` tokens, the carried notes and the wave's own
        notes are in. It does not depend on the question, so every question about a
        corpus reads the same waves and restores their page blocks."""
        wave_frame, _ = self._frames()
        tok = self.lane.tokenizer()
        fixed = len(build_prompt(tok, [tok.tokenize_text(WAVE_ASK)], _wave_question("", []), frame=wave_frame))
        notes = self.notes_room(n_ctx, self.max_note_tokens)
        return n_ctx - fixed - QUESTION_ROOM - notes - self.max_note_tokens - MARGIN_TOKENS

    def _check_room(self, n_ctx: int, room: int, *, corpus_tokens: int) -> None:
        if room < MIN_PAGE_ROOM:
            raise ContextOverflowError(
                f"A {n_ctx:,}-token window leaves no room for pages once the instructions, the question "
                f"and the notes are in ({room:,} tokens). Choose a larger window.",
                corpus_tokens=corpus_tokens,
                needed_tokens=n_ctx - room + MIN_PAGE_ROOM,
                n_ctx=n_ctx,
            )

    def _check_question(self, n_ctx: int, question: str) -> None:
        """A question longer than its room takes the carried notes' room; beyond that it
        does not fit a wave."""
        extra = len(self.lane.tokenizer().tokenize_text(question.strip())) - QUESTION_ROOM
        if extra > self.notes_room(n_ctx, self.max_note_tokens):
            raise ContextOverflowError(
                f"The question is too long to read in waves of {n_ctx:,} tokens: shorten it by about "
                f"{extra - self.notes_room(n_ctx, self.max_note_tokens):,} tokens or choose a larger window.",
                corpus_tokens=0,
                needed_tokens=n_ctx + extra,
                n_ctx=n_ctx,
            )

    def estimate(
        self, corpus_tokens: int, *, n_pages: int, speed: SpeedModel | None, answer_tokens: int
    ) -> WavesEstimate:
        """About how long reading ``corpus_tokens`` in waves takes on the full window:
        each wave's prompt read at ``speed`` (the planner's model of this machine), else
        at the rough ``ROUGH_READ_TOKENS_S``; the notes and answer written at the rough
        ``ROUGH_WRITE_TOKENS_S`` (generation is not calibrated). A next question restores
        each wave's page block (at ``ROUGH_RESTORE_BYTES_S``) and reads only the rest of
        each wave's prompt. Nothing is loaded.

        Raises:
            ContextOverflowError: the window cannot hold a page and the notes (no read in
                waves would start).
        """
        n_ctx = self.wave_window(self.lane.full_window())
        room = self.page_room(n_ctx)
        self._check_room(n_ctx, room, corpus_tokens=corpus_tokens)
        # Waves end at page boundaries: as many whole pages of the average size as fit.
        pages = max(n_pages, 1)
        per_wave_pages = max(1, int(room // max(corpus_tokens / pages, 1)))
        n_waves = -(-pages // per_wave_pages)
        pages_per_wave = min(room, corpus_tokens)
        per_wave = min(n_ctx, n_ctx - room + pages_per_wave)
        # What a next question reads in each wave once its block (instructions, pages and
        # what to write) is restored: the question, and in carry mode the notes carried.
        again = QUESTION_ROOM + (self.notes_room(n_ctx, self.max_note_tokens) if self.mode is WaveMode.CARRY else 0)
        final = min(n_ctx, n_waves * 2 * self.max_note_tokens + 256)
        info = self.lane.info
        kv = str(self.settings.kv_type)
        bytes_per_token = info.kv_bytes_per_token(kv, kv)
        wave_frame, _ = self._frames()
        tok = self.lane.tokenizer()
        instructions = build_prompt(tok, [tok.tokenize_text(WAVE_ASK)], "", frame=wave_frame).corpus_end
        # A block is the instructions and the wave's pages: the corpus over the waves.
        block_bytes = bytes_per_token * (instructions + corpus_tokens / n_waves)
        if speed is not None:
            read_s = n_waves * speed.estimate_seconds(info, per_wave) + speed.estimate_seconds(info, final)
            tail_s = speed.estimate_seconds(info, per_wave) - speed.estimate_seconds(info, per_wave - again)
            next_read_s = n_waves * tail_s + speed.estimate_seconds(info, final)
        else:
            read_s = (n_waves * per_wave + final) / ROUGH_READ_TOKENS_S
            next_read_s = (n_waves * again + final) / ROUGH_READ_TOKENS_S
        write_s = (n_waves * self.max_note_tokens + answer_tokens) / ROUGH_WRITE_TOKENS_S
        if self.snapshots is None:
            return WavesEstimate(n_waves, n_ctx, read_s + write_s, measured=speed is not None, kv_type=kv)
        total_bytes = n_waves * block_bytes
        budget = self.snapshots.budget_bytes
        # Over the budget, LRU keeps the latest blocks: that share restores, the rest reads cold.
        kept = min(1.0, budget / total_bytes) if total_bytes > 0 else 1.0
        restore_s = kept * n_waves * 2 * block_bytes / ROUGH_RESTORE_BYTES_S
        next_s = kept * next_read_s + (1 - kept) * read_s + write_s + restore_s
        return WavesEstimate(
            n_waves,
            n_ctx,
            read_s + write_s,
            measured=speed is not None,
            next_seconds=next_s,
            snapshot_bytes=int(total_bytes),
            kv_type=kv,
            budget_bytes=budget if kept < 1.0 else None,
        )

    @property
    def wave_span(self) -> tuple[int, MeasuredContext | None]:
        """The most tokens one wave takes (0: the whole window) and the measurement it
        comes from (None: set in the settings, or never measured)."""
        if self._span is None:
            wanted = self.settings.wave_tokens
            if wanted is not None:
                self._span = (max(wanted, 0), None)
            else:
                m = stored_reading_span(self.store, self.model_sha, self.settings.kv_type)
                self._span = (m.tokens, m) if m else (0, None)
        return self._span

    def wave_window(self, n_ctx: int) -> int:
        """The tokens one wave takes in a ``n_ctx`` window: the span when it is smaller."""
        span, _ = self.wave_span
        return min(span, n_ctx) if span else n_ctx

    def describe_span(self, n_ctx: int) -> str:
        """Why the waves are as long as they are, for the CLI and the window."""
        span, measured = self.wave_span
        tokens = self.wave_window(n_ctx)
        if measured is not None and tokens < n_ctx:
            return (
                f"Waves of up to {tokens:,} tokens: the longest at which this model found a single fact "
                f"at every depth ({measured.describe()})."
            )
        if span:
            return f"Waves of up to {tokens:,} tokens (as set)."
        if self.settings.wave_tokens is None:
            return (
                f"Waves of up to {tokens:,} tokens, the whole window: how much of it this model reads "
                "reliably is not measured (longread probe --quick measures it)."
            )
        return f"Waves of up to {tokens:,} tokens, the whole window."

    def plan(self, corpus: Corpus, question: str, *, n_ctx: int | None = None) -> WavesLayout:
        """Choose the window and split ``corpus`` into waves of ``wave_window`` tokens;
        check ``question`` fits them. A page too large for a wave of the span gets a
        wave as large as it needs (the span doubled until it fits, up to the window).

        The waves do not depend on the question (``page_room``), so a second question
        about the same corpus and settings reads the same page blocks.

        Raises:
            ContextOverflowError: the window is too small for even one page per wave, or
                the question is too long for a wave.
        """
        tok = self.lane.tokenizer()
        n_ctx = n_ctx or self.lane.full_window()
        span = self.wave_window(n_ctx)
        while True:
            room = self.page_room(span)
            try:
                self._check_room(span, room, corpus_tokens=0)
                self._check_question(span, question)
                return WavesLayout(n_ctx, plan_waves(corpus, tok, page_room=room), span)
            except ContextOverflowError:
                if span >= n_ctx:
                    raise
                span = min(2 * span, n_ctx)

    def start(self, corpus: Corpus, question: str, *, session_id: int | None = None) -> int:
        """Plan the read and store it with every wave ``pending``; return its id.

        Args:
            corpus: the documents, already stored.
            question: the user's question.
            session_id: add the read to this session (default: a new ``waves`` session).

        Raises:
            ContextOverflowError: the window cannot hold a page plus the notes.
        """
        n_ctx, plans, span = self.plan(corpus, question)
        # Memory (engine/memory.py) goes into the final pass, with at most a quarter of its
        # window: the notes keep the rest.
        memory = self.lay_memory(corpus, self.lane.tokenizer(), used=0, extra=0, cap=n_ctx // MEMORY_SHARE)
        corpus_id = self.store.save_corpus(corpus)
        if session_id is None:
            session_id = self.store.create_session(title=session_title(question), corpus_id=corpus_id, kind="waves")
        settings = {
            **asdict(self.settings),
            "n_ctx": n_ctx,
            "span": span,
            "max_note_tokens": self.max_note_tokens,
            "mode": str(self.mode),
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
        model, gen_settings = resume_model(self.lane, self.settings, run.settings)
        wave_frame, final_frame = self._frames()
        recorder.begin()
        r = _Read(
            run_id=run.id,
            question=run.question,
            corpus=corpus,
            model=model,
            gen=gen_settings,
            recorder=recorder,
            mode=WaveMode(run.settings.get("mode", WaveMode.CARRY)),
            n_ctx=int(run.settings["n_ctx"]),
            span=int(run.settings.get("span") or run.settings["n_ctx"]),
            max_note=int(run.settings.get("max_note_tokens", self.max_note_tokens)),
            frame=wave_frame,
            eta=_Eta([w for w in run.waves if w.done]),
            cancel=cancel,
            on_progress=on_progress,
            on_text=on_text,
        )
        slots = model_slots(model, self.lane.backend) if r.mode is WaveMode.MAP else 1
        if slots > 1:
            read_waves_at_once(self, r, slots)
        else:
            for i in range(r.n):
                if not r.steps[i].done:
                    self._read_wave(r, i)
        return self._answer(r, final_frame, run.session_id)

    def wave_prompts(self, r: _Read, i: int) -> list[Prompt]:
        """Wave ``i``'s prompts, one per part of the question (``question_parts``): the
        instructions, its pages and what to write (``WAVE_ASK``): the page block, the same
        for every question and part; then the part and the carried notes (none in map
        mode)."""
        carried = [w for w in r.steps[:i] if is_relevant(w)] if r.mode is WaveMode.CARRY else None
        lists = [*segment_tokens(r.corpus, wave_segments(r.steps[i]), r.model), r.model.tokenize_text(WAVE_ASK)]
        parts = question_parts(r.question)
        prompts = []
        for k, (q, prefix) in enumerate(zip(parts, note_prefixes(r.question), strict=True)):
            # The note begins with the part's words restated (the answer prefix), as the
            # model's own notes did: it writes only what follows them. In map mode those
            # words say the part, so the part itself is left out (``wave_part``).
            start = r.model.tokenize_text(prefix) if prefix else []
            prompt = _fit_wave(
                r.model,
                lists,
                wave_part(q, prefix) if carried is None else q,
                carried,
                frame=r.frame,
                n_ctx=r.span,
                max_note=r.max_note + len(start),
                part=k if len(parts) > 1 else None,
                parts=len(parts),
            )
            prompts.append(replace(prompt, tokens=prompt.tokens + start))
        return prompts

    def _read_wave(self, r: _Read, i: int) -> None:
        """Read wave ``i`` in this thread: its page block restored or read (and saved),
        then the notes and question, then its notes; record it."""
        prompts = self.wave_prompts(r, i)
        prompt = prompts[0]
        r.recorder.start_step(i)
        later = r.tokens_left(i + 1)
        steps_after = r.n - i  # this wave's notes, later waves' notes, the answer

        def on_prefill(p: PrefillProgress) -> None:
            if r.on_progress is not None:
                left = r.eta.estimate(
                    tokens_left=p.total - p.done + later, steps_left=steps_after, live_rate=p.tokens_per_s
                )
                r.on_progress(
                    RunProgress(RunKind.WAVES, i + 1, r.n, "wave", "reading", p.done, p.total, p.tokens_per_s, left)
                )

        def on_piece(piece: str) -> None:
            if r.on_text is not None:
                r.on_text(piece)
            if r.on_progress is not None:
                left = r.eta.estimate(tokens_left=later, steps_left=steps_after, live_rate=0.0)
                total = len(prompt)
                r.on_progress(RunProgress(RunKind.WAVES, i + 1, r.n, "wave", "notes", total, total, 0.0, left))

        # A part asked before over the same pages is not written again: greedy notes are
        # a function of the prompt (memo keyed as snapshots are, by its tokens).
        budget = part_budget(r.max_note, len(prompts))
        keys = (
            [self._note_key(r.model, p) for p in prompts]
            if self.snapshots is not None and r.gen.temperature <= 0
            else []
        )
        kept = [self.store.get_wave_note(k, budget=budget) for k in keys]
        given = [k[0] if k else None for k in kept]
        try:
            if keys and all(t is not None for t in given):
                warm, block = WarmStart(source="notes", corpus_tokens=prompt.corpus_end), PrefillStats(0, 0, 0.0)
            else:
                warm, block = load_prefix(
                    self.snapshots,
                    r.model,
                    prompt.tokens[: prompt.corpus_end],
                    model_sha256=self.model_sha,
                    model_name=self.model_path.name,
                    swa_full=self.lane.swa_full,
                    kv_bytes_per_token=self.lane.info.kv_bytes_per_token(r.model.kv_type, r.model.kv_type),
                    total=len(prompt),
                    on_progress=on_prefill,
                    should_cancel=r.cancel,
                )
            out = run_parts(
                r.model,
                list(prompts),
                max_tokens=r.max_note,
                settings=r.gen,
                prefixes=note_prefixes(r.question),
                given=given,
                end=note_end(r.corpus, wave_pages(r.steps[i])),
                side_by_side=True,
                on_progress=on_prefill,
                on_text=on_piece,
                should_cancel=r.cancel,
            )
        except BaseException as exc:
            r.recorder.fail(i, exc)
            raise
        if keys:
            texts = out.part_texts or (out.text,)
            written = out.part_tokens or (out.output_tokens,)
            for key, text, kept_text, tokens in zip(keys, texts, given, written, strict=True):
                if kept_text is None:
                    self.store.put_wave_note(key, text, output_tokens=tokens, budget=budget)
        detail = {**block_detail(warm, prompt), "kept_parts": sum(t is not None for t in given)}
        self._finish_wave(r, i, with_block(out, block), detail)

    def _note_key(self, model: LoadedModel, prompt: Prompt) -> str:
        """The key of the note written after ``prompt`` (``m011_wave_notes``): what a
        snapshot of the whole prompt would be keyed by, and the rule that ends a note."""
        snap = make_key(model, model_sha256=self.model_sha, corpus=prompt.tokens, swa_full=self.lane.swa_full)
        return hashlib.sha256(f"{snap.fingerprint} {NOTE_RULE}".encode()).hexdigest()

    def _finish_wave(self, r: _Read, i: int, out: StepOutput, detail: dict[str, Any]) -> None:
        """Ground a wave's notes on its pages and record it done (in the calling thread)."""
        r.eta.add(out)
        pages = wave_pages(r.steps[i])
        texts = out.part_texts or (out.text,)
        # A note begun with the part's words and going on "nothing relevant" says nothing.
        texts = tuple(
            t[len(p) :].strip() if p and t.startswith(p) and says_nothing(t[len(p) :]) else t
            for t, p in zip(texts, note_prefixes(r.question), strict=True)
        )
        grounded = [ground_notes(text, r.corpus, pages) for text in texts]
        notes = "\n".join(dict.fromkeys(n for g in grounded for n in g.notes)) or NOTHING
        detail = {
            **detail,
            "dropped_notes": sum(g.dropped for g in grounded),
            "pointed_notes": sum(g.pointed for g in grounded),
            "raw_notes": out.text,
        }
        if len(grounded) > 1:  # each part's own notes: what that part carries and answers from
            detail["part_notes"] = [g.notes for g in grounded]
        done = r.recorder.finish_step(i, out, text=notes, citations=check_citations(notes, r.corpus), detail=detail)
        r.ran.append(done.position)

    def _answer(self, r: _Read, final_frame: PromptFrame, session_id: int) -> WaveResult:
        """The final (in map mode: reduce) pass: look before answering (ReadAgent's
        look-up), then the question over every relevant note and the pages looked up,
        laid in with their true markers."""
        n, model, corpus = r.n, r.model, r.corpus
        relevant = [w for w in r.steps[:n] if is_relevant(w)]
        max_answer = self.settings.max_answer_tokens

        def on_final_prefill(p: PrefillProgress) -> None:
            if r.on_progress is not None:
                left = r.eta.estimate(tokens_left=p.total - p.done, steps_left=1, live_rate=p.tokens_per_s)
                r.on_progress(
                    RunProgress(RunKind.WAVES, n + 1, n, "answer", "answer", p.done, p.total, p.tokens_per_s, left)
                )

        entries = MemoryBook(self.store).by_ids(int(i) for i in r.recorder.run.settings.get("memory_ids", []))
        memory = lay_memory(model, entries, room=None)
        r.recorder.start_step(n)
        on_final_prefill(PrefillProgress(0, 0, 0.0, 0.0))  # shown at once: a quoted answer reads nothing
        try:
            # A question of several parts is answered part by part (run_parts), one paragraph
            # each. A part whose kept notes say it in its own words (answer_prefix) is answered
            # by quoting them (quoted_answer); the others from that part's notes and the pages
            # the look-up named (when it named none, the pages that part's notes come from).
            parts = question_parts(r.question)
            split = len(parts) > 1
            prefixes = [answer_prefix(part) for part in parts]
            quoted = [
                quoted_answer(prefix, _notes_block(relevant, part=k if split else None, parts=len(parts)))
                if prefix
                else None
                for k, prefix in enumerate(prefixes)
            ]
            look: StepOutput | None = None
            wanted: list[tuple[Document, int]] = []
            by = "quoted"
            if not all(quoted):
                ask_pages, _ = _fit_final(
                    model,
                    relevant,
                    _lookup_question(r.question),
                    frame=final_frame,
                    n_ctx=r.n_ctx,
                    max_answer=LOOKUP_TOKENS,
                    memory=memory,
                )
                look = run_step(
                    model,
                    ask_pages,
                    max_tokens=LOOKUP_TOKENS,
                    settings=r.gen,
                    on_progress=on_final_prefill,
                    should_cancel=r.cancel,
                )
                wanted, by = looked_up_pages(look.text, corpus, relevant)
            finals: list[Prompt | list[int] | None] = []
            laid: list[tuple[Document, int]] = []
            for k, part in enumerate(parts):
                if quoted[k]:
                    finals.append(None)
                    continue
                pages = wanted
                if split and by != "model":
                    pages, _ = looked_up_pages("", corpus, relevant, part=k, parts=len(parts))
                # The answer begins with the part's words restated (RULER's answer prefix).
                prefix = prefixes[k]
                start = model.tokenize_text(prefix) if prefix else []
                tokens, part_laid = _fit_final(
                    model,
                    relevant,
                    part if split else r.question,
                    frame=final_frame,
                    n_ctx=r.n_ctx,
                    max_answer=max_answer + len(start),
                    pages=pages,
                    memory=memory,
                    part=k if split else None,
                    parts=len(parts),
                )
                finals.append(tokens + start)
                laid += [dp for dp in part_laid if dp not in laid]
            out = run_parts(
                model,
                finals,
                max_tokens=max_answer,
                settings=r.gen,
                sep="\n\n",
                prefixes=prefixes,
                given=quoted,
                on_progress=on_final_prefill,
                on_text=r.on_text,
                should_cancel=r.cancel,
            )
        except BaseException as exc:
            r.recorder.fail(n, exc)
            raise
        citations = check_citations(out.text, corpus)
        unfounded = find_unfounded(out.text, corpus, question=r.question, citations=citations)
        detail = {
            **unfounded_detail(unfounded),
            "looked_up": [f"{d.name} p.{p}" for d, p in laid],
            "lookup_by": by,
            "lookup_raw": look.text if look else "",
            "lookup_tokens": look.prompt_tokens + look.output_tokens if look else 0,
            "lookup_s": round(look.prefill_s + look.generate_s, 3) if look else 0.0,
            "quoted_parts": sum(q is not None for q in quoted),
        }
        r.recorder.finish_step(n, out, text=out.text, citations=citations, detail=detail)
        r.recorder.done(answer=out.text, citations=citations)
        return WaveResult(r.run_id, session_id, out.text, citations, r.recorder.steps[:n], r.ran, unfounded)


def run_parts(
    model: LoadedModel,
    prompts: Sequence[Prompt | list[int] | None],
    *,
    max_tokens: int,
    settings: ReadSettings,
    sep: str = "\n",
    prefixes: Sequence[str | None] = (),
    given: Sequence[str | None] = (),
    end: EndFn | None = None,
    side_by_side: bool = False,
    on_progress: ProgressFn | None = None,
    on_text: TextFn | None = None,
    should_cancel: CancelFn | None = None,
) -> StepOutput:
    """One ``run_step`` per part of the question (``question_parts``), each prompt the
    same but for its part (its prefix read once: the later parts reuse it), the outputs
    joined by ``sep``: a wave's notes, or the final answer. ``prefixes[k]``: the words
    part k's prompt ends with, its text's start; ``given[k]``: part k's text, already
    known (its prompt is None): shown in its place, nothing run. ``end``: where a part's
    text (its prefix and what was written) is complete (a wave's note:
    ``notes.note_end``); by default a part of several ends at a blank line.
    ``side_by_side``: the parts to write are written at once where the runtime can
    (``Model.generate_branches``; greedy), their text shown when all are written.

    Asked a question of three parts at once, SmolLM2-135M wrote one run-on sentence that
    pointed at none of them and answered the first part only; asked each part on its own
    it restated that part's words, which point at the sentence that holds the fact
    (engine/reading/notes.py). Measured in waves of 1,500 tokens with three planted
    facts, 3 seeds: 3 of 12 facts carried asked at once, 10 of 12 asked part by part
    (benchmarks/waves_scale.py's corpora)."""
    outs: list[StepOutput] = []
    each = part_budget(max_tokens, len(prompts))
    ends: list[EndFn | None] = [
        _written_end(_at(prefixes, k), end) if end is not None else None for k in range(len(prompts))
    ]
    # By default a part's note or answer ends at a blank line: SmolLM2 goes on after one
    # with an echo of the prompt ("Question: ..."), which costs tokens and points at nothing.
    if end is None and len(prompts) > 1:
        ends = [ends_before(PART_END)] * len(prompts)
    todo = [k for k in range(len(prompts)) if k >= len(given) or given[k] is None]
    if side_by_side and len(todo) > 1 and settings.temperature <= 0 and model.max_branches >= len(todo):
        lists = [p.tokens if isinstance(p, Prompt) else p for k in todo if (p := prompts[k]) is not None]
        if len(lists) == len(todo):
            written = iter(
                _parts_side_by_side(
                    model,
                    lists,
                    max_tokens=each,
                    ends=[ends[k] for k in todo],
                    on_progress=on_progress,
                    should_cancel=should_cancel,
                )
            )
            for k in range(len(prompts)):
                if k not in todo:
                    outs.append(StepOutput(given[k] or "", 0, 0, 0, 0, 0.0, 0.0))
                    continue
                o = next(written)
                outs.append(replace(o, text=join_prefix(pre, o.text)) if (pre := _at(prefixes, k)) else o)
            if on_text is not None:
                on_text(sep.join(o.text for o in outs))
    for k, prompt in enumerate(prompts if not outs else ()):
        if k and on_text is not None:
            on_text(sep)
        if k < len(given) and (text := given[k]) is not None:
            if on_text is not None:
                on_text(text)
            outs.append(StepOutput(text, 0, 0, 0, 0, 0.0, 0.0))
            continue
        if prompt is None:
            raise ValueError(f"part {k} has neither a prompt nor a given text")
        prefix = _at(prefixes, k)
        out = run_step(
            model,
            prompt.tokens if isinstance(prompt, Prompt) else prompt,
            max_tokens=each,
            settings=settings,
            on_progress=on_progress,
            on_text=_after_prefix(prefix, on_text) if prefix and on_text is not None else on_text,
            should_cancel=should_cancel,
            end=ends[k],
        )
        outs.append(replace(out, text=join_prefix(prefix, out.text)) if prefix else out)
    if len(outs) == 1:
        return outs[0]
    return StepOutput(
        text=sep.join(o.text for o in outs if o.text),
        prompt_tokens=max(o.prompt_tokens for o in outs),
        prefill_tokens=sum(o.prefill_tokens for o in outs),
        reused_tokens=sum(o.reused_tokens for o in outs),
        output_tokens=sum(o.output_tokens for o in outs),
        prefill_s=sum(o.prefill_s for o in outs),
        generate_s=sum(o.generate_s for o in outs),
        part_texts=tuple(o.text for o in outs),
        part_tokens=tuple(o.output_tokens for o in outs),
    )


def _parts_side_by_side(
    model: LoadedModel,
    lists: list[list[int]],
    *,
    max_tokens: int,
    ends: Sequence[EndFn | None],
    on_progress: ProgressFn | None,
    should_cancel: CancelFn | None,
) -> list[StepOutput]:
    """Each part's output, the parts written at once after the prefix their prompts share
    (a wave's page block and what follows it up to the part). The shared prefill and the
    writing time are split evenly between the parts, so that their sums are the wave's.

    A wave of three parts wrote its notes one part after the other, each reading the part
    after the block and writing; side by side the weights are read once a step for all
    three (benchmarks/waves_scale.py: the three-part question's warm waves)."""
    common = min(len(t) for t in lists) - 1
    for t in lists[1:]:
        diff = next((i for i, (a, b) in enumerate(zip(lists[0][:common], t[:common], strict=True)) if a != b), None)
        common = common if diff is None else diff
    stats = model.prefill(lists[0][:common], on_progress=on_progress, should_cancel=should_cancel)
    b = model.generate_branches(
        [t[common:] for t in lists], max_tokens=max_tokens, ends=ends, should_cancel=should_cancel
    )
    n = len(lists)
    prefill_s = (stats.seconds + b.prefill.seconds) / n
    outs = []
    for k, t in enumerate(lists):
        evaluated = len(t) - common + (stats.evaluated if k == 0 else 0)
        outs.append(
            StepOutput(
                text=b.texts[k].strip(),
                prompt_tokens=len(t),
                prefill_tokens=evaluated,
                reused_tokens=len(t) - evaluated,
                output_tokens=b.output_tokens[k],
                prefill_s=prefill_s,
                generate_s=b.generate_s / n,
            )
        )
    return outs


def part_budget(max_tokens: int, parts: int) -> int:
    """The tokens each of ``parts`` parts may write of a step's ``max_tokens``. The budget
    is shared: a part's note or answer is a sentence (SmolLM2 restates the part and gives
    its fact in the first 10-20 tokens), so a wave writes no more than before."""
    return min(max_tokens, max(MIN_PART_TOKENS, max_tokens // parts))


def _at(prefixes: Sequence[str | None], k: int) -> str | None:
    return prefixes[k] if k < len(prefixes) else None


def _written_end(prefix: str | None, end: EndFn) -> EndFn:
    """``end`` of a part's whole text (``prefix`` and what was written), as an ``EndFn``
    of what was written."""
    if not prefix:
        return end

    def cut(text: str) -> int | None:
        whole = join_prefix(prefix, text.lstrip())
        at = end(whole)
        return None if at is None else max(0, at - (len(whole) - len(text)))

    return cut


def note_prefixes(question: str) -> list[str | None]:
    """Each part's answer prefix (``answer_prefix``), with which its wave notes begin."""
    return [answer_prefix(part) for part in question_parts(question)]


def join_prefix(prefix: str, text: str) -> str:
    """An answer begun with ``prefix`` (the prompt's last words) and continued by ``text``."""
    if not text:
        return prefix
    return prefix + ("" if text[0] in ".,:;!?" else " ") + text


def _after_prefix(prefix: str, on_text: TextFn) -> TextFn:
    # Shows the prefix, then the pieces, spaced as join_prefix joins them.
    on_text(prefix)
    started = False

    def show(piece: str) -> None:
        nonlocal started
        if not started and piece.strip():
            piece = piece.lstrip()
            on_text(piece if piece[0] in ".,:;!?" else " " + piece)
            started = True
        elif started:
            on_text(piece)

    return show


def with_block(out: StepOutput, block: PrefillStats) -> StepOutput:
    """A wave's numbers with its page block's load counted in: ``run_step`` found the
    block already in the context (reused); what loading it evaluated (the whole block
    read cold, or the one check token of a restore) moves from reused to evaluated."""
    return replace(
        out,
        prefill_tokens=out.prefill_tokens + block.evaluated,
        reused_tokens=out.reused_tokens - block.evaluated,
        prefill_s=out.prefill_s + block.seconds,
    )


def block_detail(warm: WarmStart, prompt: Prompt) -> dict[str, Any]:
    """How a wave's page block got into the context, for its step's ``detail``:
    ``block`` is ``snapshot`` (restored), ``prefill`` (read; ``block_saved`` says whether a
    snapshot was written) or ``context`` (already there)."""
    detail: dict[str, Any] = {
        "block": warm.source,
        "block_tokens": prompt.corpus_end,
        "block_saved": warm.saved,
        "block_bytes": warm.snapshot_bytes,
        "block_restore_s": round(warm.restore_s, 3),
    }
    if warm.notice:
        detail["block_notice"] = warm.notice
    return detail


def read_waves_at_once(reader: WaveReader, r: _Read, slots: int) -> None:
    """Map mode on a runtime that serves ``slots`` requests at once (a server backend):
    up to ``slots`` waves read at the same time, each in a worker thread that only calls
    the model; this thread alone writes the store (a wave is set ``running`` when it is
    handed to a worker and recorded ``done`` when its notes come back), so storage, resume
    and the kill tests' guarantees are those of waves read in order. Page blocks are not
    snapshotted here: a server keeps its own caches, and a snapshot is one sequence's.

    The first failure stops the other waves in flight (they are marked ``cancelled`` and
    read on resume) and is raised; a cancel by the user likewise.
    """
    todo = [i for i in range(r.n) if not r.steps[i].done]
    prompts = {i: reader.wave_prompts(r, i) for i in todo}  # no notes are carried: known up front
    stop = threading.Event()

    def should_stop() -> bool:
        return stop.is_set() or r.cancel()

    def work(i: int) -> StepOutput:
        return run_parts(
            r.model,
            list(prompts[i]),
            max_tokens=r.max_note,
            settings=r.gen,
            prefixes=note_prefixes(r.question),
            end=note_end(r.corpus, wave_pages(r.steps[i])),
            should_cancel=should_stop,
        )

    queue = iter(todo)
    in_flight: dict[Future[StepOutput], int] = {}
    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="wave") as pool:

        def hand_out() -> None:
            i = next(queue, None)
            if i is not None:
                r.recorder.start_step(i)
                in_flight[pool.submit(work, i)] = i

        for _ in range(slots):
            hand_out()
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                i = in_flight.pop(future)
                try:
                    out = future.result()
                except BaseException as exc:
                    stop.set()
                    for other, j in in_flight.items():
                        try:
                            other.result()  # it stops at its next batch or token
                        except BaseException:  # noqa: S110 - it is marked cancelled below either way
                            pass
                        r.recorder.fail(j, Cancelled())
                    r.recorder.fail(i, exc)  # last: the run's status is what stopped it
                    raise
                reader._finish_wave(r, i, out, {"block": "none", "slots": slots})
                if r.on_progress is not None:
                    done = sum(1 for w in r.steps[: r.n] if w.done)
                    left = r.eta.estimate(tokens_left=r.tokens_left(0), steps_left=1, live_rate=0.0)
                    left = None if left is None else left / slots
                    r.on_progress(RunProgress(RunKind.WAVES, done, r.n, "wave", "notes", done, r.n, 0.0, left))
                hand_out()


def wave_pages(step: Step) -> set[tuple[str, int]]:
    """The (document name, page) pairs a wave step reads."""
    return {(s.name, p) for s in wave_segments(step) for p in range(s.first, s.last + 1)}


def dropped_notes(step: Step) -> int:
    """How many of a wave's notes were not on their pages (dropped, never carried)."""
    return int(step.detail.get("dropped_notes", 0))


def _notes_block(carried: list[Step], *, part: int | None = None, parts: int = 1) -> list[str]:
    """One line per carried note: grounded notes carry their own page's marker; a wave
    stored before notes were grounded carries its pages' label. ``part``: only the notes
    written for that part of the question (a wave read part by part keeps them apart),
    else all of them."""
    lines = []
    for w in carried:
        own = w.detail.get("part_notes")
        text = w.text
        if part is not None and isinstance(own, list) and len(own) == parts:
            text = "\n".join(own[part])
        for line in text.splitlines():
            line = " ".join(line.split())
            if line:
                lines.append(line if MARKER.match(line) else f"[{w.label}] {line}")
    return lines


# What to write: the end of every wave's page block, so that a second question restores
# it with the pages and evaluates only the question (and the carried notes). After the
# question it cost a warm wave 35 of its 56 tokens (benchmarks/waves_scale.py, 2x).
WAVE_ASK = (
    "\n\nWrite brief notes on the pages above that help answer the question below, one per line, each "
    f"starting with its page marker. If they say nothing about it, write: {NOTHING}"
)


def _wave_question(question: str, notes: list[str], *, carry: bool = True) -> str:
    """What follows a wave's page block: the question, and the notes carried so far
    (carry mode only)."""
    head = question.strip()
    if carry:
        earlier = "\n".join(notes) if notes else "None yet."
        head += f"\n\nPassages kept from the parts read before:\n{earlier}"
    return head


def wave_part(part: str, prefix: str | None) -> str:
    """What a wave's prompt asks after its page block for one part of the question: the
    part, or nothing when its note begins with the part's words restated (``prefix``),
    which say it. Map mode only: carry mode's notes follow the part (measured with it).

    Measured (benchmarks/waves_scale.py's 2x corpus, SmolLM2-135M): a warm wave of two
    parts read 43 tokens after its block with the parts asked, 20 without; the next
    question took 6% of the first instead of 10%, and the notes that hold the planted
    facts are the same."""
    return "" if prefix else part


def _fit_wave(
    model: LoadedModel,
    lists: list[list[int]],
    question: str,
    carried: list[Step] | None,
    *,
    frame: PromptFrame,
    n_ctx: int,
    max_note: int,
    part: int | None = None,
    parts: int = 1,
) -> Prompt:
    """The wave's prompt with as many of the latest notes (of ``part``, when the question
    is read part by part) as leave room for its own (``carried`` None: map mode, no notes
    section at all)."""
    notes = _notes_block(carried or [], part=part, parts=parts)
    while True:
        prompt = build_prompt(model, lists, _wave_question(question, notes, carry=carried is not None), frame=frame)
        if len(prompt) + max_note <= n_ctx or not notes:
            return prompt
        notes = notes[1:]  # the oldest notes give way first (they all reach the final answer)


def _lookup_question(question: str) -> str:
    return (
        f"{question.strip()}\n\nBefore answering, you may read up to {LOOKUP_PAGES} pages again in full. "
        "Write the markers of the pages to read again, like [report.pdf p.3], or write: None."
    )


def looked_up_pages(
    text: str,
    corpus: Corpus,
    relevant: list[Step],
    *,
    limit: int | None = None,
    part: int | None = None,
    parts: int = 1,
) -> tuple[list[tuple[Document, int]], str]:
    """The pages to read again before answering: those the look-up names (pages of the
    corpus, at most ``limit``, in the order named), else the pages the carried notes (of
    ``part``: ``_notes_block``) come from, most noted first (a small model often names none).

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
    mentions = pick("\n".join(_notes_block(relevant, part=part, parts=parts)))
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
    part: int | None = None,
    parts: int = 1,
) -> tuple[list[int], list[tuple[Document, int]]]:
    """The final prompt: the notes (of ``part``, when the question was read part by
    part), then ``pages`` laid out whole with their true markers, then the memory block
    (engine/memory.py), then the question. Pages that do not fit give way first (the last
    named first), then the oldest notes. Returns the tokens and the pages laid in."""
    block = memory.tokens if memory is not None else ()
    ids = memory.ids if memory is not None else ()
    notes = _notes_block(relevant, part=part, parts=parts)
    laid = list(pages or [])
    while True:
        text = "\n".join(notes) if notes else "The documents gave no notes relevant to the question."
        lists = []
        if laid:
            lists.append(model.tokenize_text("Pages read again in full:\n\n"))
            lists += [model.tokenize_text(layout_document(sub_document(d, p, p))) for d, p in laid]
            text = "Passages kept while reading:\n" + text
        lists.append(model.tokenize_text(text + "\n"))
        prompt = build_prompt(model, lists, question, frame=frame, memory=block, memory_ids=ids)
        if len(prompt) + max_answer <= n_ctx or not (notes or laid):
            return prompt.tokens, laid
        if laid:
            laid = laid[:-1]
        else:
            notes = notes[1:]
