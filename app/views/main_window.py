"""The main window: sessions | documents, model and gauge | questions and answers.

The window is the controller. It owns two lanes and a pool (``app.tasks``): the model
lane (the engine ``Reader``: counting tokens, asking), the disk lane (sessions, search,
model discovery and inspection) and the ingest pool (reading documents, several at a
time). The main thread only ever queues work and draws results: it never waits on the
model, the disk or a PDF. Dropped files and folders become documents (a dropped
``.gguf`` becomes the model); Ctrl+O opens a file dialog.

Collaborators are passed in (``db_path``, the bundled model, ``AppSettings``, a reader
factory, a model-discovery function), so tests build their own window with a temporary
store, settings file and the real SmolLM2.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.resources import resource_path, sample_document
from app.settings import AppSettings
from app.tasks import IngestPool, Job, Lane
from app.views.budget_gauge import BudgetGauge
from app.views.conversation import ConversationView, TurnView
from app.views.corpus_panel import CorpusPanel
from app.views.model_picker import ModelEntry, ModelPicker, summarize_model
from app.views.page_viewer import PageViewer
from app.views.sessions_sidebar import SessionsSidebar
from app.views.settings_dialog import SettingsDialog
from app.views.timeline import TimelineView
from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import EngineError, IngestError
from engine.ingest import SUPPORTED_SUFFIXES, collect_files
from engine.models.discover import DiscoveredModel, discover_models
from engine.models.gguf import inspect_gguf
from engine.planner import CorpusMeasure, measure_corpus
from engine.reading.ask import AskResult, Reader
from engine.reading.citations import Citation
from engine.reading.deep import DeepSession, DeepStep, DeepThinker, list_deep
from engine.reading.export import export_markdown
from engine.reading.waves import WaveRead, WaveReader, WaveRow, list_reads
from engine.runtime.llama import PrefillProgress
from engine.store import Store, open_store

log = logging.getLogger("longread.app")

ReaderFactory = Callable[[Store, Path, ReadSettings], Reader]
MEASURE_DELAY_MS = 150


@dataclass
class _ModelContext:
    """What the model lane owns: its store connection and the reader."""

    store: Store
    reader: Reader


class MainWindow(QMainWindow):
    """Longread's window.

    Signals:
        measured(object): the gauge got new numbers (an ``engine.planner.CorpusMeasure``).
        answered(object): an answer finished (an ``AskResult``).
        ask_cancelled(): the engine confirmed that a cancelled question stopped.
        sessions_listed(list): the sidebar was refreshed (session ids, in order).
        session_restored(int): a session was reopened and shown.
        model_changed(object): the reader now uses this model ``Path``.
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
        db_path: Path,
        bundled_model: Path,
        settings: AppSettings,
        reader_factory: ReaderFactory = Reader,
        discover: Callable[[], Sequence[DiscoveredModel]] = discover_models,
        data_folder: Path | None = None,
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.bundled_model = bundled_model
        self.settings = settings
        self.data_folder = data_folder or db_path.parent
        self._reader_factory = reader_factory
        self._discover = discover
        self.model_path = Path(settings.model_path) if settings.model_path else bundled_model
        if not self.model_path.is_file():
            self.model_path = bundled_model
        self.session_id: int | None = None
        self._restoring = False
        self._ask_job: Job | None = None
        self._measure_job: Job | None = None
        # Encrypted PDFs waiting for their password, asked one at a time.
        self._locked: list[int] = []
        # A reopened deep-thinking run or read in waves that did not finish: (kind, id, question).
        self._resumable: tuple[str, int, str] | None = None
        self.password_dialog: QInputDialog | None = None
        self._closed = False
        self.model_problem = ""
        # Output budgets of Think deeply (per step) and Read in waves (per wave's notes).
        self.step_tokens = 256
        self.note_tokens = 96

        self.setWindowTitle("Longread")
        self.setWindowIcon(QIcon(str(resource_path("icons/longread.svg"))))
        self.resize(1400, 900)
        self.setAcceptDrops(True)

        model_path, read_settings = self.model_path, settings.read_settings()
        # Open (and migrate) the store once before the lanes and the pool each open their
        # own connection: migrations racing on a fresh file fail with "busy" in WAL mode
        # (a deferred transaction cannot upgrade after another connection wrote). This
        # runs before the window is shown; afterwards the main thread never touches disk.
        open_store(db_path).close()

        def make_model_context() -> _ModelContext:
            store = open_store(db_path)
            return _ModelContext(store, reader_factory(store, model_path, read_settings))

        def close_model_context(ctx: _ModelContext) -> None:
            ctx.reader.close()
            ctx.store.close()

        self.model_lane = Lane("model lane", make_model_context, close_context=close_model_context, parent=self)
        self.disk_lane = Lane("disk lane", lambda: open_store(db_path), close_context=lambda s: s.close(), parent=self)
        self.ingest = IngestPool(db_path, parent=self)
        self.ingest.document_read.connect(self._on_ingest_document_read)
        self.ingest.document_failed.connect(self._on_ingest_document_failed)
        self.ingest.document_progressed.connect(self._on_ingest_document_progressed)
        self.ingest.password_needed.connect(self._on_ingest_password_needed)
        self.model_lane.busy_changed.connect(self._on_model_lane_busy_changed)

        self._build()
        self._measure_timer = QTimer(self)
        self._measure_timer.setSingleShot(True)
        self._measure_timer.setInterval(MEASURE_DELAY_MS)
        self._measure_timer.timeout.connect(self._measure)
        self.refresh_sessions()
        self._load_models()

    # -- layout -------------------------------------------------------------------

    def _build(self) -> None:
        self.sidebar = SessionsSidebar()
        self.corpus_panel = CorpusPanel()
        self.picker = ModelPicker()
        self.gauge = BudgetGauge()
        self.gauge.set_kv_type(self.settings.kv_type)
        self.conversation = ConversationView()
        for target in (self.conversation.question, self.conversation.transcript, self.corpus_panel.tree):
            target.setAcceptDrops(False)  # drops land on the window: files become documents

        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(8, 8, 8, 8)
        middle_layout.addWidget(self.corpus_panel, 3)
        middle_layout.addWidget(self.picker)
        middle_layout.addWidget(self.gauge, 0)
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
        self.lane_label = QLabel("Ready")
        self.statusBar().addPermanentWidget(self.lane_label)

        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open documents…", QKeySequence.StandardKey.Open, self.open_file_dialog)
        self._action(file_menu, "Choose a &model file…", None, self.open_model_dialog)
        self._action(file_menu, "&New session", QKeySequence.StandardKey.New, self.new_session)
        self._action(file_menu, "&Export session as Markdown…", None, self.export_session)
        file_menu.addSeparator()
        self._action(file_menu, "&Settings…", QKeySequence("Ctrl+,"), self.open_settings)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Keyboard and mouse", None, self._show_shortcuts)

        self.corpus_panel.corpus_changed.connect(self._on_corpus_panel_corpus_changed)
        self.corpus_panel.open_requested.connect(self.open_file_dialog)
        self.corpus_panel.sample_requested.connect(lambda: self.add_paths([sample_document()]))
        self.corpus_panel.unlock_requested.connect(self._on_corpus_panel_unlock_requested)
        self.conversation.ask_requested.connect(self.ask)
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
        self.gauge.kv_type_chosen.connect(self._on_gauge_kv_type_chosen)
        self.gauge.window_requested.connect(self._on_gauge_window_requested)
        self.gauge.remove_requested.connect(self._on_gauge_remove_requested)
        self.gauge.model_requested.connect(lambda: self.picker.combo.showPopup())

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
            self.statusBar().showMessage("Drop to add these documents", 2000)
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
            self, "Open documents", "", f"Documents ({patterns});;Models (*.gguf);;All files (*)"
        )
        self.add_paths([Path(f) for f in files])

    def add_paths(self, paths: Sequence[Path]) -> None:
        """Add files and folders: documents are read in the pool, a ``.gguf`` becomes the model."""
        models = [p for p in paths if p.suffix.lower() == ".gguf"]
        documents = [p for p in paths if p.suffix.lower() != ".gguf"]
        for model in models:
            self.use_model(model, added=True)
        if not documents:
            return

        def collect(store: Store, job: Job) -> list[tuple[list[Path], str, list[tuple[Path, str]]]]:
            out: list[tuple[list[Path], str, list[tuple[Path, str]]]] = []
            for path in documents:
                try:
                    found = collect_files([path])
                except IngestError as exc:
                    out.append(([path], exc.message, []))
                    continue
                if not found.files and path.is_dir():
                    out.append(([path], f"{path.name}: no documents Longread reads in this folder.", found.skipped))
                    continue
                out.append((found.files, "", found.skipped))
            return out

        def on_collected(groups: list[tuple[list[Path], str, list[tuple[Path, str]]]]) -> None:
            skipped = 0
            for files, error, skipped_files in groups:
                skipped += len(skipped_files)
                if error:
                    self.corpus_panel.add_failed(files[0], error)
                    continue
                for file in files:
                    self.ingest.read(self.corpus_panel.add_pending(file), file)
            if skipped:
                self.statusBar().showMessage(f"Skipped {skipped} files in those folders that are not documents Longread reads.", 8000)

        self.disk_lane.submit(collect, name="collect", on_done=on_collected)

    def _on_ingest_document_read(self, row_id: int, doc: Any, fresh: bool) -> None:
        self.corpus_panel.set_read(row_id, doc)

    def _on_ingest_document_progressed(self, row_id: int, done: int, total: int) -> None:
        self.corpus_panel.set_progress(row_id, done, total)

    def _on_ingest_document_failed(self, row_id: int, message: str) -> None:
        self.corpus_panel.set_failed(row_id, message)

    def _on_ingest_password_needed(self, row_id: int, message: str) -> None:
        self.corpus_panel.set_locked(row_id, message)
        if row_id not in self._locked:
            self._locked.append(row_id)
        self._ask_next_password()

    def _on_corpus_panel_unlock_requested(self, row_id: int) -> None:
        if row_id not in self._locked:
            self._locked.append(row_id)
        self._ask_next_password()

    def _ask_next_password(self) -> None:
        """Ask for the password of the next locked PDF, in a window-modal dialog.

        The dialog does not block the main thread (``open``, not ``exec``). The password
        goes to the ingest job that reads the file and is not kept anywhere else.
        """
        if self.password_dialog is not None or self._closed:
            return
        row = None
        while self._locked and row is None:
            candidate = self.corpus_panel.row(self._locked.pop(0))
            if candidate is not None and candidate.state == "locked":
                row = candidate
        if row is None:
            return
        row_id = row.id
        dialog = QInputDialog(self)
        dialog.setWindowTitle(f"Password for {row.name}")
        dialog.setLabelText(
            f"{row.message}\n\nLongread uses the password to read the text once; it is not saved."
        )
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.setOkButtonText("Read it")
        dialog.setCancelButtonText("Not now")

        def on_finished(result: int) -> None:
            password = dialog.textValue()
            dialog.setTextValue("")
            dialog.deleteLater()
            self.password_dialog = None
            current = self.corpus_panel.row(row_id)
            if result == QInputDialog.DialogCode.Accepted.value and password and current is not None:
                self.corpus_panel.set_reading(row_id)
                self.ingest.read(row_id, current.path, password=password)
            elif current is not None and current.state == "locked":
                self.statusBar().showMessage(
                    f"{current.name} was not read: double-click it in the list to enter its password.", 8000
                )
            self._ask_next_password()

        dialog.finished.connect(on_finished)
        self.password_dialog = dialog
        dialog.open()

    def _on_corpus_panel_corpus_changed(self) -> None:
        corpus = self.corpus_panel.corpus()
        self.conversation.set_corpus(corpus)
        if not self._restoring and self.session_id is not None:
            self.session_id = None
            self.conversation.set_turns([])
            self.conversation.status.setText(
                "The documents changed: the next question starts a new session (the last one is in the sidebar)."
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
        self.gauge.show_busy(f"Counting tokens with {self.model_path.name}…")
        fingerprint = corpus.fingerprint

        def run(ctx: _ModelContext, job: Job) -> CorpusMeasure:
            reader = ctx.reader
            return measure_corpus(
                reader.lane, corpus, store=ctx.store, settings=reader.settings, model_sha256=reader.model_sha
            )

        def on_done(measure: CorpusMeasure) -> None:
            self._measure_job = None
            if self.corpus_panel.corpus().fingerprint != fingerprint:
                return
            self.corpus_panel.set_tokens(corpus, measure.doc_tokens)
            self.gauge.show_measure(measure)
            self.measured.emit(measure)

        def on_error(exc: EngineError) -> None:
            self._measure_job = None
            self.gauge.show_error(exc.message)

        self._measure_job = self.model_lane.submit(run, name="measure", on_done=on_done, on_error=on_error)

    # -- asking -------------------------------------------------------------------

    @property
    def asking(self) -> bool:
        return self._ask_job is not None

    def ask(self, question: str) -> None:
        """Ask ``question`` about the documents on the model lane."""
        corpus = self.corpus_panel.corpus()
        if self.asking:
            return
        if not corpus.documents:
            self.conversation.status.setText("Add documents first: drop them on the window or press Ctrl+O.")
            return
        if self.corpus_panel.reading:
            self.conversation.status.setText("Some documents are still being read; ask again when they are ready.")
            return
        self._resumable = None
        self.timeline.resume_button.setVisible(False)
        if self.conversation.mode_box.currentText() != "Ask":
            self._ask_in_steps(corpus, question, waves=self.conversation.mode_box.currentText() == "Read in waves")
            return
        self.conversation.question.clear()
        self.conversation.start_turn(question)
        session_id = self.session_id

        def run(ctx: _ModelContext, job: Job) -> AskResult:
            return ctx.reader.ask(
                corpus,
                question,
                session_id=session_id,
                on_progress=lambda p: job.report(p),
                on_text=lambda piece: job.report(piece),
                cancel=job.token,
            )

        def on_progress(value: PrefillProgress | str) -> None:
            if isinstance(value, str):
                self.conversation.append_text(value)
            else:
                self.conversation.show_progress(value.done, value.total, value.tokens_per_s, value.eta_s, value.reused)

        def on_done(result: AskResult) -> None:
            self._ask_job = None
            self.session_id = result.session_id
            self.sidebar.current_id = result.session_id
            self.conversation.finish_turn(status="done", answer=result.answer, note=_describe_result(result))
            self.refresh_sessions()
            self.answered.emit(result)

        def on_error(exc: EngineError) -> None:
            self._ask_job = None
            self.conversation.finish_turn(status="failed", error=exc.message)
            self.refresh_sessions()

        def on_cancelled() -> None:
            self.statusBar().showMessage("Stopped. The partial answer is kept in the session.", 5000)
            self.refresh_sessions()
            self.ask_cancelled.emit()

        self._ask_job = self.model_lane.submit(
            run, name="ask", on_done=on_done, on_progress=on_progress, on_error=on_error, on_cancelled=on_cancelled
        )

    def cancel_ask(self) -> None:
        """Stop the question now: the UI is idle at once, the engine stops within a batch."""
        job = self._ask_job
        if job is None:
            return
        job.cancel()
        self._ask_job = None
        self.timeline.mark_stopped()
        self.conversation.finish_turn(status="cancelled")

    def resume_steps(self) -> None:
        """Go on with the reopened deep-thinking run or read in waves that did not finish:
        finished steps and waves are kept as stored, the rest run now."""
        if self.asking or self._resumable is None:
            return
        kind, run_id, question = self._resumable
        corpus = self.corpus_panel.corpus()
        if not corpus.documents:
            self.conversation.status.setText("This session's documents are gone; it cannot be resumed.")
            return
        self._resumable = None
        turns = self.conversation.turns
        if turns and turns[-1].question == question and turns[-1].status != "done":
            # The stopped run's turn: the resumed run takes its place.
            self.conversation.set_turns(turns[:-1])
        self._ask_in_steps(corpus, question, waves=kind == "waves", resume_id=run_id)

    def _ask_in_steps(self, corpus: Corpus, question: str, *, waves: bool, resume_id: int | None = None) -> None:
        """Think deeply (five stored steps) or read in waves, on the model lane; each
        step or wave is a timeline row, the progress line goes to the status area.
        ``resume_id`` goes on with a stored run instead of starting one."""
        self.conversation.question.clear()
        self.conversation.start_turn(question)
        rows = list(self.timeline.rows) if resume_id is not None else []
        self.timeline.start("Reading in waves" if waves else "Thinking deeply")
        for row in rows:
            self.timeline.show_step(row.key, row.heading, row.status, row.text)
        session_id, step_tokens, note_tokens = self.session_id, self.step_tokens, self.note_tokens

        def run(ctx: _ModelContext, job: Job) -> Any:
            # The engine runs the steps with its own model lane, borrowing the reader's
            # loaded model while it fits (it never closes a borrowed model).
            settings, model = ctx.reader.settings, ctx.reader.model
            runner: DeepThinker | WaveReader
            if waves:
                runner = WaveReader(ctx.store, ctx.reader.model_path, settings, max_note_tokens=note_tokens, model=model)
            else:
                runner = DeepThinker(ctx.store, ctx.reader.model_path, settings, step_tokens=step_tokens, model=model)
            try:
                run_id = resume_id if resume_id is not None else runner.start(corpus, question, session_id=session_id)
                return runner.run(
                    run_id,
                    on_progress=lambda p: job.report(("progress", p.describe())),
                    on_text=lambda piece: job.report(("text", piece)),
                    on_step=lambda row: job.report(("step", row)),
                    cancel=job.token,
                )
            finally:
                runner.close()

        def on_progress(value: tuple[str, Any]) -> None:
            kind, data = value
            if kind == "progress":
                self.conversation.progress.setVisible(False)
                self.conversation.status.setText(f"{data}. Esc cancels.")
            elif kind == "text":
                if not self.timeline.append_text(data):
                    self.conversation.append_text(data)
            elif isinstance(data, WaveRow):
                self.timeline.show_step(data.position, f"Wave {data.position}: {data.pages}", data.status, data.notes)
            elif isinstance(data, DeepStep):
                self.timeline.show_step(data.position, f"Step {data.position}: {data.heading}", data.status, data.text)

        def on_done(result: Any) -> None:
            self._ask_job = None
            self.session_id = result.session_id
            self.sidebar.current_id = result.session_id
            self.conversation.finish_turn(status="done", answer=result.answer)
            self.refresh_sessions()
            self.answered.emit(result)

        def on_error(exc: EngineError) -> None:
            self._ask_job = None
            self.timeline.mark_stopped()
            self.conversation.finish_turn(status="failed", error=exc.message)
            self.refresh_sessions()

        def on_cancelled() -> None:
            self.statusBar().showMessage("Stopped. The steps so far are kept in the session.", 5000)
            self.refresh_sessions()
            self.ask_cancelled.emit()

        self._ask_job = self.model_lane.submit(
            run, name="steps", on_done=on_done, on_progress=on_progress, on_error=on_error, on_cancelled=on_cancelled
        )

    def export_session(self, path: Path | None = None) -> None:
        """Write the current session as Markdown (asks where when ``path`` is None)."""
        session_id = self.session_id
        if session_id is None:
            self.statusBar().showMessage("Ask something first: there is no session to export yet.", 5000)
            return
        if path is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export session as Markdown", "session.md", "Markdown (*.md)")
            if not chosen:
                return
            path = Path(chosen)
        target = path

        def run(store: Store, job: Job) -> Path:
            text = export_markdown(store, session_id)
            try:
                target.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise EngineError(f"Could not write {target.name}: {exc.strerror}.") from exc
            return target

        def on_done(written: Path) -> None:
            self.statusBar().showMessage(f"Exported to {written}", 5000)
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

        def run(store: Store, job: Job) -> list[tuple[Any, int]]:
            sessions = store.search_sessions(text)
            return [(s, store.count_questions(s.id)) for s in sessions]

        def on_done(rows: list[tuple[Any, int]]) -> None:
            self.sidebar.show_sessions(rows)
            self.sessions_listed.emit([s.id for s, _ in rows])

        self.disk_lane.submit(run, name="sessions", on_done=on_done)

    def open_session(self, session_id: int) -> None:
        """Show a stored session: its documents and turns exactly as they were."""
        if self.asking:
            self.statusBar().showMessage("Wait for the answer (or press Esc) before opening another session.", 5000)
            return

        def run(store: Store, job: Job) -> tuple[Corpus, list[Any], list[DeepSession | WaveRead]]:
            session = store.get_session(session_id)
            if session is None:
                raise EngineError("That session no longer exists.")
            corpus = store.get_corpus(session.corpus_id) if session.corpus_id else None
            runs: list[DeepSession | WaveRead] = [*list_deep(store, session_id), *list_reads(store, session_id)]
            runs.sort(key=lambda r: r.created_at)
            return corpus or Corpus(), store.list_turns(session_id), runs

        def on_done(result: tuple[Corpus, list[Any], list[DeepSession | WaveRead]]) -> None:
            corpus, turns, runs = result
            self._restoring = True
            try:
                self.session_id = session_id
                self.sidebar.current_id = session_id
                self.corpus_panel.set_documents(corpus.documents)
                self.conversation.set_corpus(corpus)
                # Questions, deep-thinking runs and reads in waves, in the order they were asked.
                views = [(t.created_at, _turn_view(t)) for t in turns] + [(r.created_at, _run_turn(r)) for r in runs]
                views.sort(key=lambda pair: pair[0])
                self.conversation.set_turns([view for _, view in views])
                self.conversation.status.setText("")
                self._show_run(runs[-1] if runs else None)
            finally:
                self._restoring = False
            self.session_restored.emit(session_id)

        def on_error(exc: EngineError) -> None:
            self.statusBar().showMessage(exc.message, 8000)
            self.refresh_sessions()

        self.disk_lane.submit(run, name="open session", on_done=on_done, on_error=on_error)

    def _show_run(self, run: DeepSession | WaveRead | None) -> None:
        """Show a reopened session's latest deep-thinking run or read in waves as a
        timeline, with Resume when it stopped before its end."""
        self._resumable = None
        if run is None:
            self.timeline.clear()
            return
        if isinstance(run, WaveRead):
            self.timeline.start("Read in waves")
            for wave in run.waves:
                self.timeline.show_step(wave.position, f"Wave {wave.position}: {wave.pages}", wave.status, wave.notes)
            done, total, kind, unit = run.done_waves, run.n_waves, "waves", "waves"
        else:
            self.timeline.start("Thought deeply")
            for step in run.steps:
                self.timeline.show_step(step.position, f"Step {step.position}: {step.heading}", step.status, step.text)
            done = sum(1 for step in run.steps if step.status == "done")
            total, kind, unit = len(run.steps), "deep", "steps"
        if run.status != "done":
            self._resumable = (kind, run.id, run.question)
            self.timeline.show_resume(f"Stopped after {done} of {total} {unit} ({run.status}). Resume goes on from there.")

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
        self.disk_lane.submit(lambda store, job: store.rename_session(session_id, title), on_done=lambda _r: self.refresh_sessions())

    def _on_sidebar_delete_requested(self, session_id: int) -> None:
        if session_id == self.session_id:
            self.new_session()
        self.disk_lane.submit(lambda store, job: store.trash_session(session_id), on_done=lambda _r: self.refresh_sessions())

    def _on_sidebar_undo_requested(self, session_id: int) -> None:
        self.disk_lane.submit(lambda store, job: store.restore_session(session_id), on_done=lambda _r: self.refresh_sessions())

    def _on_sidebar_purge_due(self, session_id: int) -> None:
        def purge(store: Store, job: Job) -> None:
            session = store.get_session(session_id)
            if session is not None and session.deleted_at is not None:
                store.delete_session(session_id)

        self.disk_lane.submit(purge)

    # -- models and settings ------------------------------------------------------

    def _load_models(self) -> None:
        bundled = self.bundled_model
        added = [Path(p) for p in self.settings.added_models]
        current = self.model_path
        discover = self._discover

        def run(store: Store, job: Job) -> list[ModelEntry]:
            candidates: list[tuple[Path, str]] = [(bundled, "bundled")]
            candidates += [(p, "added") for p in added]
            if current not in [c[0] for c in candidates]:
                candidates.append((current, "added"))
            candidates += [(m.path, m.source) for m in discover()]
            entries = []
            for path, source in candidates:
                try:
                    entries.append(ModelEntry(path, source, summarize_model(inspect_gguf(path))))
                except EngineError as exc:
                    entries.append(ModelEntry(path, source, problem=exc.message))
                except OSError as exc:
                    entries.append(ModelEntry(path, source, problem=f"cannot be read ({exc.strerror})"))
            return entries

        self.disk_lane.submit(
            run, name="models", on_done=lambda entries: self.picker.set_entries(entries, current=self.model_path)
        )

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model file", "", "GGUF models (*.gguf)")
        if path:
            self.use_model(Path(path), added=True)

    def use_model(self, path: Path, *, added: bool = False) -> None:
        """Read with the GGUF at ``path`` (checked first; a bad file leaves the model as is)."""
        if self.asking:
            self.statusBar().showMessage("Wait for the answer (or press Esc) before changing the model.", 5000)
            self.picker.set_entries(self.picker.entries, current=self.model_path)
            return
        settings = self.settings.read_settings()
        factory = self._reader_factory

        def swap(ctx: _ModelContext, job: Job) -> ModelEntry:
            summary = summarize_model(inspect_gguf(path))  # raises ModelFileError on a bad file
            ctx.reader.close()
            ctx.reader = factory(ctx.store, path, settings)
            return ModelEntry(path, "added" if added else "chosen", summary)

        def on_done(entry: ModelEntry) -> None:
            self.model_path = path
            self.settings.model_path = str(path)
            if added:
                self.settings.add_model(str(path))
            existing = next((e for e in self.picker.entries if e.path == path), None)
            self.picker.add_entry(existing or entry, select=True)
            self.statusBar().showMessage(f"Model: {path.name}", 5000)
            self.model_changed.emit(path)
            self.schedule_measure()

        def on_error(exc: EngineError) -> None:
            self.picker.set_entries(self.picker.entries, current=self.model_path)
            self.model_problem = exc.message
            self.statusBar().showMessage(f"Still using {self.model_path.name}: {exc.message}", 15000)
            self.model_failed.emit(exc.message)

        self.model_lane.submit(swap, name="model", on_done=on_done, on_error=on_error)

    def apply_settings(self) -> None:
        """Give the reader the current settings and measure again."""
        settings = self.settings.read_settings()
        self.gauge.set_kv_type(settings.kv_type)

        def run(ctx: _ModelContext, job: Job) -> None:
            ctx.reader.settings = settings

        self.model_lane.submit(run, name="settings", on_done=lambda _r: self.schedule_measure())

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
        self.statusBar().showMessage("Select a document and press Delete (or Remove) to take it out.", 8000)

    def _on_model_lane_busy_changed(self, busy: bool) -> None:
        self.lane_label.setText("Working…" if busy else "Ready")

    def _show_shortcuts(self) -> None:
        QMessageBox.information(
            self,
            "Keyboard and mouse",
            "Drop PDFs, text files or folders on the window to add them; drop a .gguf file to use that model.\n\n"
            "Ctrl+O  open documents\nCtrl+Enter  ask\nEsc  cancel the answer\nCtrl+N  new session\n"
            "Alt+Up / Alt+Down  reorder the selected document (or drag its row)\nDelete  remove it\n"
            "Enter or double-click  give a locked PDF its password\nCtrl+,  settings\n\n"
            "Click a page citation in an answer to see the page.",
        )

    # -- closing ------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the lanes and free the model (before exit: a Llama left to the GC can crash)."""
        if self._closed:
            return
        self._closed = True
        if self._ask_job is not None:
            self._ask_job.cancel()
        self.settings.sync()
        self.model_lane.shutdown()
        self.disk_lane.shutdown()
        self.ingest.wait()


def _describe_result(result: AskResult) -> str:
    p = result.prefill
    warm = getattr(result, "warm", None)  # issue 4: how the corpus got into the context
    if warm is not None and warm.source == "snapshot":
        was = f" (reading them took {warm.cold_prefill_s:.0f} s)" if warm.cold_prefill_s else ""
        read = f"restored the documents in {warm.restore_s:.1f} s{was}"
    elif warm is not None and warm.source == "context" and p.evaluated < 64:
        read = "the documents were already read"
    elif p.evaluated and p.seconds > 0:
        read = f"read {p.evaluated:,} tokens in {p.seconds:.1f} s ({p.evaluated / p.seconds:,.0f} tokens/s)"
    else:
        read = "read nothing new"
    if p.reused:
        read += f", {p.reused:,} already in memory"
    notice = f" {warm.notice}" if warm is not None and warm.notice else ""
    return f"{read}; answered {result.answer_tokens} tokens in {result.generate_s:.1f} s.{notice}"


def _turn_view(turn: Any) -> TurnView:
    return TurnView(turn.question, turn.answer, turn.status, turn.error or "", _describe_turn(turn))


def _run_turn(run: DeepSession | WaveRead) -> TurnView:
    """A deep-thinking run or a read in waves as a conversation turn: its question and answer."""
    status = run.status if run.status in ("done", "cancelled", "failed") else "interrupted"
    how = "Read in waves" if isinstance(run, WaveRead) else "Thought deeply"
    return TurnView(run.question, run.answer, status, run.error or "", f"{how} with {run.model}.")


def _describe_turn(turn: Any) -> str:
    if turn.prefill_tokens is None:
        return ""
    return (
        f"{turn.model}, window {turn.settings.get('n_ctx', '?')}, KV {turn.settings.get('kv_type', '?')}; "
        f"read {turn.prefill_tokens:,} tokens in {turn.prefill_s or 0:.1f} s."
    )
