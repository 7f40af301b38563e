"""The model's effective context in the model panel (issue 14): a heatmap thumbnail (a
click opens the model details dialog), one line of what was measured, and "Measure
effective context" (quick or full) with its progress, time left and Cancel.

Contract:
- ``ProbePanel`` only shows and asks. ``show_view(ProbeView)`` shows the stored results
  (or that the model was never measured); ``show_running``/``show_progress``/``show_idle``
  follow a probe. Signals: ``details_requested()`` (the thumbnail was clicked),
  ``measure_requested(bool quick)``, ``cancel_requested()``.
- ``ProbeRunner`` runs a probe on the window's model lane (the one thread that holds the
  model: a probe loads it at its window with the KV type measured), never on the main
  thread: ``Library.probe`` with the job's cancel token, its progress (cells and, inside a
  cell, tokens read) sent back by ``job.report``. The stored results are read and the
  heatmap drawn and scaled on the disk lane (``load_probe_view``); the main thread only
  turns the image into a pixmap. After each finished cell the thumbnail is redrawn (one
  redraw at a time); when the probe ends, stops or fails, ``results_changed`` tells the
  window to measure the corpus again, so the gauge's "beyond what this model reliably
  reads" follows the new measurement. A cancelled probe keeps the cells it finished
  (stored as each finishes); measuring again resumes from them.
- The KV type measured is the one the window reads with (the gauge's choice); quick is
  ``longread probe --quick`` (two lengths, mid-depth, a few minutes on the bundled
  model), full is every length up to the window at three depths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QProgressBar, QPushButton, QToolButton, QVBoxLayout, QWidget

from app.tasks import Job, Lane
from app.views.model_details import ModelDetails, load_model_details
from engine.errors import EngineError
from engine.library import Library
from engine.probe import TASK_LABELS, ProbeProgress, ProbeReport
from engine.units import format_duration

#: The thumbnail's height in the panel (pixels).
THUMB_HEIGHT = 84


@dataclass(frozen=True)
class ProbeView:
    """What the panel shows about one model: its details and the heatmap scaled to a
    thumbnail (a null image when never measured)."""

    model_path: Path
    details: ModelDetails
    thumbnail: QImage


def load_probe_view(library: Library, model_path: Path, *, height: int = THUMB_HEIGHT) -> ProbeView:
    """The model's stored results, its heatmap drawn and scaled to ``height``; on a lane's
    thread (QImage, unlike QPixmap, may be used off the main thread)."""
    details = load_model_details(library, model_path)
    image = QImage()
    if details.png is not None:
        image = QImage(str(details.png))
        if not image.isNull():
            image = image.scaledToHeight(height, Qt.TransformationMode.SmoothTransformation)
    return ProbeView(model_path, details, image)


class _Thumbnail(QLabel):
    """A clickable picture. Signals: clicked()"""

    clicked = Signal()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
            event.accept()
            return
        super().mousePressEvent(event)


class ProbePanel(QWidget):
    """The heatmap thumbnail, the measured line, Measure and a probe's progress.

    Signals:
        details_requested(): open the model details dialog.
        measure_requested(bool): measure the model (True: quick).
        cancel_requested(): stop the probe running.
    """

    details_requested = Signal()
    measure_requested = Signal(bool)
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.thumbnail = _Thumbnail()
        self.thumbnail.setCursor(Qt.CursorShape.PointingHandCursor)
        self.thumbnail.setToolTip(self.tr("What this model finds, by length and depth: click for the details"))
        self.thumbnail.setMinimumHeight(THUMB_HEIGHT)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.clicked.connect(self.details_requested)
        layout.addWidget(self.thumbnail)
        right = QVBoxLayout()
        self.summary = QLabel(self.tr("Effective context: not measured yet."))
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: #4b5563;")
        right.addWidget(self.summary)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress.hide()
        right.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.hide()
        right.addWidget(self.status)
        buttons = QHBoxLayout()
        self.measure_button = QToolButton()
        self.measure_button.setText(self.tr("Measure effective context"))
        self.measure_button.setToolTip(
            self.tr("Test what this model finds in long texts on this computer (longread probe)")
        )
        self.measure_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        menu = QMenu(self.measure_button)
        self.quick_action = menu.addAction(self.tr("Quick (two lengths, a few minutes)"))
        self.full_action = menu.addAction(self.tr("Full (every length and depth; can take hours)"))
        self.quick_action.triggered.connect(lambda _checked=False: self.measure_requested.emit(True))
        self.full_action.triggered.connect(lambda _checked=False: self.measure_requested.emit(False))
        self.measure_button.setMenu(menu)
        self.measure_button.clicked.connect(lambda _checked=False: self.measure_requested.emit(True))
        buttons.addWidget(self.measure_button)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setToolTip(self.tr("Stop measuring; the cells done are kept and the next run goes on"))
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cancel_button.hide()
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        right.addLayout(buttons)
        layout.addLayout(right, 1)
        self.show_view(None)

    def show_view(self, view: ProbeView | None) -> None:
        """The stored results of the current model (None: not known yet)."""
        if view is None or view.thumbnail.isNull():
            self.thumbnail.clear()
            self.thumbnail.setText(self.tr("no\nheatmap"))
            self.thumbnail.setFixedWidth(THUMB_HEIGHT)
            if view is not None:
                self.summary.setText(
                    self.tr("Effective context: not measured yet. The trained window says how much it takes, not ")
                    + self.tr("how much it reads reliably.")
                )
            return
        self.thumbnail.setText("")
        self.thumbnail.setPixmap(QPixmap.fromImage(view.thumbnail))
        self.thumbnail.setFixedWidth(view.thumbnail.width())
        parts = []
        for m in view.details.effective:
            if m.tokens:
                parts.append(self.tr("{tokens} tokens at {kv}").format(tokens=f"{m.tokens:,}", kv=m.kv_type))
            else:
                parts.append(
                    self.tr("none at {kv} (below {threshold} at {shortest} tokens)").format(
                        kv=m.kv_type, threshold=f"{m.threshold:.1%}", shortest=f"{m.shortest_tested:,}"
                    )
                )
        self.summary.setText(self.tr("Effective context: ") + "; ".join(parts) + ".")

    def show_running(self, quick: bool, kv_type: str) -> None:
        self.measure_button.setEnabled(False)
        self.cancel_button.show()
        self.progress.setRange(0, 0)  # busy until the first report
        self.progress.show()
        self.status.show()
        kind = self.tr("quick") if quick else self.tr("full")
        self.status.setText(self.tr("Starting a {kind} measurement at {kv}…").format(kind=kind, kv=kv_type))

    def show_progress(self, p: ProbeProgress) -> None:
        """A probe's progress: cells done, the cell running and, inside it, tokens read."""
        read = 0.0
        if p.reading is not None and p.reading.total:
            read = p.reading.done / p.reading.total
        self.progress.setRange(0, max(p.total, 1) * 100)
        self.progress.setValue(min(p.done * 100 + round(read * 100), p.total * 100))
        task = TASK_LABELS.get(p.task, p.task)
        if p.done >= p.total:
            text = self.tr("Measured {total} cells at {kv}.").format(total=p.total, kv=p.kv_type)
        else:
            text = self.tr("Cell {n} of {total} at {kv}: {task}, {length} tokens").format(
                n=p.done + 1, total=p.total, kv=p.kv_type, task=task, length=f"{p.length:,}"
            )
            if p.reading is not None:
                text += self.tr(", read {done} of {all}").format(done=f"{p.reading.done:,}", all=f"{p.reading.total:,}")
        if p.eta_s and p.done < p.total:
            text += self.tr(" · about {eta} left").format(eta=format_duration(p.eta_s))
        self.status.setText(text)

    def show_idle(self, message: str = "") -> None:
        """No probe runs: Measure again, ``message`` (if any) where the progress was."""
        self.measure_button.setEnabled(True)
        self.cancel_button.hide()
        self.progress.hide()
        self.status.setText(message)
        self.status.setVisible(bool(message))


class ProbeRunner(QObject):
    """Runs probes from the window (see the module's contract).

    Signals:
        view_loaded(object): a ``ProbeView`` was read and drawn (the thumbnail shows it).
        progressed(object): a ``ProbeProgress`` of the probe running.
        finished(object): the ``ProbeReport`` of a probe that ran to its end.
        stopped(): a cancelled probe's engine stopped (the cells done are stored).
        results_changed(): the stored results may have changed (measure the corpus again).
    """

    view_loaded = Signal(object)
    progressed = Signal(object)
    finished = Signal(object)
    stopped = Signal()
    results_changed = Signal()

    def __init__(
        self,
        panel: ProbePanel,
        *,
        model_lane: Lane,
        disk_lane: Lane,
        model_path: Callable[[], Path],
        kv_type: Callable[[], str],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.panel = panel
        self._model_lane = model_lane
        self._disk_lane = disk_lane
        self._model_path = model_path
        self._kv_type = kv_type
        self._job: Job | None = None
        self._loading = False
        self._reload = False
        self.view: ProbeView | None = None
        panel.measure_requested.connect(self.start)
        panel.cancel_requested.connect(self.cancel)

    @property
    def running(self) -> bool:
        return self._job is not None

    def refresh(self) -> None:
        """Read the current model's results and redraw the thumbnail (on the disk lane);
        asked again while a redraw runs, it redraws once more after it."""
        if self._loading:
            self._reload = True
            return
        self._loading = True
        model_path = self._model_path()

        def done(view: ProbeView) -> None:
            self._loaded()
            if view.model_path == self._model_path():
                self.view = view
                self.panel.show_view(view)
                self.view_loaded.emit(view)

        def failed(exc: EngineError) -> None:
            self._loaded()
            self.panel.summary.setText(exc.message)

        self._disk_lane.submit(
            lambda library, _job: load_probe_view(library, model_path),
            name="probe view",
            on_done=done,
            on_error=failed,
        )

    def _loaded(self) -> None:
        self._loading = False
        if self._reload:
            self._reload = False
            self.refresh()

    def start(self, quick: bool) -> None:
        """Measure the current model at the window's KV type; a probe already running goes on."""
        if self._job is not None:
            return
        kv = self._kv_type()
        self.panel.show_running(quick, kv)

        def run(library: Library, job: Job) -> ProbeReport:
            return library.probe(kv_types=[kv], quick=quick, on_progress=job.report, cancel=job.token)

        def on_progress(p: ProbeProgress) -> None:
            self.panel.show_progress(p)
            self.progressed.emit(p)
            if p.last_score is not None:
                self.refresh()

        def on_done(report: ProbeReport) -> None:
            self._job = None
            self.panel.show_idle(
                self.tr("Measured: {ran} cells now, {total} in all.").format(ran=report.ran, total=len(report.cells))
            )
            self.refresh()
            self.finished.emit(report)
            self.results_changed.emit()

        def on_error(exc: EngineError) -> None:
            self._job = None
            self.panel.show_idle(exc.message)
            self.refresh()
            self.results_changed.emit()

        def on_cancelled() -> None:
            self.refresh()
            self.stopped.emit()
            self.results_changed.emit()

        self._job = self._model_lane.submit(
            run,
            name="probe",
            on_done=on_done,
            on_progress=on_progress,
            on_error=on_error,
            on_cancelled=on_cancelled,
        )

    def cancel(self) -> None:
        """Stop the probe: the panel is idle at once; the engine stops within a batch and
        the cells finished stay stored (measuring again goes on from them)."""
        job = self._job
        if job is None:
            return
        job.cancel()
        self._job = None
        self.panel.show_idle(self.tr("Stopped. The cells done are kept: measure again to go on."))

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job = None
