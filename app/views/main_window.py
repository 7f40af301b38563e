"""The main window: sessions | documents, model and gauge | timeline, questions and answers.

The window is layout and wiring. What it does with documents, sessions, models and
reading goes through the engine's one front door, ``engine.library.Library``, from three
kinds of background work (``app.tasks``): the model lane (counting tokens, asking,
thinking deeply, reading in waves, resuming), the disk lane (sessions, search, rename,
trash, purge, export; finding and checking model files) and the ingest pool (reading
documents, several at a time). A ``Library`` is one thread's: each lane opens its own
with ``library_factory()`` on its own thread, and each ingest job too. The main thread
only queues work and draws results: it never waits on the model, the disk or a PDF.
Dropped files and folders become documents (a dropped ``.gguf`` becomes the model);
Ctrl+O opens a file dialog.

Every question is a run (engine/runs.py) of the kind the conversation's mode says; its
text streams into the conversation (or into the running step's row of the timeline), its
steps into the timeline. A reopened session shows its runs as turns and its latest
deep-thinking run or read in waves as a timeline, with Resume (``Library.resume``) when
that run did not finish.

Collaborators are passed in (``library_factory``, the bundled model, ``AppSettings``, a
model-discovery function, the data folder): the composition root (``app.main``) builds
the real ones; tests pass a factory with a temporary store and a fake backend or the
real SmolLM2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.i18n import describe_progress
from app.intake import Dropped, collect_documents, split_models
from app.model_files import Discover, check_model, list_models
from app.resources import resource_path, sample_document
from app.settings import AppSettings
from app.tasks import IngestPool, Job, Lane
from app.views.budget_gauge import BudgetGauge
from app.views.conversation import ConversationView, TurnView, describe_ask
from app.views.corpus_panel import CorpusPanel
from app.views.get_models import GetModelsDialog
from app.views.memory_panel import MemoryPanel
from app.views.model_details import ModelDetails, ModelDetailsDialog, load_model_details
from app.views.model_picker import ModelEntry, ModelPicker
from app.views.page_viewer import PageViewer
from app.views.password_prompt import PasswordPrompt
from app.views.probe_panel import ProbePanel, ProbeRunner
from app.views.sessions_sidebar import SessionsSidebar
from app.views.settings_dialog import SettingsDialog
from app.views.timeline import TimelineView
from engine.config import db_path
from engine.corpus import Corpus
from engine.errors import ContextOverflowError, EngineError, StorageError
from engine.ingest import SUPPORTED_SUFFIXES
from engine.library import DEFAULT_NOTE_TOKENS, DEFAULT_STEP_TOKENS, Library, RunResult
from engine.models.discover import discover_models
from engine.models.hub import Hub, models_dir
from engine.planner import CorpusMeasure
from engine.reading.ask import AskResult
from engine.reading.citations import Citation
from engine.runs import Run, RunKind, Status, Step

log = logging.getLogger("longread.app")

MEASURE_DELAY_MS = 150
# Starts a run on the model lane's library with the lane's callbacks (``Library.ask``,
# ``think``, ``read_in_waves`` or ``resume``) and returns its result.
RunStart = Callable[[Library, dict[str, Any]], RunResult]


class MainWindow(QMainWindow):
    """Longread's window.

    Signals:
        measured(object): the gauge got new numbers (an ``engine.planner.CorpusMeasure``).
        answered(object): a run finished (an ``AskResult``, ``DeepResult`` or ``WaveResult``).
        ask_cancelled(): the engine confirmed that a cancelled run stopped.
        sessions_listed(list): the sidebar was refreshed (session ids, in order).
        session_restored(int): a session was reopened and shown.
        model_changed(object): the library now reads with this model ``Path``.
        model_failed(str): a chosen model file cannot be used (the message says why).
        exported(object): the session was written as Markdown to this ``Path``.
    """

    measured = Signal(object)
    answered = Signal(object)
    ask_cancelled = Signal()
    sessions_listed = Signal(list)
    session_restored = Signal(int)
    model_changed = Signal(object)
    model_failed = Signal(str)
    exported = Signal(object)

    def __init__(
        self,
        *,
        library_factory: Callable[[], Library],
        bundled_model: Path,
        settings: AppSettings,
        data_folder: Path,
        discover: Discover = discover_models,
    ) -> None:
        super().__init__()
        self.bundled_model = bundled_model
        self.settings = settings
        self.data_folder = data_folder
        self._discover = discover
        self.hub_endpoint: str | None = None  # None: HF_ENDPOINT or huggingface.co (tests set a local Hub)
        self.model_path = Path(settings.model_path) if settings.model_path else bundled_model
        if not self.model_path.is_file():
            self.model_path = bundled_model
        self.session_id: int | None = None
        self._restoring = False
        self._run_job: Job | None = None
        self._run_kind = RunKind.ASK
        self._measure_job: Job | None = None
        self._resumable: Run | None = None  # a reopened deep-thinking run or read in waves that did not finish
        self._closed = False
        self.model_problem = ""
        # Output budgets of Think deeply (per step) and Read in waves (per wave's notes).
        self.step_tokens = DEFAULT_STEP_TOKENS
        self.note_tokens = DEFAULT_NOTE_TOKENS

        self.setWindowTitle("Longread")
        self.setWindowIcon(QIcon(str(resource_path("icons/longread.svg"))))
        self.resize(1400, 900)
        self.setAcceptDrops(True)

        # Open (and migrate) the store once before the lanes and the pool each open their
        # own library: migrations racing on a fresh file fail with "busy" in WAL mode (a
        # deferred transaction cannot upgrade after another connection wrote). This runs
        # before the window is shown; afterwards the main thread never touches disk. The
        # factory's settings are the base the app's own (window, KV type, threads) go on.
        with library_factory() as first:
            self._read_base = first.settings
        model_path, read_settings = self.model_path, settings.read_settings(self._read_base)

        server = (settings.server_url, settings.server_model)

        def open_model_library() -> Library:
            library = library_factory()
            library.use_model(model_path)
            library.use_settings(read_settings)
            if server[0]:  # a server to read through (issue 16): connected on this lane's thread
                try:
                    library.use_server(server[0], model=server[1] or None)
                except BaseException:
                    library.close()
                    raise
            return library

        self.model_lane = Lane("model lane", open_model_library, close_context=Library.close, parent=self)
        self.disk_lane = Lane("disk lane", library_factory, close_context=Library.close, parent=self)
        self.ingest = IngestPool(library_factory, parent=self)
        self.model_lane.busy_changed.connect(self._on_model_lane_busy_changed)

        self._build()
        self.probe = ProbeRunner(
            self.probe_panel,
            model_lane=self.model_lane,
            disk_lane=self.disk_lane,
            model_path=lambda: self.model_path,
            kv_type=lambda: self.settings.kv_type.value,
            parent=self,
        )
        self.probe.results_changed.connect(self.schedule_measure)  # the gauge's "reliably reads"
        self._measure_timer = QTimer(self)
        self._measure_timer.setSingleShot(True)
        self._measure_timer.setInterval(MEASURE_DELAY_MS)
        self._measure_timer.timeout.connect(self._measure)
        self.refresh_sessions()
        self._load_models()
        self.probe.refresh()

    # -- layout -------------------------------------------------------------------

    def _build(self) -> None:
        self.sidebar = SessionsSidebar()
        self.corpus_panel = CorpusPanel()
        self.picker = ModelPicker()
        self.probe_panel = ProbePanel()
        self.gauge = BudgetGauge()
        self.gauge.set_kv_type(self.settings.kv_type)
        self.conversation = ConversationView()
        self.passwords = PasswordPrompt(self.corpus_panel, self)
        for target in (self.conversation.question, self.conversation.transcript, self.corpus_panel.tree):
            target.setAcceptDrops(False)  # drops land on the window: files become documents

        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(8, 8, 8, 8)
        middle_layout.addWidget(self.corpus_panel, 3)
        middle_layout.addWidget(self.picker)
        middle_layout.addWidget(self.probe_panel)
        middle_layout.addWidget(self.gauge, 0)
        self.memory_panel = MemoryPanel()  # issue 15
        middle_layout.addWidget(self.memory_panel, 2)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(8, 8, 8, 8)
        left_layout.addWidget(self.sidebar)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 8, 8, 8)
        self.timeline = TimelineView()
        right_layout.addWidget(self.timeline, 1)
        right_layout.addWidget(self.conversation, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget in (left, middle, right):
            self.splitter.addWidget(widget)
        self.splitter.setSizes([250, 560, 590])
        self.splitter.setStretchFactor(2, 1)
        self.setCentralWidget(self.splitter)
        self.lane_label = QLabel(self.tr("Ready"))
        self.statusBar().addPermanentWidget(self.lane_label)

        file_menu = self.menuBar().addMenu(self.tr("&File"))
        self._action(file_menu, self.tr("&Open documents…"), QKeySequence.StandardKey.Open, self.open_file_dialog)
        self._action(file_menu, self.tr("Choose a &model file…"), None, self.open_model_dialog)
        self._action(file_menu, self.tr("&Get models…"), None, self.open_get_models)
        self._action(file_menu, self.tr("Model &details…"), None, self.show_model_details)
        self._action(file_menu, self.tr("&New session"), QKeySequence.StandardKey.New, self.new_session)
        self._action(file_menu, self.tr("&Export session as Markdown…"), None, self.export_session)
        file_menu.addSeparator()
        self._action(file_menu, self.tr("&Settings…"), QKeySequence("Ctrl+,"), self.open_settings)
        file_menu.addSeparator()
        self._action(file_menu, self.tr("&Quit"), QKeySequence.StandardKey.Quit, self.close)
        help_menu = self.menuBar().addMenu(self.tr("&Help"))
        self._action(help_menu, self.tr("&Keyboard and mouse"), None, self._show_shortcuts)

        self.ingest.document_read.connect(lambda row_id, doc, _fresh: self.corpus_panel.set_read(row_id, doc))
        self.ingest.document_failed.connect(self.corpus_panel.set_failed)
        self.ingest.document_progressed.connect(self.corpus_panel.set_progress)
        self.ingest.password_needed.connect(self._on_ingest_password_needed)
        self.corpus_panel.corpus_changed.connect(self._on_corpus_panel_corpus_changed)
        self.corpus_panel.open_requested.connect(self.open_file_dialog)
        self.corpus_panel.sample_requested.connect(lambda: self.add_paths([sample_document()]))
        self.corpus_panel.unlock_requested.connect(self.passwords.request)
        self.passwords.password_given.connect(self._on_passwords_password_given)
        self.passwords.declined.connect(self._on_passwords_declined)
        self.conversation.ask_requested.connect(self.ask)
        self.conversation.fresh_requested.connect(lambda question: self.ask(question, fresh=True))
        self.conversation.waves_requested.connect(self.ask)  # the mode is set to waves first
        self.conversation.cancel_requested.connect(self.cancel_ask)
        self.conversation.citation_activated.connect(self.open_citation)
        self.timeline.resume_requested.connect(self.resume_steps)
        self.sidebar.search_changed.connect(lambda _text: self.refresh_sessions())
        self.sidebar.session_opened.connect(self.open_session)
        self.sidebar.rename_requested.connect(self._on_sidebar_rename_requested)
        self.sidebar.delete_requested.connect(self._on_sidebar_delete_requested)
        self.sidebar.undo_requested.connect(self._on_sidebar_undo_requested)
        self.sidebar.purge_due.connect(self._on_sidebar_purge_due)
        self.sidebar.new_requested.connect(self.new_session)
        self.picker.model_chosen.connect(self.use_model)
        self.picker.browse_requested.connect(self.open_model_dialog)
        self.picker.get_requested.connect(self.open_get_models)
        self.picker.details_requested.connect(self.show_model_details)
        self.probe_panel.details_requested.connect(self.show_model_details)
        self.gauge.kv_type_chosen.connect(self._on_gauge_kv_type_chosen)
        self.gauge.window_requested.connect(self._on_gauge_window_requested)
        self.gauge.remove_requested.connect(self._on_gauge_remove_requested)
        self.gauge.model_requested.connect(lambda: self.picker.combo.showPopup())
        memory = self.memory_panel
        memory.enabled_changed.connect(lambda on: self._change_memory(lambda lib: lib.use_memory(on)))
        memory.pick_changed.connect(
            lambda ids: self._change_memory(lambda lib: lib.use_memory(lib.memory_options.enabled, pick=ids))
        )
        memory.pin_requested.connect(lambda i, on: self._change_memory(lambda lib: lib.memory.pin(i, on)))
        memory.edit_requested.connect(lambda i, text: self._change_memory(lambda lib: lib.memory.edit(i, text)))
        memory.forget_requested.connect(lambda i: self._change_memory(lambda lib: lib.memory.forget(i)))

    def _action(self, menu: Any, text: str, keys: Any, slot: Callable[[], Any]) -> QAction:
        action = QAction(text, self)
        if keys is not None:
            action.setShortcut(keys)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    # -- documents ----------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
            self.statusBar().showMessage(self.tr("Drop to add these documents"), 2000)
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)

    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES))
        files, _ = QFileDialog.getOpenFileNames(
            self,
            self.tr("Open documents"),
            "",
            self.tr("Documents ({patterns});;Models (*.gguf);;All files (*)").format(patterns=patterns),
        )
        self.add_paths([Path(f) for f in files])

    def add_paths(self, paths: Sequence[Path]) -> None:
        """Add files and folders: documents are read in the pool, a ``.gguf`` becomes the model."""
        models, documents = split_models(paths)
        for model in models:
            self.use_model(model, added=True)
        if documents:
            self.disk_lane.submit(
                lambda _library, _job: collect_documents(documents), name="collect", on_done=self._read_dropped
            )

    def _read_dropped(self, dropped: list[Dropped]) -> None:
        """A row per document file (read in the pool), a failed row per path that has none."""
        for path in dropped:
            if path.error:
                self.corpus_panel.add_failed(path.path, path.error)
            for file in path.files:
                self.ingest.read(self.corpus_panel.add_pending(file), file)
        skipped = sum(path.skipped for path in dropped)
        if skipped:
            self.statusBar().showMessage(
                self.tr("Skipped {skipped} files in those folders that are not documents Longread reads.").format(
                    skipped=skipped
                ),
                8000,
            )

    def _on_ingest_password_needed(self, row_id: int, message: str) -> None:
        self.corpus_panel.set_locked(row_id, message)
        self.passwords.request(row_id)

    def _on_passwords_password_given(self, row_id: int, path: Path, password: str) -> None:
        self.corpus_panel.set_reading(row_id)
        self.ingest.read(row_id, path, password=password)

    def _on_passwords_declined(self, name: str) -> None:
        self.statusBar().showMessage(
            self.tr("{name} was not read: double-click it in the list to enter its password.").format(name=name), 8000
        )

    @property
    def password_dialog(self) -> QInputDialog | None:
        """The open password dialog of a locked PDF, if one is open."""
        return self.passwords.dialog

    def _on_corpus_panel_corpus_changed(self) -> None:
        corpus = self.corpus_panel.corpus()
        self.conversation.set_corpus(corpus)
        if not self._restoring and self.session_id is not None:
            self.session_id = None
            self.conversation.set_turns([])
            self.conversation.status.setText(
                self.tr(
                    "The documents changed: the next question starts a new session (the last one is in the sidebar)."
                )
            )
        self.schedule_measure()

    # -- measuring ----------------------------------------------------------------

    def schedule_measure(self) -> None:
        self._measure_timer.start()

    def _measure(self) -> None:
        corpus = self.corpus_panel.corpus()
        if self._measure_job is not None:
            self._measure_job.cancel()
            self._measure_job = None
        if not corpus.documents:
            self.gauge.show_measure(None)
            return
        self.gauge.show_busy(self.tr("Counting tokens with {model}…").format(model=self.model_path.name))
        fingerprint = corpus.fingerprint

        def run(library: Library, job: Job) -> CorpusMeasure:
            return library.measure(corpus)

        def on_done(measure: CorpusMeasure) -> None:
            self._measure_job = None
            if self.corpus_panel.corpus().fingerprint != fingerprint:
                return
            self.corpus_panel.set_tokens(corpus, measure.doc_tokens)
            self.gauge.show_measure(measure)
            self.memory_panel.show_memory(measure.memory)
            self.measured.emit(measure)

        def on_error(exc: EngineError) -> None:
            self._measure_job = None
            self.gauge.show_error(exc.message)

        self._measure_job = self.model_lane.submit(run, name="measure", on_done=on_done, on_error=on_error)

    def _change_memory(self, change: Callable[[Library], object]) -> None:
        """Run a memory change (engine/memory.py) on the model lane, whose library reads
        and measures, then measure again: the gauge and the panel show the new block."""

        def on_error(exc: EngineError) -> None:
            self.statusBar().showMessage(exc.message, 8000)

        self.model_lane.submit(
            lambda library, job: change(library),
            name="memory",
            on_done=lambda _r: self.schedule_measure(),
            on_error=on_error,
        )

    # -- asking -------------------------------------------------------------------

    @property
    def asking(self) -> bool:
        return self._run_job is not None

    def ask(self, question: str, *, fresh: bool = False) -> None:
        """Ask ``question`` about the documents, the way the conversation's mode says;
        ``fresh``: a plain question whose documents are read as a cold read does, never
        assembled from their snapshots (the link under an assembled answer)."""
        corpus = self.corpus_panel.corpus()
        if self.asking:
            return
        if not corpus.documents:
            self.conversation.status.setText(self.tr("Add documents first: drop them on the window or press Ctrl+O."))
            return
        if self.probe.running:
            self.conversation.status.setText(
                self.tr("The model is being measured: cancel that (the cells done are kept) to ask now.")
            )
            return
        if self.corpus_panel.reading:
            self.conversation.status.setText(
                self.tr("Some documents are still being read; ask again when they are ready.")
            )
            return
        self._resumable = None
        self.timeline.hide_resume()
        kind, session_id = (RunKind.ASK if fresh else self.conversation.mode), self.session_id
        step_tokens, note_tokens, wave_mode = self.step_tokens, self.note_tokens, self.settings.wave_mode

        def start(library: Library, events: dict[str, Any]) -> RunResult:
            if kind is RunKind.THINK:
                return library.think(corpus, question, session_id=session_id, step_tokens=step_tokens, **events)
            if kind is RunKind.WAVES:
                return library.read_in_waves(
                    corpus, question, session_id=session_id, note_tokens=note_tokens, mode=wave_mode, **events
                )
            return library.ask(corpus, question, session_id=session_id, fresh=fresh, **events)

        self._run(kind, question, start)

    def resume_steps(self) -> None:
        """Go on with the reopened run that did not finish: its done steps are kept as
        stored, the rest run now (``Library.resume``)."""
        run = self._resumable
        if self.asking or run is None:
            return
        if self.probe.running:
            self.conversation.status.setText(
                self.tr("The model is being measured: cancel that (the cells done are kept) to go on now.")
            )
            return
        if not self.corpus_panel.corpus().documents:
            self.conversation.status.setText(self.tr("This session's documents are gone; it cannot be resumed."))
            return
        self._resumable = None
        turns = self.conversation.turns
        if turns and turns[-1].question == run.question and turns[-1].status != Status.DONE:
            self.conversation.set_turns(turns[:-1])  # the stopped run's turn: the resumed run takes its place
        self._run(run.kind, run.question, lambda library, events: library.resume(run.id, **events), steps=run.steps)

    def cancel_ask(self) -> None:
        """Stop the run now: the UI is idle at once, the engine stops within a batch."""
        job = self._run_job
        if job is None:
            return
        job.cancel()
        self._run_job = None
        if self._run_kind is not RunKind.ASK:
            self.timeline.mark_stopped()
        self.conversation.finish_turn(status=Status.CANCELLED)

    def _run(self, kind: RunKind, question: str, start: RunStart, *, steps: Iterable[Step] = ()) -> None:
        """Run a question on the model lane: the text streams into the conversation (or
        the running step's row), progress goes to the status line, steps to the timeline."""
        self.conversation.question.clear()
        self.conversation.start_turn(question)
        if kind is not RunKind.ASK:
            self.timeline.start(kind, steps)
        self._run_kind = kind
        handlers: dict[str, Callable[[Any], None]] = {
            "text": self._show_run_text,
            "prefill": self.conversation.show_progress,  # an ask: reading the documents
            "progress": lambda p: self.conversation.show_run_progress(describe_progress(p)),  # a run of steps
            "step": self.timeline.show_step,
        }

        def run(library: Library, job: Job) -> RunResult:
            def report(tag: str) -> Callable[[Any], None]:
                return lambda value: job.report((tag, value))

            events: dict[str, Any] = {"on_text": report("text"), "cancel": job.token}
            events["on_progress"] = report("prefill" if kind is RunKind.ASK else "progress")
            if kind is not RunKind.ASK:
                events["on_step"] = report("step")
            return start(library, events)

        def on_done(result: RunResult) -> None:
            self._run_job = None
            self.session_id = result.session_id
            self.sidebar.current_id = result.session_id
            note = describe_ask(cast(AskResult, result)) if kind is RunKind.ASK else ""
            warm = cast(AskResult, result).warm if kind is RunKind.ASK else None
            assembled = warm is not None and warm.assembled
            self.conversation.finish_turn(status=Status.DONE, answer=result.answer, note=note, assembled=assembled)
            self.refresh_sessions()
            self.schedule_measure()  # the answer is now a memory entry: the gauge and panel show it
            self.answered.emit(result)

        def on_error(exc: EngineError) -> None:
            self._run_job = None
            if kind is not RunKind.ASK:
                self.timeline.mark_stopped()
            self.conversation.finish_turn(status=Status.FAILED, error=exc.message)
            if kind is RunKind.ASK and isinstance(exc, ContextOverflowError) and exc.waves_eta:
                self.conversation.offer_waves(question, exc.waves_eta)  # issue 13 item 6
            self.refresh_sessions()

        def on_cancelled() -> None:
            if kind is RunKind.ASK:
                stopped = self.tr("Stopped. The partial answer is kept in the session.")
            else:
                stopped = self.tr("Stopped. The steps so far are kept in the session.")
            self.statusBar().showMessage(stopped, 5000)
            self.refresh_sessions()
            self.ask_cancelled.emit()

        self._run_job = self.model_lane.submit(
            run,
            name=kind.value,
            on_done=on_done,
            on_progress=lambda event: handlers[event[0]](event[1]),
            on_error=on_error,
            on_cancelled=on_cancelled,
        )

    def _show_run_text(self, piece: str) -> None:
        # A step's text streams into its timeline row; an answer into the conversation.
        if self._run_kind is RunKind.ASK or not self.timeline.append_text(piece):
            self.conversation.append_text(piece)

    def export_session(self, path: Path | None = None) -> None:
        """Write the current session as Markdown (asks where when ``path`` is None)."""
        session_id = self.session_id
        if session_id is None:
            self.statusBar().showMessage(self.tr("Ask something first: there is no session to export yet."), 5000)
            return
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(
                self, self.tr("Export session as Markdown"), "session.md", self.tr("Markdown (*.md)")
            )
            if not chosen:
                return
            path = Path(chosen)
        target = path
        cant_write = self.tr("Could not write {name}: {reason}.")

        def run(library: Library, job: Job) -> Path:
            text = library.export_markdown(session_id)
            try:
                target.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise EngineError(cant_write.format(name=target.name, reason=exc.strerror)) from exc
            return target

        def on_done(written: Path) -> None:
            self.statusBar().showMessage(self.tr("Exported to {path}").format(path=written), 5000)
            self.exported.emit(written)

        self.disk_lane.submit(
            run, name="export", on_done=on_done, on_error=lambda exc: self.statusBar().showMessage(exc.message, 8000)
        )

    # -- citations ----------------------------------------------------------------

    def open_citation(self, citation: Citation) -> PageViewer | None:
        doc = self.conversation.corpus.find(citation.document)
        if doc is None:
            return None
        viewer = PageViewer(doc, citation.page, quote=citation.quote, parent=self)
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        viewer.show()
        self.page_viewer = viewer
        return viewer

    # -- sessions -----------------------------------------------------------------

    def refresh_sessions(self) -> None:
        text = self.sidebar.search.text()

        def run(library: Library, job: Job) -> list[tuple[Any, int]]:
            return [(s, library.count_questions(s.id)) for s in library.sessions(text)]

        def on_done(rows: list[tuple[Any, int]]) -> None:
            self.sidebar.show_sessions(rows)
            self.sessions_listed.emit([s.id for s, _ in rows])

        self.disk_lane.submit(run, name="sessions", on_done=on_done)

    def open_session(self, session_id: int) -> None:
        """Show a stored session: its documents and runs exactly as they were."""
        if self.asking:
            self.statusBar().showMessage(
                self.tr("Wait for the answer (or press Esc) before opening another session."), 5000
            )
            return

        gone = self.tr("That session no longer exists.")

        def run(library: Library, job: Job) -> tuple[Corpus, list[Run]]:
            try:
                corpus = library.session_corpus(session_id)
            except StorageError:
                raise
            except EngineError as exc:  # purged meanwhile (by another window or process)
                raise EngineError(gone) from exc
            return corpus or Corpus(), library.runs(session_id)

        def on_done(result: tuple[Corpus, list[Run]]) -> None:
            corpus, runs = result
            self._restoring = True
            try:
                self.session_id = session_id
                self.sidebar.current_id = session_id
                self.corpus_panel.set_documents(corpus.documents)
                self.conversation.set_corpus(corpus)
                self.conversation.set_turns([TurnView.from_run(r) for r in runs])  # in the order asked
                self.conversation.status.setText("")
                self._show_steps(next((r for r in reversed(runs) if r.kind is not RunKind.ASK), None))
            finally:
                self._restoring = False
            self.session_restored.emit(session_id)

        def on_error(exc: EngineError) -> None:
            self.statusBar().showMessage(exc.message, 8000)
            self.refresh_sessions()

        self.disk_lane.submit(run, name="open session", on_done=on_done, on_error=on_error)

    def _show_steps(self, run: Run | None) -> None:
        """A reopened session's latest deep-thinking run or read in waves as its timeline,
        resumable when it stopped before its end."""
        self._resumable = run if run is not None and run.status is not Status.DONE else None
        if run is None:
            self.timeline.clear()
        else:
            self.timeline.show_run(run)

    def new_session(self) -> None:
        if self.asking:
            self.cancel_ask()
        self.session_id = None
        self.sidebar.current_id = None
        self._resumable = None
        self.timeline.clear()
        self._restoring = True
        try:
            self.corpus_panel.clear()
            self.conversation.set_turns([])
        finally:
            self._restoring = False

    def _on_sidebar_rename_requested(self, session_id: int, title: str) -> None:
        self._change_sessions(lambda library: library.rename_session(session_id, title))

    def _on_sidebar_delete_requested(self, session_id: int) -> None:
        if session_id == self.session_id:
            self.new_session()
        self._change_sessions(lambda library: library.trash_session(session_id))

    def _on_sidebar_undo_requested(self, session_id: int) -> None:
        self._change_sessions(lambda library: library.restore_session(session_id))

    def _on_sidebar_purge_due(self, session_id: int) -> None:
        self.disk_lane.submit(lambda library, job: library.purge_session(session_id), name="purge")

    def _change_sessions(self, change: Callable[[Library], None]) -> None:
        self.disk_lane.submit(lambda library, job: change(library), on_done=lambda _r: self.refresh_sessions())

    # -- models and settings --------------------------------------------------------

    def _load_models(self) -> None:
        bundled, current, discover = self.bundled_model, self.model_path, self._discover
        added = [Path(p) for p in self.settings.added_models]
        self.disk_lane.submit(
            lambda library, job: list_models(bundled=bundled, added=added, current=current, discover=discover),
            name="models",
            on_done=lambda entries: self.picker.set_entries(entries, current=self.model_path),
        )

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Choose a GGUF model file"), "", self.tr("GGUF models (*.gguf)")
        )
        if path:
            self.use_model(Path(path), added=True)

    def open_get_models(self) -> GetModelsDialog:
        """Open the "Get models" dialog (issue 18); a downloaded model is listed and used."""
        self.get_models = GetModelsDialog(
            make_hub=lambda: Hub(endpoint=self.hub_endpoint), root=models_dir(), db=db_path(), parent=self
        )
        self.get_models.model_downloaded.connect(self._on_get_models_model_downloaded)
        self.get_models.open()
        return self.get_models

    def _on_get_models_model_downloaded(self, path: Path) -> None:
        self._load_models()  # discovery lists Longread's models folder
        self.use_model(path)

    def use_model(self, path: Path, *, added: bool = False) -> None:
        """Read with the GGUF at ``path`` (checked first; a bad file leaves the model as is)."""
        if self.asking or self.probe.running:
            wait = self.tr("Wait for the answer (or press Esc) before changing the model.")
            if self.probe.running:
                wait = self.tr("Cancel the measurement before changing the model.")
            self.statusBar().showMessage(wait, 5000)
            self.picker.set_entries(self.picker.entries, current=self.model_path)
            return

        def swap(library: Library, job: Job) -> ModelEntry:
            entry = check_model(path, "added" if added else "chosen")  # raises ModelFileError on a bad file
            library.use_model(path)
            return entry

        def on_done(entry: ModelEntry) -> None:
            self.model_path = path
            self.settings.model_path = str(path)
            if added:
                self.settings.add_model(str(path))
            existing = next((e for e in self.picker.entries if e.path == path), None)
            self.picker.add_entry(existing or entry, select=True)
            self.statusBar().showMessage(self.tr("Model: {name}").format(name=path.name), 5000)
            self.model_changed.emit(path)
            self.schedule_measure()
            self.probe.refresh()

        def on_error(exc: EngineError) -> None:
            self.picker.set_entries(self.picker.entries, current=self.model_path)
            self.model_problem = exc.message
            self.statusBar().showMessage(
                self.tr("Still using {name}: {problem}").format(name=self.model_path.name, problem=exc.message), 15000
            )
            self.model_failed.emit(exc.message)

        self.model_lane.submit(swap, name="model", on_done=on_done, on_error=on_error)

    def apply_settings(self) -> None:
        """Give the library the current settings and measure again."""
        settings = self.settings.read_settings(self._read_base)
        url, served = self.settings.server_url or None, self.settings.server_model or None
        self.model_lane.submit(
            lambda library, job: library.use_server(url, model=served),
            name="server",
            on_error=lambda exc: self.statusBar().showMessage(exc.message, 8000),
        )
        self.gauge.set_kv_type(settings.kv_type)
        self.model_lane.submit(
            lambda library, job: library.use_settings(settings),
            name="settings",
            on_done=lambda _r: self.schedule_measure(),
        )

    def show_model_details(self) -> None:
        """Open the model details dialog (issue 14): the effective context measured by
        ``longread probe`` and its heatmap, read and drawn on the disk lane."""
        model_path = self.model_path

        def on_done(details: ModelDetails) -> None:
            self.model_details = ModelDetailsDialog(self)
            self.model_details.show_details(details)
            self.model_details.measure_requested.connect(self._on_model_details_measure_requested)
            self.model_details.set_measuring(self.probe.running)
            self.model_details.open()

        self.disk_lane.submit(
            lambda library, _job: load_model_details(library, model_path),
            name="model details",
            on_done=on_done,
            on_error=lambda exc: self.statusBar().showMessage(exc.message, 8000),
        )

    def _on_model_details_measure_requested(self, quick: bool) -> None:
        self.model_details.accept()  # the panel shows the probe's progress
        self.probe.start(quick)

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, current_data_dir=str(self.data_folder), parent=self)
        if dialog.exec():
            self.apply_settings()

    def _on_gauge_kv_type_chosen(self, kv_type: str) -> None:
        self.settings.kv_type = kv_type
        self.apply_settings()

    def _on_gauge_window_requested(self, n_ctx: int) -> None:
        self.settings.n_ctx = n_ctx
        self.apply_settings()

    def _on_gauge_remove_requested(self) -> None:
        self.corpus_panel.tree.setFocus()
        self.statusBar().showMessage(self.tr("Select a document and press Delete (or Remove) to take it out."), 8000)

    def _on_model_lane_busy_changed(self, busy: bool) -> None:
        self.lane_label.setText(self.tr("Working…") if busy else self.tr("Ready"))

    def _show_shortcuts(self) -> None:
        QMessageBox.information(
            self,
            self.tr("Keyboard and mouse"),
            self.tr(
                "Drop PDFs, text files or folders on the window to add them; drop a .gguf file to use that model.\n\n"
                "Ctrl+O  open documents\nCtrl+Enter  ask\nEsc  cancel the answer\nCtrl+N  new session\n"
                "Alt+Up / Alt+Down  reorder the selected document (or drag its row)\nDelete  remove it\n"
                "Enter or double-click  give a locked PDF its password\nCtrl+,  settings\n\n"
                "Click a page citation in an answer to see the page."
            ),
        )

    # -- closing --------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the lanes and free the model (before exit: a model left to the GC can crash)."""
        if self._closed:
            return
        self._closed = True
        self.passwords.stop()
        if self._run_job is not None:
            self._run_job.cancel()
        self.probe.shutdown()
        self.settings.sync()
        self.model_lane.shutdown()
        self.disk_lane.shutdown()
        self.ingest.wait()
