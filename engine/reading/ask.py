"""Ask: the whole corpus in context, plus a question, gives a streamed answer.

``Reader`` owns one model lane: it loads the model (or only its vocabulary, to count),
checks that corpus + question + answer budget fit the window before anything runs
(never truncating silently), stores the question before the model runs, prefills only
what the context does not already hold (a follow-up about the same corpus prefills only
its own tokens), streams the answer, saves it as it grows, and records the run's
numbers (an ``ask`` run of one ``answer`` step, engine/runs.py). It is used from one thread at a time.

Warm corpora (issue 4): when the context does not already hold the corpus, ``ask``
restores its KV snapshot from disk if one matches (engine/warm.py), and
otherwise reads the corpus cold and saves one. ``AskResult.warm`` says which happened,
how long the restore took and how long the cold read took when the snapshot was made.
A damaged snapshot is removed and rebuilt, with a notice; it never answers.
Sliding-window models (Gemma 3) load with llama.cpp's ``swa_full``: without it the
cache keeps only the last window, and rolling back to the end of the corpus for a
follow-up would silently leave a truncated window (docs/architecture.md, "Measured facts"). It costs memory: every
layer keeps the whole window (``ModelInfo.kv_cache_bytes(..., swa_full=True)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Unpack

from engine.compose import RECOMPUTE_FIRST, Composer, ComposeRefused, Composition
from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import CancelToken, ContextOverflowError, EngineError
from engine.memory import MemoryBook, MemoryLayout
from engine.models.gguf import ModelInfo
from engine.planning import fit_speed_models
from engine.reading.citations import Citation, check_citations
from engine.reading.facts import Unfounded, find_unfounded, unfounded_detail
from engine.reading.prompts import Prompt, build_prompt
from engine.reading.stepping import (
    LaneOptions,
    LaneReader,
    RunRecorder,
    StepOutput,
    load_run,
    session_title,
    stored_corpus,
)
from engine.reading.waves import WaveReader, WavesEstimate
from engine.runs import RunKind, Status
from engine.runtime.backend import Model as LoadedModel
from engine.runtime.backend import PrefillProgress, PrefillStats, RemoteBackend, Tokenizer, align_ctx
from engine.runtime.server import ServerModel
from engine.server_warm import ServerSlots
from engine.store import Store
from engine.tokens import corpus_tokens, count, tokenizer_key
from engine.warm import MIN_SNAPSHOT_TOKENS, SnapshotCache, WarmStart, common_prefix, load_prefix, make_key

# Room left for follow-up questions when the window is chosen automatically, so that a
# longer follow-up does not force a reload and a full prefill.
FOLLOW_UP_HEADROOM = 512
PARTIAL_SAVE_EVERY_S = 1.0


@dataclass(frozen=True)
class Budget:
    """What a question about a corpus needs from the window."""

    corpus_tokens: int
    prompt_tokens: int
    answer_tokens: int
    n_ctx: int
    max_ctx: int
    memory: MemoryLayout = field(default_factory=MemoryLayout)  # the memory block laid in, and what was left out

    @property
    def memory_tokens(self) -> int:
        return self.memory.n_tokens

    @property
    def needed(self) -> int:
        return self.prompt_tokens + self.answer_tokens

    @property
    def fits(self) -> bool:
        return self.needed <= self.n_ctx


@dataclass(frozen=True)
class AskResult:
    """A finished ``ask`` run."""

    session_id: int
    run_id: int
    answer: str
    citations: list[Citation]
    budget: Budget
    prefill: PrefillStats
    answer_tokens: int
    generate_s: float
    warm: WarmStart | None = None
    unfounded: list[Unfounded] = field(default_factory=list)  # facts on no page (engine/reading/facts.py)


class Reader(LaneReader):
    """Reads corpora with one local model. One thread at a time.

    Args:
        store: the store for documents, token caches and turns.
        model_path: the GGUF to read with.
        settings: window, KV type, threads, answer budget.
        snapshots: the KV snapshot cache (default: the data folder's); ``None`` with
            ``use_snapshots=False`` turns snapshots off (prefix reuse stays on).
        options: where the model comes from (``LaneOptions``: model, lane, backend).
    """

    def __init__(
        self,
        store: Store,
        model_path: Path,
        settings: ReadSettings | None = None,
        *,
        snapshots: SnapshotCache | None = None,
        use_snapshots: bool = True,
        **options: Unpack[LaneOptions],
    ) -> None:
        super().__init__(store, model_path, settings, **options)
        self._model_sha: str | None = None
        self.snapshots = snapshots if snapshots is not None or not use_snapshots else SnapshotCache(store)
        #: k of per-document composition (engine/compose.py); None turns composing off.
        self.compose_k: int | None = RECOMPUTE_FIRST
        #: Slot files on an inference server (engine/server_warm.py); None turns them off.
        self.server_slots: ServerSlots | None = ServerSlots(store)

    # -- models ------------------------------------------------------------------

    @property
    def model(self) -> LoadedModel | None:
        return self.lane.model

    @property
    def model_sha(self) -> str:
        if self._model_sha is None:
            self._model_sha = self.lane.model_sha
        return self._model_sha

    @property
    def model_info(self) -> ModelInfo:
        """The model file's header (layers, KV heads, sliding window), read once."""
        return self.lane.info

    @property
    def swa_full(self) -> bool:
        """Whether the model loads with a full-size sliding-window cache (see module doc)."""
        return self.lane.swa_full

    def tokenizer(self) -> Tokenizer:
        """The loaded model if there is one, else the vocabulary alone (fast)."""
        return self.lane.tokenizer()

    def _ensure_model(self, n_ctx: int) -> LoadedModel:
        return self.lane.ensure(n_ctx, self.settings.kv_type)

    # -- planning ----------------------------------------------------------------

    def prepare(
        self, corpus: Corpus, question: str, *, memory_ids: Sequence[int] | None = None
    ) -> tuple[Prompt, Budget]:
        """Tokenize the corpus, the memory block and the question and check that they fit.

        The memory block (engine/memory.py) gets the room the window, or the measured
        effective context, leaves; ``Budget.memory`` lists what was left out.
        ``memory_ids`` lays exactly those entries (a resumed run's own, or the user's pick).

        Raises:
            ContextOverflowError: corpus + question + answer budget exceed the window.
        """
        tok = self.tokenizer()
        lists = corpus_tokens(corpus, tok, key=tokenizer_key(self.model_sha), store=self.store)
        prompt = build_prompt(tok, lists, question)
        memory = self.lay_memory(corpus, tok, used=len(prompt), extra=self.settings.max_answer_tokens, pick=memory_ids)
        if memory.tokens:
            prompt = build_prompt(tok, lists, question, memory=memory.tokens, memory_ids=memory.ids)
        budget = self.budget(prompt, count(lists), memory=memory)
        if not budget.fits:
            backend = self.lane.backend
            raise _overflow(
                budget,
                explicit=bool(self.settings.n_ctx),
                waves=self.estimate_waves(budget.corpus_tokens, n_pages=corpus.n_pages),
                server=backend.url if isinstance(backend, RemoteBackend) else None,
            )
        return prompt, budget

    def memory_for(self, corpus: Corpus) -> MemoryLayout:
        """The memory block a question about ``corpus`` carries now (an empty question:
        what the gauge shows; engine/memory.py)."""
        tok = self.tokenizer()
        lists = corpus_tokens(corpus, tok, key=tokenizer_key(self.model_sha), store=self.store)
        base = build_prompt(tok, lists, "")
        return self.lay_memory(corpus, tok, used=len(base), extra=self.settings.max_answer_tokens)

    def estimate_waves(self, corpus_tokens: int, *, n_pages: int) -> WavesEstimate | None:
        """About how long reading the corpus in waves would take instead (issue 13 item
        6): from the planner's speed model of this machine for the settings' KV type
        when a calibration exists, else a rough guess (said so). None if no estimate can
        be made (the window cannot hold a page and the notes)."""
        calibrations = self.store.get_calibrations(
            self.model_sha, n_threads=self.settings.threads(), llama_cpp_version=self.lane.backend.version
        )
        speeds = fit_speed_models(self.model_info, calibrations, swa_full=self.swa_full)
        waves = WaveReader(  # the default note budget
            self.store,
            self.model_path,
            self.settings,
            lane=self.lane,
            snapshots=self.snapshots,
            use_snapshots=self.snapshots is not None,
        )
        try:
            return waves.estimate(
                corpus_tokens,
                n_pages=n_pages,
                speed=speeds.get(str(self.settings.kv_type)),
                answer_tokens=self.settings.max_answer_tokens,
            )
        except EngineError:
            return None

    def budget(self, prompt: Prompt, corpus_tokens: int, *, memory: MemoryLayout | None = None) -> Budget:
        """The window a prompt needs under the current settings."""
        s = self.settings
        max_ctx = self.tokenizer().n_ctx_train
        need = len(prompt) + s.max_answer_tokens
        if s.n_ctx:
            n_ctx = align_ctx(s.n_ctx)
        elif (model := self.lane.model) is not None and model.n_ctx >= need and model.kv_type == s.kv_type:
            n_ctx = model.n_ctx
        else:
            n_ctx = min(align_ctx(need + FOLLOW_UP_HEADROOM), max_ctx)
            # A window that already has a snapshot of this corpus restores instead of
            # reading it again: prefer the smallest one that fits.
            warm = [w for w in self._snapshot_windows(prompt) if need <= w <= max_ctx]
            if warm:
                n_ctx = warm[0]
        return Budget(corpus_tokens, len(prompt), s.max_answer_tokens, n_ctx, max_ctx, memory or MemoryLayout())

    def _snapshot_windows(self, prompt: Prompt) -> list[int]:
        # The corpus + memory prefix first; else the corpus alone (issue 15: a memory that
        # changed still restores the corpus, in the window its snapshot was made in).
        if self.snapshots is None:
            return []
        for end in dict.fromkeys((prompt.corpus_end, prompt.corpus_only_end)):
            if end < MIN_SNAPSHOT_TOKENS:
                continue
            windows = self.snapshots.find_windows(
                model_sha256=self.model_sha,
                kv_type=self.settings.kv_type,
                corpus=prompt.tokens[:end],
                runtime_version=self.lane.backend.version,
            )
            if windows:
                return windows
        return []

    # -- asking ------------------------------------------------------------------

    def start(self, corpus: Corpus, question: str, *, session_id: int | None = None) -> tuple[int, Prompt, Budget]:
        """Check the question fits and store it as an ``ask`` run of one pending step.

        Returns:
            the run's id, and the prompt and budget it will read with.

        Raises:
            ContextOverflowError: the corpus does not fit (nothing is stored).
        """
        prompt, budget = self.prepare(corpus, question)
        if session_id is None:
            corpus_id = self.store.save_corpus(corpus)
            session_id = self.store.create_session(title=session_title(question), corpus_id=corpus_id)
        settings = {**asdict(self.settings), "n_ctx": budget.n_ctx, "memory_ids": list(prompt.memory_ids)}
        run_id = self.store.create_run(
            session_id,
            kind=RunKind.ASK,
            question=question,
            model=self.model_path.name,
            settings=settings,
            steps=[{"kind": "answer"}],
            corpus_tokens=budget.corpus_tokens,
        )
        return run_id, prompt, budget

    def ask(
        self,
        corpus: Corpus,
        question: str,
        *,
        session_id: int | None = None,
        on_progress: Callable[[PrefillProgress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        cancel: CancelToken | None = None,
        fresh: bool = False,
    ) -> AskResult:
        """Answer ``question`` from the whole ``corpus``; store it as a run.

        Args:
            corpus: the documents, already stored.
            question: the user's question.
            session_id: continue this session (default: start one).
            on_progress: called after each prefill batch.
            on_text: called with each piece of the answer as it streams.
            cancel: checked between prefill batches and between answer tokens.
            fresh: read the documents as a cold read does even where ``settings.assemble``
                would assemble them (the answer line's "read fresh and ask again"): a
                corpus assembled into the context is dropped, its exact snapshot restored
                or the documents read.

        Returns:
            the finished run's answer.

        Raises:
            ContextOverflowError: the corpus does not fit (nothing is stored).
            Cancelled: the user cancelled (the run is kept, marked cancelled).
            EngineError: loading or generation failed (the run is kept, marked failed).
        """
        run_id, prompt, budget = self.start(corpus, question, session_id=session_id)
        return self._answer(
            run_id, corpus, prompt, budget, on_progress=on_progress, on_text=on_text, cancel=cancel, fresh=fresh
        )

    def warm(
        self,
        corpus: Corpus,
        *,
        on_progress: Callable[[PrefillProgress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> WarmStart:
        """Load the corpus and its memory block into the model before any question (a
        session being opened): restored from snapshots, or read and saved as them.

        Raises:
            ContextOverflowError: the corpus does not fit.
            Cancelled: cancelled between two batches.
        """
        prompt, budget = self.prepare(corpus, "")
        model = self._ensure_model(budget.n_ctx)
        cancel = cancel or CancelToken()
        warm, _ = self._load_corpus(model, prompt, on_progress=on_progress, cancel=cancel, opening=True)
        # Without snapshots nothing was read yet: read the prefix now (a no-op when it is there).
        model.prefill(prompt.tokens[: prompt.corpus_end], on_progress=on_progress, should_cancel=cancel)
        return warm

    def run(
        self,
        run_id: int,
        *,
        on_progress: Callable[[PrefillProgress], None] | None = None,
        on_text: Callable[[str], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> AskResult:
        """Answer a stored ``ask`` run again if it did not finish (the resume path).

        Raises:
            EngineError: no such run, its documents are gone, or another process runs it.
            ContextOverflowError: its corpus no longer fits under the current settings.
        """
        run = load_run(self.store, run_id, RunKind.ASK)
        corpus = stored_corpus(self.store, run.session_id, what=f"question {run_id}")
        ids = run.settings.get("memory_ids")
        prompt, budget = self.prepare(corpus, run.question, memory_ids=None if ids is None else [int(i) for i in ids])
        if run.status is Status.DONE:
            step = run.answer_step
            citations = check_citations(run.answer, corpus)
            return AskResult(
                session_id=run.session_id,
                run_id=run.id,
                answer=run.answer,
                citations=citations,
                budget=budget,
                prefill=PrefillStats(0, 0, 0.0),
                answer_tokens=(step.output_tokens or 0) if step else 0,
                generate_s=0.0,
                unfounded=find_unfounded(run.answer, corpus, question=run.question, citations=citations),
            )
        return self._answer(run_id, corpus, prompt, budget, on_progress=on_progress, on_text=on_text, cancel=cancel)

    def _answer(
        self,
        run_id: int,
        corpus: Corpus,
        prompt: Prompt,
        budget: Budget,
        *,
        on_progress: Callable[[PrefillProgress], None] | None,
        on_text: Callable[[str], None] | None,
        cancel: CancelToken | None,
        fresh: bool = False,
    ) -> AskResult:
        cancel = cancel or CancelToken()
        run = load_run(self.store, run_id, RunKind.ASK)
        recorder = RunRecorder(self.store, run)
        recorder.claim()
        recorder.begin()
        recorder.start_step(0)
        answer: list[str] = []
        try:
            model = self._ensure_model(budget.n_ctx)
            names = [d.name for d in corpus.documents]
            warm, corpus_stats = self._load_corpus(
                model, prompt, on_progress=on_progress, cancel=cancel, names=names, fresh=fresh
            )
            rest = model.prefill(prompt.tokens, on_progress=on_progress, should_cancel=cancel)
            prefill = PrefillStats(
                evaluated=corpus_stats.evaluated + rest.evaluated,
                reused=len(prompt.tokens) - corpus_stats.evaluated - rest.evaluated,
                seconds=corpus_stats.seconds + rest.seconds,
            )
            start = time.perf_counter()
            last_save = start
            for piece in model.generate(
                max_tokens=self.settings.max_answer_tokens,
                temperature=self.settings.temperature,
                seed=self.settings.seed,
                should_cancel=cancel,
            ):
                answer.append(piece)
                if on_text is not None:
                    on_text(piece)
                now = time.perf_counter()
                if now - last_save >= PARTIAL_SAVE_EVERY_S:
                    recorder.save_text(0, "".join(answer))
                    last_save = now
            generate_s = time.perf_counter() - start
        except BaseException as exc:
            recorder.fail(0, exc, text="".join(answer))
            raise
        text = "".join(answer).strip()
        answer_tokens = model.n_tokens - len(prompt.tokens)
        citations = check_citations(text, corpus)
        unfounded = find_unfounded(text, corpus, question=run.question, citations=citations)
        out = StepOutput(
            text=text,
            prompt_tokens=len(prompt.tokens),
            prefill_tokens=prefill.evaluated,
            reused_tokens=prefill.reused,
            output_tokens=answer_tokens,
            prefill_s=prefill.seconds,
            generate_s=generate_s,
        )
        recorder.finish_step(0, out, text=text, citations=citations, detail=unfounded_detail(unfounded))
        recorder.done(answer=text, citations=citations)
        return AskResult(
            session_id=run.session_id,
            run_id=run_id,
            answer=text,
            citations=citations,
            budget=budget,
            prefill=prefill,
            answer_tokens=answer_tokens,
            generate_s=generate_s,
            warm=warm,
            unfounded=unfounded,
        )

    def _load_corpus(
        self,
        model: LoadedModel,
        prompt: Prompt,
        *,
        on_progress: Callable[[PrefillProgress], None] | None,
        cancel: CancelToken,
        names: list[str] | None = None,
        opening: bool = False,
        fresh: bool = False,
    ) -> tuple[WarmStart, PrefillStats]:
        """Make the context hold the prompt's prefix: already there, restored, assembled
        from its documents' snapshots, or read (``engine.warm.load_prefix``, which waves
        use for their page blocks too).

        Two warm prefixes (issue 15): the corpus alone, and the corpus + memory block.
        When the whole prefix has no snapshot, the corpus is loaded first (restored,
        composed, or read and saved: ``_load_documents``), then the memory is read on top
        of it and the whole saved: a new session with the same memory restores it whole,
        one whose memory changed restores the corpus and reads only the memory. The whole
        prefix's snapshot is linked to the entries it holds (``snapshot_memories``):
        editing or forgetting one removes it. A question whose documents are still loaded
        (a follow-up) reads only the memory entries added since (its session's earlier
        answers) with itself, and writes no snapshot; ``opening`` a session (``warm``)
        saves the whole prefix all the same.

        Cells assembled from document snapshots are never saved as a prefix snapshot (a
        prefix snapshot is what a cold read computes; the memory read on top of them is
        read again next time), and are dropped first when this ask must not assemble
        (``fresh``, or ``settings.assemble`` off).
        """
        if isinstance(model, ServerModel) and self.server_slots is not None:
            # On a server: the documents from the slot's cache or its slot file (issue 16);
            # the memory block is read with the question through the prompt cache.
            docs = prompt.tokens[: prompt.corpus_only_end]
            return self.server_slots.load(model, docs, on_progress=on_progress, should_cancel=cancel)
        cache = self.snapshots
        prefix = prompt.tokens[: prompt.corpus_end]
        corpus_end = prompt.corpus_only_end
        assemble = self.settings.assemble and not fresh
        if not assemble:
            self.lane.drop_assembled(model)

        def documents() -> tuple[WarmStart, PrefillStats]:
            return self._load_documents(
                model, prompt, on_progress=on_progress, cancel=cancel, names=names, assemble=assemble
            )

        if cache is None or corpus_end >= len(prefix) or corpus_end < MIN_SNAPSHOT_TOKENS:
            if corpus_end >= len(prefix):
                return documents()
            return self._load_tokens(model, prefix, total=len(prompt.tokens), on_progress=on_progress, cancel=cancel)
        whole = make_key(model, model_sha256=self.model_sha, corpus=prefix, swa_full=self.swa_full)
        if cache.find(whole) is not None:
            return self._load_tokens(model, prefix, total=len(prompt.tokens), on_progress=on_progress, cancel=cancel)
        first, first_stats = documents()
        if first.source == "context" and not opening:
            # A follow-up: the documents are loaded, and the memory block has grown by this
            # session's latest answer (newest last). The model reads the new entries with the
            # question, reusing the rest; no snapshot is written for every question.
            return replace(first, corpus_tokens=len(prefix)), first_stats
        warm, stats = self._load_tokens(model, prefix, total=len(prompt.tokens), on_progress=on_progress, cancel=cancel)
        if warm.saved and prompt.memory_ids:
            MemoryBook(self.store).link_snapshot(whole.fingerprint, prompt.memory_ids)
        restored = corpus_end if first.source in ("snapshot", "context", "composed") else 0
        total = PrefillStats(
            evaluated=first_stats.evaluated + stats.evaluated,
            reused=max(0, len(prefix) - first_stats.evaluated - stats.evaluated),
            seconds=first_stats.seconds + stats.seconds,
        )
        notice = " ".join(n for n in (warm.notice, first.notice) if n) or None
        warm = replace(warm, restored_tokens=restored, notice=notice)
        if first.restored:
            warm = replace(warm, restore_s=first.restore_s)
        if first.source == "composed":  # say how the documents got there (issue 17), memory read on top
            warm = replace(
                warm,
                source="composed",
                assembled=True,
                documents=first.documents,
                reread_tokens=first.reread_tokens,
                restore_s=first.restore_s,
                cold_prefill_s=first.cold_prefill_s,
            )
        return warm, total

    def _load_tokens(
        self,
        model: LoadedModel,
        tokens: list[int],
        *,
        total: int,
        on_progress: Callable[[PrefillProgress], None] | None,
        cancel: CancelToken,
    ) -> tuple[WarmStart, PrefillStats]:
        """``load_prefix``; on top of cells assembled from document snapshots it saves
        nothing (a prefix snapshot is always what a cold read computes) and says that the
        context kept them."""
        assembled = self.lane.holds_assembled(model)
        warm, stats = load_prefix(
            self.snapshots,
            model,
            tokens,
            model_sha256=self.model_sha,
            model_name=self.model_path.name,
            swa_full=self.swa_full,
            kv_bytes_per_token=self.model_info.kv_bytes_per_token(model.kv_type, model.kv_type),
            total=total,
            on_progress=on_progress,
            should_cancel=cancel,
            save=not assembled,
        )
        if warm.source == "context" and assembled:
            warm = replace(warm, assembled=True)  # kept from an earlier question's assembly
        return warm, stats

    def _load_documents(
        self,
        model: LoadedModel,
        prompt: Prompt,
        *,
        on_progress: Callable[[PrefillProgress], None] | None,
        cancel: CancelToken,
        names: list[str] | None = None,
        assemble: bool = True,
    ) -> tuple[WarmStart, PrefillStats]:
        """Make the context hold the documents (the corpus without its memory block):
        already there, restored, assembled from the documents' snapshots when the corpus
        has no snapshot of its own and ``assemble`` (engine/compose.py), or read; a cold
        read saves each document's snapshot (unless the setting not to assemble is on)."""
        end = prompt.corpus_only_end
        corpus = prompt.tokens[:end]
        composer = self._composer()
        refusal = None
        held = common_prefix(model.context_tokens, corpus)
        if composer is not None and assemble and held < end - 1 and end >= MIN_SNAPSHOT_TOKENS:
            key = make_key(model, model_sha256=self.model_sha, corpus=corpus, swa_full=self.swa_full)
            why = model.can_shift if len(prompt.document_spans) > 1 else None
            if why is not None:
                refusal = f"The documents' snapshots cannot be assembled for this model: {why}. Read cold."
            elif self.snapshots is not None and self.snapshots.find(key) is None:
                if composer.cost(model, prompt) < end - held:
                    try:
                        comp = composer.compose(model, prompt, names=names or ())
                    except ComposeRefused as exc:
                        refusal = exc.message
                    else:
                        if comp is not None:
                            self.lane.assembled = (prompt.document_spans[0][0], corpus)
                            return self._composed(model, composer, prompt, comp, names or [])
        warm, stats = self._load_tokens(model, corpus, total=len(prompt.tokens), on_progress=on_progress, cancel=cancel)
        notes = [n for n in (warm.notice, refusal) if n]
        if composer is not None and self.settings.assemble and warm.source == "prefill":
            try:
                composer.save_documents(
                    model, prompt, names=names or (), seconds_per_token=(warm.cold_prefill_s or 0.0) / end
                )
            except (EngineError, OSError) as exc:
                notes.append(f"The documents' snapshots could not be saved ({exc}); they will be read again next time.")
        if notes != [n for n in (warm.notice,) if n]:
            warm = replace(warm, notice=" ".join(notes))
        return warm, stats

    def _composer(self) -> Composer | None:
        if self.snapshots is None or self.compose_k is None:
            return None
        return Composer(
            self.snapshots,
            model_sha256=self.model_sha,
            model_name=self.model_path.name,
            swa_full=self.swa_full,
            k=self.compose_k,
        )

    def _composed(
        self,
        model: LoadedModel,
        composer: Composer,
        prompt: Prompt,
        comp: Composition,
        names: list[str],
    ) -> tuple[WarmStart, PrefillStats]:
        notes = list(comp.notices)
        if comp.read:
            # Documents read whole in place get their own snapshot now.
            rate = comp.cold_estimate_s / prompt.corpus_only_end if comp.cold_estimate_s else 0.0
            try:
                composer.save_documents(model, prompt, names=names, seconds_per_token=rate)
            except (EngineError, OSError) as exc:
                notes.append(f"A document's snapshot could not be saved ({exc}).")
        warm = WarmStart(
            source="composed",
            corpus_tokens=prompt.corpus_only_end,
            restore_s=comp.stats.seconds,
            cold_prefill_s=comp.cold_estimate_s,
            notice=" ".join(notes) or None,
            documents=comp.documents,
            reread_tokens=comp.stats.evaluated,
            assembled=True,
        )
        return warm, comp.stats


def _overflow(
    budget: Budget, *, explicit: bool, waves: WavesEstimate | None = None, server: str | None = None
) -> ContextOverflowError:
    numbers = (
        f"corpus {budget.corpus_tokens:,} tokens, with the question and room for the answer "
        f"{budget.needed:,}; window {budget.n_ctx:,}"
    )
    ways = []
    if explicit and budget.needed <= budget.max_ctx:
        ways.append(f"a larger window (up to {budget.max_ctx:,}, this model's trained length)")
    ways.append("fewer or shorter documents")
    if budget.needed > budget.max_ctx and server is not None:
        ways.append(f"a larger window on the server (llama-server -c; each of its slots has {budget.max_ctx:,})")
    elif budget.needed > budget.max_ctx:
        ways.append(f"a model trained on a longer context (this one stops at {budget.max_ctx:,})")
    if waves is None:
        ways.append("reading it in waves (longread waves), which keeps notes window by window")
    else:
        ways.append(f"reading it in waves, window by window, with notes (longread waves: {waves.describe()})")
    where = f"the window of the server at {server}" if server is not None else "the model's window"
    return ContextOverflowError(
        f"The corpus does not fit {where}: {numbers}. Ways out: " + "; ".join(ways) + ".",
        corpus_tokens=budget.corpus_tokens,
        needed_tokens=budget.needed,
        n_ctx=budget.n_ctx,
        max_ctx=budget.max_ctx,
        waves_eta=waves.about_both if waves is not None else None,
    )
