"""The engine's front door: a ``Library`` of documents and sessions, and the ways to read them.

The window (app/) and the CLI (engine/cli.py) call only this object for what they do with
documents, sessions, plans, reading and export, as Anki's GUI talks to its ``Collection``.
It owns:

- the store (one SQLite connection: a ``Library`` is used from one thread; each thread
  that needs one opens its own, which is cheap);
- one model holder (``ModelLane``) shared by every way of reading, so a follow-up, a deep
  run and a read in waves reuse the same loaded model and its context;
- the KV snapshot cache.

Every way of reading is a run of stored steps (engine/runs.py): ``ask``, ``think`` and
``read_in_waves`` start one and run it; ``resume(run_id)`` runs a stored run's steps that
are not done, whatever its kind (the one resume path); ``export_markdown`` renders any
session. A cancel is a ``CancelToken`` the caller passes and sets from any thread.

Contract: every method raises ``EngineError`` subclasses with messages fit for a user
(``StorageError``, ``IngestError``, ``ContextOverflowError``, ``ModelError``,
``GenerationError``) or ``Cancelled``; anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import ReadSettings
from engine.corpus import Corpus, Document
from engine.errors import CancelToken, EngineError, NoSuchSession
from engine.ingest import NoticeFn, read_document, read_documents
from engine.lane import ModelLane
from engine.memory import MemoryBook, MemoryLayout, MemoryOptions
from engine.models.bundled import bundled_model_path
from engine.reading.ask import AskResult, Budget, Reader
from engine.reading.deep import DeepResult, DeepThinker
from engine.reading.export import export_markdown
from engine.reading.prompts import Prompt
from engine.reading.stepping import RunProgress, StepFn
from engine.reading.waves import DEFAULT_WAVE_MODE, WaveMode, WaveReader, WaveResult, WavesEstimate
from engine.runs import Run, RunKind, Status
from engine.runtime.backend import Backend, PrefillProgress, RemoteBackend, Tokenizer
from engine.store import Store, open_store
from engine.store.db import SessionRow
from engine.warm import SnapshotCache, WarmStart

if TYPE_CHECKING:
    from engine.planner import CorpusMeasure
    from engine.planning import MeasuredContext, Plan
    from engine.probe import ProbeGrid, ProbeProgress, ProbeReport
    from engine.runtime.backend import KvType
    from engine.store.db import ProbeCell

TextFn = Callable[[str], None]
RunResult = AskResult | DeepResult | WaveResult

DEFAULT_STEP_TOKENS = 256  # the most tokens one deep-thinking step may write
DEFAULT_NOTE_TOKENS = 96  # the most tokens of notes one wave may write


class Library:
    """Documents, sessions and the ways to read them, over one store and one model.

    Args:
        store: an open store, or a path to open (default: the data folder's).
        model_path: the GGUF to read with (default: the bundled model).
        settings: window, KV type, threads, answer budget.
        backend: the runtime (default: llama.cpp in this process).
        snapshots: the KV snapshot cache (default: the data folder's, under the store).
        use_snapshots: False turns KV snapshots off (prefix reuse stays on).
    """

    def __init__(
        self,
        store: Store | Path | None = None,
        *,
        model_path: Path | None = None,
        settings: ReadSettings | None = None,
        backend: Backend | None = None,
        snapshots: SnapshotCache | None = None,
        use_snapshots: bool = True,
    ) -> None:
        self.store = store if isinstance(store, Store) else open_store(store)
        self._owns_store = not isinstance(store, Store)
        self.backend = backend
        self.settings = settings or ReadSettings()
        self._model_path = model_path
        self._use_snapshots = use_snapshots
        self._snapshots = snapshots
        self._lane: ModelLane | None = None
        self._reader: Reader | None = None
        self._memory = MemoryOptions()
        self._server: tuple[str | None, str | None] = (None, None)  # what use_server connected to

    # -- model and settings ----------------------------------------------------

    @property
    def model_path(self) -> Path:
        """The GGUF this library reads with (the bundled one unless chosen)."""
        if isinstance(self.backend, RemoteBackend):
            return self.backend.model_path  # the served model's name (issue 16)
        if self._model_path is None:
            self._model_path = bundled_model_path()
        return self._model_path

    @property
    def lane(self) -> ModelLane:
        """The one model holder every way of reading shares."""
        if self._lane is None:
            self._lane = ModelLane(self.model_path, self.settings, backend=self.backend)
        return self._lane

    @property
    def snapshots(self) -> SnapshotCache:
        """The KV snapshot cache (list, clear, disk budget)."""
        if self._snapshots is None:
            self._snapshots = SnapshotCache(self.store)
        return self._snapshots

    @property
    def reader(self) -> Reader:
        """The ``ask`` reader (kept: it caches the model's hash and its window choice)."""
        if self._reader is None:
            # A server keeps the corpus in its own prompt cache: no local KV snapshots.
            use_snapshots = self._use_snapshots and not isinstance(self.backend, RemoteBackend)
            snapshots = self.snapshots if use_snapshots else None
            self._reader = Reader(
                self.store,
                self.model_path,
                self.settings,
                snapshots=snapshots,
                use_snapshots=use_snapshots,
                lane=self.lane,
            )
            self._reader.memory = self._memory
            if not self._use_snapshots:
                self._reader.server_slots = None  # no slot files on a server either
        return self._reader

    # -- memory (issue 15: engine/memory.py) -----------------------------------

    @property
    def memory(self) -> MemoryBook:
        """The memory entries: list, add, pin, edit, forget (forget removes the snapshots
        that held an entry too)."""
        return MemoryBook(self.store, self.snapshots)

    def use_memory(self, enabled: bool = True, *, pick: Sequence[int] | None = None) -> None:
        """Carry memory into what is read from now on (``enabled=False``: none), and
        optionally exactly the entries ``pick`` (None: those tied to the documents and the
        pinned ones, as many as fit)."""
        self._memory = MemoryOptions(enabled, None if pick is None else tuple(pick))
        if self._reader is not None:
            self._reader.memory = self._memory

    @property
    def memory_options(self) -> MemoryOptions:
        return self._memory

    def memory_for(self, corpus: Corpus) -> MemoryLayout:
        """The memory block a question about ``corpus`` would carry now: what goes in, what
        is left out, the tokens each entry costs."""
        return self.reader.memory_for(corpus)

    def use_model(self, path: Path) -> None:
        """Read with another GGUF from now on (the loaded one is freed)."""
        if self._model_path is not None and Path(path) == self._model_path:
            return
        self.close_model()
        self._model_path = Path(path)

    def use_server(self, url: str | None, *, model: str | None = None, allow_plain_http: bool = False) -> None:
        """Read through the server at ``url`` from now on; None: with the local model again.

        Raises:
            ConfigError, ModelError: the URL is refused or the server cannot be used (the
                message names it); the library keeps reading as before.
        """
        from engine.server_config import connect_server

        if (url or None, model) == self._server:
            return  # the same server and model (or still none): keep what is loaded
        backend = connect_server(url, model=model, allow_plain_http=allow_plain_http) if url else None
        self.close_model()
        self.backend = backend
        self._server = (url or None, model)

    def use_settings(self, settings: ReadSettings) -> None:
        """Read with other settings from now on (the model reloads when it must)."""
        if settings == self.settings:
            return
        self.close_model()
        self.settings = settings

    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer: the loaded model, else its vocabulary alone (fast)."""
        return self.lane.tokenizer()

    def close_model(self) -> None:
        """Free the loaded model (before exit: a model left to the GC can fail at shutdown)."""
        if self._lane is not None:
            self._lane.close()
        self._lane = None
        self._reader = None

    def close(self) -> None:
        """Free the model and close the store (if this library opened it)."""
        self.close_model()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- documents -------------------------------------------------------------

    def add_documents(
        self,
        paths: Iterable[Path],
        *,
        password: str | None = None,
        on_file: Callable[[int, int, Path], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_notice: NoticeFn | None = None,
    ) -> tuple[list[Document], list[tuple[Path, str]]]:
        """Read files and folders into stored documents (a stored one is never read again).

        Returns:
            the documents in order, and the files skipped with the reason.

        Raises:
            IngestError: the first file that cannot be read, naming it.
        """
        return read_documents(
            paths, store=self.store, password=password, on_file=on_file, on_progress=on_progress, on_notice=on_notice
        )

    def add_document(
        self,
        path: Path,
        *,
        password: str | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_notice: NoticeFn | None = None,
    ) -> tuple[Document, bool]:
        """Read one file into a stored document; return it and whether it was read now.

        Raises:
            IngestError: the file cannot be read.
        """
        return read_document(path, store=self.store, password=password, on_progress=on_progress, on_notice=on_notice)

    # -- sessions and runs -----------------------------------------------------

    def sessions(self, search: str = "") -> list[SessionRow]:
        """Sessions not in the trash, most recently used first; ``search`` matches titles,
        questions and answers (every word, as a prefix)."""
        return self.store.search_sessions(search) if search.strip() else self.store.list_sessions()

    def session(self, session_id: int) -> SessionRow:
        """The session ``session_id``.

        Raises:
            EngineError: there is no such session.
        """
        session = self.store.get_session(session_id)
        if session is None:
            raise NoSuchSession(session_id)
        return session

    def session_corpus(self, session_id: int) -> Corpus | None:
        """The documents a session reads, in order (None: it has none, or they are gone)."""
        session = self.session(session_id)
        return self.store.get_corpus(session.corpus_id) if session.corpus_id else None

    def count_questions(self, session_id: int) -> int:
        """How many questions (runs of every kind) a session holds."""
        return self.store.count_questions(session_id)

    def runs(self, session_id: int) -> list[Run]:
        """A session's runs (asks, deep runs, reads in waves) in the order they were asked."""
        return self.store.list_runs(session_id)

    def get_run(self, run_id: int) -> Run | None:
        return self.store.get_run(run_id)

    def run_to_resume(self, session_id: int, kind: RunKind | None = None) -> Run:
        """A session's latest run not done (of ``kind``, if given), else its latest run.

        Raises:
            EngineError: the session has no such run.
        """
        runs = [r for r in self.runs(self.session(session_id).id) if kind is None or r.kind is kind]
        if not runs:
            what = kind.what if kind is not None else "question"
            raise EngineError(f"Session {session_id} has no {what} to resume.")
        return next((r for r in reversed(runs) if r.status is not Status.DONE), runs[-1])

    def rename_session(self, session_id: int, title: str) -> None:
        self.store.rename_session(session_id, title)

    def trash_session(self, session_id: int) -> None:
        """Hide a session; ``restore_session`` undoes it until it is purged."""
        self.store.trash_session(session_id)

    def restore_session(self, session_id: int) -> None:
        self.store.restore_session(session_id)

    def purge_session(self, session_id: int) -> None:
        """Delete a trashed session for good. One restored since it was trashed (an undo
        that came first), or gone already, is left as it is."""
        session = self.store.get_session(session_id)
        if session is not None and session.deleted_at is not None:
            self.store.delete_session(session_id)

    def export_markdown(self, session_id: int) -> str:
        """A session as Markdown: every run, its steps and checked citations."""
        return export_markdown(self.store, session_id)

    # -- planning --------------------------------------------------------------

    def prepare_ask(self, corpus: Corpus, question: str) -> tuple[Prompt, Budget]:
        """Tokenize and check that a question about ``corpus`` fits, before anything runs.

        Raises:
            ContextOverflowError: it does not fit (the message names the ways out).
        """
        return self.reader.prepare(corpus, question)

    def plan(
        self,
        corpus: Corpus,
        *,
        n_ctx: int = 0,
        rope_scaling: str | None = None,
        answer_tokens: int | None = None,
        calibrate_missing: bool = False,
        on_calibrate: Callable[[str], None] | None = None,
    ) -> Plan:
        """What reading ``corpus`` will cost on this machine, per KV cache type (the
        planner's plan: ``longread plan`` and the window's gauge show the same one)."""
        from engine.planner import plan_corpus

        return plan_corpus(
            corpus,
            self.model_path,
            store=self.store,
            n_ctx=n_ctx,
            n_threads=self.settings.n_threads,
            rope_scaling=rope_scaling,
            answer_tokens=answer_tokens if answer_tokens is not None else self.settings.max_answer_tokens,
            calibrate_missing=calibrate_missing,
            on_calibrate=on_calibrate,
        )

    def estimate_waves(self, corpus: Corpus, *, corpus_tokens: int) -> WavesEstimate | None:
        """What reading ``corpus`` in waves costs here: the first question, each next one
        (its waves' page blocks restored) and the snapshots' disk (issue 13 item 3); None
        when the window cannot hold a page and the notes."""
        return self.reader.estimate_waves(corpus_tokens, n_pages=corpus.n_pages)

    def measure(self, corpus: Corpus) -> CorpusMeasure:
        """Count ``corpus`` with the model and plan a question about it on this machine:
        what the window's gauge shows (the planner's own plan, as ``longread plan``)."""
        from engine.planner import measure_corpus

        reader = self.reader
        measure = measure_corpus(
            reader.lane,
            corpus,
            store=self.store,
            settings=reader.settings,
            model_sha256=reader.model_sha,
            memory=reader.memory_for(corpus),
        )
        if measure.plan.fits_window:
            return measure
        return replace(measure, waves=self.estimate_waves(corpus, corpus_tokens=measure.plan.corpus_tokens))

    # -- effective context (issue 14) -----------------------------------------

    def probe(
        self,
        *,
        kv_types: Sequence[str] = ("f16",),
        quick: bool = False,
        grid: ProbeGrid | None = None,
        n_ctx: int = 0,
        on_progress: Callable[[ProbeProgress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> ProbeReport:
        """Measure what this model reads reliably (engine/probe.py): run the probe grid for
        each KV type, store each cell, skip those stored before (so a cancelled probe resumes).

        Raises:
            Cancelled: cancelled (the cells finished stay stored).
            PlanRefused, ModelError, GenerationError: the model could not be loaded or run.
        """
        from engine.probe import run_probe

        return run_probe(
            self.lane,
            self.store,
            model_sha256=self.lane.model_sha,
            kv_types=kv_types,
            grid=grid,
            n_ctx=n_ctx or self.settings.n_ctx,
            quick=quick,
            on_progress=on_progress,
            cancel=cancel,
        )

    def effective_context(self) -> dict[KvType, MeasuredContext]:
        """The model's measured effective context per KV type (empty: never probed)."""
        from engine.probe import stored_effective_context

        return stored_effective_context(self.store, self.lane.model_sha)

    def probe_cells(self) -> list[ProbeCell]:
        """The model's stored probe cells (the current suite), for tables and heatmaps."""
        from engine.probe import suite_key

        return self.store.get_probe_cells(self.lane.model_sha, suite=suite_key())

    def draw_probe(self, path: Path | None = None) -> Path | None:
        """Draw the model's probe heatmap as PNG at ``path`` (default: ``probes/`` in the
        data folder, named after the model file and its hash); None: never probed."""
        from engine.config import data_dir
        from engine.probe_plot import draw_heatmap

        cells = self.probe_cells()
        if not cells:
            return None
        if path is None:
            path = data_dir() / "probes" / f"{self.model_path.stem}-{self.lane.model_sha[:12]}.png"
        return draw_heatmap(cells, path, title=self.model_path.name)

    # -- reading ---------------------------------------------------------------

    def ask(
        self,
        corpus: Corpus,
        question: str,
        *,
        session_id: int | None = None,
        on_progress: Callable[[PrefillProgress], None] | None = None,
        on_text: TextFn | None = None,
        cancel: CancelToken | None = None,
        fresh: bool = False,
    ) -> AskResult:
        """Answer ``question`` from the whole corpus (an ``ask`` run of one step);
        ``fresh``: read the documents as a cold read does, never assembled (``Reader.ask``).

        Raises:
            ContextOverflowError: it does not fit (nothing is stored).
            Cancelled: cancelled (the run is kept, marked cancelled).
        """
        return self.reader.ask(
            corpus,
            question,
            session_id=session_id,
            on_progress=on_progress,
            on_text=on_text,
            cancel=cancel,
            fresh=fresh,
        )

    def warm(self, corpus: Corpus, *, cancel: CancelToken | None = None) -> WarmStart:
        """Load the corpus and its memory block before the first question (restored from
        their snapshots, or read and saved as them), so that the question reads only itself.

        Raises:
            ContextOverflowError: the corpus does not fit.
        """
        return self.reader.warm(corpus, cancel=cancel)

    def start_thinking(
        self, corpus: Corpus, question: str, *, session_id: int | None = None, step_tokens: int = DEFAULT_STEP_TOKENS
    ) -> int:
        """Store a deep-thinking run (five pending steps); return its id.

        Raises:
            ContextOverflowError: the corpus and the steps do not fit the window.
        """
        return self._thinker(step_tokens).start(corpus, question, session_id=session_id)

    def start_waves(
        self,
        corpus: Corpus,
        question: str,
        *,
        session_id: int | None = None,
        note_tokens: int = DEFAULT_NOTE_TOKENS,
        mode: WaveMode | str = DEFAULT_WAVE_MODE,
    ) -> int:
        """Plan a read in waves and store it (one pending step per wave, and the answer).
        ``mode``: carry notes from wave to wave, or map (none carried, then a reduce pass).

        Raises:
            ContextOverflowError: the window cannot hold a page plus the notes.
        """
        return self._waves(note_tokens, mode).start(corpus, question, session_id=session_id)

    def describe_waves(self, run_id: int) -> str:
        """How long the waves of a stored read are, and why (``WaveReader.describe_span``)."""
        run = self.store.get_run(run_id)
        if run is None:
            raise EngineError(f"There is no run {run_id}.")
        notes = int(run.settings.get("max_note_tokens", DEFAULT_NOTE_TOKENS))
        n_waves = len(run.steps) - 1
        return f"{n_waves} wave{'s' if n_waves != 1 else ''}. " + self._waves(notes).describe_span(
            int(run.settings["n_ctx"])
        )

    def think(
        self,
        corpus: Corpus,
        question: str,
        *,
        session_id: int | None = None,
        step_tokens: int = DEFAULT_STEP_TOKENS,
        on_progress: Callable[[RunProgress], None] | None = None,
        on_text: TextFn | None = None,
        on_step: StepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> DeepResult:
        """Work ``question`` in five stored steps over the whole corpus."""
        run_id = self.start_thinking(corpus, question, session_id=session_id, step_tokens=step_tokens)
        return self._thinker(step_tokens).run(
            run_id, on_progress=on_progress, on_text=on_text, on_step=on_step, cancel=cancel
        )

    def read_in_waves(
        self,
        corpus: Corpus,
        question: str,
        *,
        session_id: int | None = None,
        note_tokens: int = DEFAULT_NOTE_TOKENS,
        mode: WaveMode | str = DEFAULT_WAVE_MODE,
        on_progress: Callable[[RunProgress], None] | None = None,
        on_text: TextFn | None = None,
        on_step: StepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> WaveResult:
        """Read a corpus larger than the window in waves (carrying notes, or map and
        reduce), then answer."""
        run_id = self.start_waves(corpus, question, session_id=session_id, note_tokens=note_tokens, mode=mode)
        return self._waves(note_tokens).run(
            run_id, on_progress=on_progress, on_text=on_text, on_step=on_step, cancel=cancel
        )

    def resume(
        self,
        run_id: int,
        *,
        on_progress: Callable[[Any], None] | None = None,
        on_text: TextFn | None = None,
        on_step: StepFn | None = None,
        cancel: CancelToken | None = None,
    ) -> RunResult:
        """Run the steps of a stored run that are not done, whatever its kind: the one
        resume path. A done run returns its stored answer without running anything.

        Raises:
            EngineError: no such run, its documents are gone, or another process runs it.
            Cancelled: cancelled again (what was done stays done).
        """
        run = self.store.get_run(run_id)
        if run is None:
            raise EngineError(f"There is no run {run_id}.")
        if run.kind is RunKind.ASK:
            return self.reader.run(run_id, on_progress=on_progress, on_text=on_text, cancel=cancel)
        if run.kind is RunKind.THINK:
            steps = int(run.settings.get("step_tokens", DEFAULT_STEP_TOKENS))
            return self._thinker(steps).run(
                run_id, on_progress=on_progress, on_text=on_text, on_step=on_step, cancel=cancel
            )
        notes = int(run.settings.get("max_note_tokens", DEFAULT_NOTE_TOKENS))
        return self._waves(notes).run(run_id, on_progress=on_progress, on_text=on_text, on_step=on_step, cancel=cancel)

    def _thinker(self, step_tokens: int) -> DeepThinker:
        # Deep thinking reads on the full window unless one is set (engine/reading/deep.py).
        thinker = DeepThinker(self.store, self.model_path, self.settings, step_tokens=step_tokens, lane=self.lane)
        thinker.memory = self._memory
        return thinker

    def _waves(self, note_tokens: int, mode: WaveMode | str = DEFAULT_WAVE_MODE) -> WaveReader:
        # Each wave's page block (issue 13); a server keeps its own caches (issue 16).
        use = self._use_snapshots and not isinstance(self.backend, RemoteBackend)
        snapshots = self.snapshots if use else None
        waves = WaveReader(
            self.store,
            self.model_path,
            self.settings,
            max_note_tokens=note_tokens,
            mode=mode,
            snapshots=snapshots,
            use_snapshots=snapshots is not None,
            lane=self.lane,
        )
        waves.memory = self._memory
        return waves


def describe_documents(docs: Sequence[Document]) -> str:
    """``3 documents, 41 pages``."""
    pages = sum(d.n_pages for d in docs)
    return f"{len(docs)} document{'s' if len(docs) != 1 else ''}, {pages} page{'s' if pages != 1 else ''}"
