"""Background work: lanes that run engine functions off the main thread, results back by
queued signals.

Contract:
- A ``Lane`` is one worker thread that runs jobs one at a time, in the order they were
  submitted (Anki's TaskManager). Its context is the engine's ``Library`` (the window's
  lanes each have their own): the model lane's holds the loaded model, which is not
  thread-safe, so only that thread ever touches it; the disk lane's serves session
  lists, search, renames and export. A lane builds its context (``make_context``) on its
  own thread, so each thread has its own SQLite connection.
- ``Lane.submit(fn, ...)`` runs ``fn(context, job)`` on the lane; ``job.report(value)``
  sends progress to the main thread. ``on_done``/``on_progress``/``on_error``/
  ``on_cancelled`` run on the main thread. A job cancelled with ``job.cancel()`` stops
  at the engine's next check (between prefill batches or answer tokens) and its later
  progress and result are dropped at once, so the UI can return to idle immediately.
- ``EngineError``s go to ``on_error`` (the message is for the user). Any other
  exception is a bug: it is raised again on the main thread, inside a slot, where
  ``sys.excepthook`` (the crash dialog, or pytest-qt in tests) takes it.
- ``IngestPool`` reads documents in a ``QThreadPool``; each job opens and closes its own
  ``Library`` (``library_factory()``) and calls ``Library.add_document``. PDFs are
  extracted in a child process by the engine.
- Workers never touch widgets.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot

from engine.errors import Cancelled, CancelToken, EngineError, PasswordRequired

if TYPE_CHECKING:
    from engine.library import Library

LibraryFactory = Callable[[], "Library"]

log = logging.getLogger("longread.app.tasks")
_ids = itertools.count(1)


@dataclass(eq=False)
class Job:
    """One unit of work for a lane, with its main-thread callbacks."""

    fn: Callable[[Any, Job], Any]
    name: str = ""
    on_done: Callable[[Any], None] | None = None
    on_progress: Callable[[Any], None] | None = None
    on_error: Callable[[EngineError], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    token: CancelToken = field(default_factory=CancelToken)
    id: int = field(default_factory=lambda: next(_ids))
    _report: Callable[[Job, Any], None] | None = None

    def report(self, value: Any) -> None:
        """Send progress to the main thread (call from the lane's thread)."""
        if self._report is not None and not self.token.cancelled:
            self._report(self, value)

    def cancel(self) -> None:
        """Stop the job at the engine's next check; drop its results from now on."""
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled


class _Worker(QObject):
    """Runs jobs on the lane's thread.

    Signals:
        finished(job, result), failed(job, exception), progressed(job, value)
    """

    finished = Signal(object, object)
    failed = Signal(object, object)
    progressed = Signal(object, object)

    def __init__(self, make_context: Callable[[], Any], close_context: Callable[[Any], None] | None) -> None:
        super().__init__()
        self._make_context = make_context
        self._close_context = close_context
        self._context: Any = None

    @Slot(object)
    def run(self, job: Job) -> None:
        if job.cancelled:
            self.failed.emit(job, Cancelled())
            return
        job._report = self.progressed.emit
        try:
            if self._context is None:
                self._context = self._make_context()
            result = job.fn(self._context, job)
        except BaseException as exc:  # handed to the main thread, which decides
            self.failed.emit(job, exc)
            return
        self.finished.emit(job, result)

    @Slot()
    def stop(self) -> None:
        try:
            if self._context is not None and self._close_context is not None:
                self._close_context(self._context)
        finally:
            self._context = None
            thread = QThread.currentThread()
            thread.quit()


class Lane(QObject):
    """One worker thread running jobs in submission order.

    Signals:
        busy_changed(bool): the lane started or finished its queue.
    """

    busy_changed = Signal(bool)
    _submitted = Signal(object)
    _stop_requested = Signal()

    def __init__(
        self,
        name: str,
        make_context: Callable[[], Any],
        *,
        close_context: Callable[[Any], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker(make_context, close_context)
        self._worker.moveToThread(self._thread)
        self._submitted.connect(self._worker.run)
        self._stop_requested.connect(self._worker.stop)
        self._worker.finished.connect(self._on_worker_finished)
        self._worker.failed.connect(self._on_worker_failed)
        self._worker.progressed.connect(self._on_worker_progressed)
        self._pending: dict[int, Job] = {}
        self._thread.start()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def submit(
        self,
        fn: Callable[[Any, Job], Any],
        *,
        name: str = "",
        on_done: Callable[[Any], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_error: Callable[[EngineError], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ) -> Job:
        """Queue ``fn(context, job)`` on the lane; return the job (to cancel it)."""
        job = Job(fn, name, on_done, on_progress, on_error, on_cancelled)
        was_busy = self.busy
        self._pending[job.id] = job
        self._submitted.emit(job)
        if not was_busy:
            self.busy_changed.emit(True)
        return job

    def cancel_all(self) -> None:
        for job in list(self._pending.values()):
            job.cancel()

    def shutdown(self, *, timeout_ms: int = 30000) -> None:
        """Cancel what is queued, close the context on its thread, stop the thread."""
        if not self._thread.isRunning():
            return
        self.cancel_all()
        self._stop_requested.emit()
        if not self._thread.wait(timeout_ms):
            log.warning("lane %s did not stop within %d ms", self.name, timeout_ms)

    def _finish(self, job: Job) -> None:
        self._pending.pop(job.id, None)
        if not self.busy:
            self.busy_changed.emit(False)

    @Slot(object, object)
    def _on_worker_finished(self, job: Job, result: Any) -> None:
        self._finish(job)
        if job.cancelled:
            return
        if job.on_done is not None:
            job.on_done(result)

    @Slot(object, object)
    def _on_worker_progressed(self, job: Job, value: Any) -> None:
        if not job.cancelled and job.on_progress is not None:
            job.on_progress(value)

    @Slot(object, object)
    def _on_worker_failed(self, job: Job, exc: BaseException) -> None:
        self._finish(job)
        if isinstance(exc, Cancelled):
            # The UI already returned to idle when the user cancelled; this is the
            # lane confirming that the engine stopped.
            if job.on_cancelled is not None:
                job.on_cancelled()
            return
        if isinstance(exc, EngineError):
            if job.cancelled:
                return
            if job.on_error is not None:
                job.on_error(exc)
            else:
                log.warning("%s failed: %s", job.name or "job", exc.message)
            return
        raise exc  # a bug: to sys.excepthook on the main thread


class _IngestSignals(QObject):
    """Signals: read(row_id, document, fresh), failed(row_id, exception),
    progressed(row_id, pages_done, pages_total)"""

    read = Signal(int, object, bool)
    failed = Signal(int, object)
    progressed = Signal(int, int, int)


class _IngestRunnable(QRunnable):
    def __init__(
        self,
        signals: _IngestSignals,
        row_id: int,
        path: Path,
        library_factory: LibraryFactory,
        password: str | None = None,
    ) -> None:
        super().__init__()
        self._signals = signals
        self._row_id = row_id
        self._path = path
        self._library_factory = library_factory
        self._password = password

    def run(self) -> None:
        try:
            library = self._library_factory()
            try:
                doc, fresh = library.add_document(
                    self._path,
                    password=self._password,
                    on_progress=lambda done, total, _stage: self._signals.progressed.emit(self._row_id, done, total),
                )
            finally:
                library.close()
                self._password = None
        except BaseException as exc:
            self._signals.failed.emit(self._row_id, exc)
            return
        self._signals.read.emit(self._row_id, doc, fresh)


class IngestPool(QObject):
    """Reads documents in a thread pool, one row per file.

    Signals:
        document_read(row_id, Document, fresh): the file was read (or found in the store).
        document_failed(row_id, message): an ``EngineError``'s message for that row.
        document_progressed(row_id, pages_done, pages_total): a PDF's pages so far.
        password_needed(row_id, message): an encrypted PDF needs its password (or the one
            given was wrong); ``read`` it again with one.
    """

    document_read = Signal(int, object, bool)
    document_failed = Signal(int, str)
    document_progressed = Signal(int, int, int)
    password_needed = Signal(int, str)

    def __init__(self, library_factory: LibraryFactory, *, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._library_factory = library_factory
        self._pool = QThreadPool()
        self._pool.setMaxThreadCount(max_threads)
        self._signals = _IngestSignals()
        self._signals.read.connect(self._on_signals_read)
        self._signals.failed.connect(self._on_signals_failed)
        self._signals.progressed.connect(self.document_progressed)

    def read(self, row_id: int, path: Path, *, password: str | None = None) -> None:
        """Read ``path`` for row ``row_id``; ``password`` opens an encrypted PDF (never kept)."""
        self._pool.start(_IngestRunnable(self._signals, row_id, path, self._library_factory, password))

    def wait(self, timeout_ms: int = 30000) -> bool:
        return self._pool.waitForDone(timeout_ms)

    @Slot(int, object, bool)
    def _on_signals_read(self, row_id: int, doc: object, fresh: bool) -> None:
        self.document_read.emit(row_id, doc, fresh)

    @Slot(int, object)
    def _on_signals_failed(self, row_id: int, exc: BaseException) -> None:
        if isinstance(exc, PasswordRequired):
            self.password_needed.emit(row_id, exc.message)
            return
        if isinstance(exc, EngineError):
            self.document_failed.emit(row_id, exc.message)
            return
        self.document_failed.emit(
            row_id,
            self.tr("Could not read this file ({error}). The log has details.").format(error=type(exc).__name__),
        )
        raise exc  # a bug: to sys.excepthook on the main thread
