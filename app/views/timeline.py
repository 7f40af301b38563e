"""The timeline of a deep-thinking run or a read in waves: one row per stored step.

Contract: the rows are the run's ``engine.runs.Step`` objects as the engine reports them
(``on_step``) or as the store holds them. ``start(kind, steps)`` shows a run that is
running now (a resumed one passes its stored steps); ``show_run(run)`` shows a stored run
as it was left and, when it did not finish, a Resume button (``resume_requested``).
``show_step(step)`` adds or updates the row at the step's position; the final ``answer``
step of a read in waves has no row (its text is the conversation's answer).
``append_text(piece)`` streams into the running row and returns False when no row is
running (the text then belongs to the conversation); ``mark_stopped()`` turns running and
pending rows ``interrupted`` when the user cancels; ``clear()`` hides the timeline.
Rendering is throttled like the conversation's, so a fast model cannot flood the main
thread; each row's text is Markdown, rendered as the answers are (``app.views.markdown``). Widgets only: the window feeds it from the model lane's reports.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.i18n import COUNTED, kind_label, run_progress, status_label, step_kind_label
from app.views.markdown import SafeBrowser, markdown_html
from engine.runs import Run, RunKind, Status, Step

RENDER_EVERY_MS = 60
_COLORS = {
    Status.DONE: "#15803d",
    Status.RUNNING: "#1a56db",
    Status.PENDING: "#6b7280",
    Status.INTERRUPTED: "#b45309",
}


def running_title(kind: RunKind) -> str:
    """The title while a run is running (a stored one is titled with ``kind_label``)."""
    return {
        RunKind.THINK: QCoreApplication.translate("TimelineView", "Thinking deeply"),
        RunKind.WAVES: QCoreApplication.translate("TimelineView", "Reading in waves"),
        RunKind.ASK: QCoreApplication.translate("TimelineView", "Answering"),
    }[kind]


@dataclass
class TimelineRow:
    """One step or wave as shown."""

    key: int  # the step's position
    heading: str  # "Step 2: Examination", "Wave 3: filing.pdf p.13-18"
    status: Status
    text: str = ""


def step_heading(step: Step) -> str:
    """``Step 2: Examination`` or ``Wave 3: filing.pdf p.13-18``."""
    if step.kind == "wave":
        dropped = int(step.detail.get("dropped_notes", 0))  # grounded notes (issue 13 item 1)
        extra = " " + COUNTED.notes_dropped(dropped) if dropped else ""
        if step.detail.get("block") == "notes":  # every part's notes kept from an earlier question
            extra += " " + QCoreApplication.translate("TimelineView", "(notes kept from an earlier question)")
        return QCoreApplication.translate("TimelineView", "Wave {n}").format(n=step.position) + f": {step.label}{extra}"
    return QCoreApplication.translate("TimelineView", "Step {n}: {heading}").format(
        n=step.position, heading=step_kind_label(step.kind)
    )


class TimelineView(QWidget):
    """Rows of steps or waves, the running one streaming.

    Signals:
        resume_requested(): the user pressed Resume on a run that did not finish.
    """

    resume_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[TimelineRow] = []
        self.kind: RunKind | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)
        header.addWidget(self.title, 1)
        self.resume_button = QPushButton(self.tr("Resume"))
        self.resume_button.setToolTip(
            self.tr("Go on from the first step not done; finished steps are kept as they are")
        )
        self.resume_button.clicked.connect(self.resume_requested)
        self.resume_button.setVisible(False)
        header.addWidget(self.resume_button)
        layout.addLayout(header)
        self.browser = SafeBrowser()  # steps and notes are model output: it loads nothing
        layout.addWidget(self.browser, 1)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_EVERY_MS)
        self._render_timer.timeout.connect(self._render)
        self.setVisible(False)

    def start(self, kind: RunKind, steps: Iterable[Step] = ()) -> None:
        """Show a run that runs now: its ``steps`` so far (a resumed run's stored ones)."""
        self._show(kind, running_title(kind), steps)

    def show_run(self, run: Run) -> None:
        """Show a stored run as it was left, with Resume when it stopped before its end."""
        self._show(run.kind, kind_label(run.kind), run.steps)
        if run.status is not Status.DONE:
            stopped = self.tr("Stopped after {progress} ({status}).").format(
                progress=run_progress(run), status=status_label(run.status)
            )
            self.title.setText(stopped + " " + self.tr("Resume goes on from there."))
            self.resume_button.setVisible(True)

    def hide_resume(self) -> None:
        """Another question is asked: the stopped run is no longer offered."""
        self.resume_button.setVisible(False)

    def clear(self) -> None:
        """No run to show: hide the timeline."""
        self.rows = []
        self.kind = None
        self.resume_button.setVisible(False)
        self.setVisible(False)
        self._render()

    def show_step(self, step: Step) -> None:
        """Add or update the row of ``step`` (a running step keeps the text streamed so far)."""
        if self.kind is RunKind.WAVES and step.kind == "answer":
            return
        row = next((r for r in self.rows if r.key == step.position), None)
        if row is None:
            row = TimelineRow(step.position, step_heading(step), step.status, step.text)
            self.rows.append(row)
            self.rows.sort(key=lambda r: r.key)
        row.heading, row.status = step_heading(step), step.status
        if step.text or step.status is not Status.RUNNING:
            row.text = step.text
        self._schedule()

    def append_text(self, piece: str) -> bool:
        row = next((r for r in self.rows if r.status is Status.RUNNING), None)
        if row is None:
            return False
        row.text += piece
        self._schedule()
        return True

    def mark_stopped(self) -> None:
        for row in self.rows:
            if row.status in (Status.RUNNING, Status.PENDING):
                row.status = Status.INTERRUPTED
        self._render()

    def statuses(self) -> list[str]:
        return [str(r.status) for r in self.rows]

    def _show(self, kind: RunKind, title: str, steps: Iterable[Step]) -> None:
        self.rows = []
        self.kind = kind
        self.title.setText(title)
        self.resume_button.setVisible(False)
        self.setVisible(True)
        for step in steps:
            self.show_step(step)
        self._render()

    def _schedule(self) -> None:
        if not self._render_timer.isActive():
            self._render_timer.start()

    def _render(self) -> None:
        self._render_timer.stop()
        parts = []
        for row in self.rows:
            color = _COLORS.get(row.status, "#b3261e")
            parts.append(
                f"<p style='margin-bottom:2px'><b>{html.escape(row.heading)}</b> "
                f"<span style='color:{color}'>({html.escape(status_label(row.status))})</span></p>"
            )
            if row.text:
                parts.append(markdown_html(row.text))
        self.browser.setHtml("".join(parts))
        bar = self.browser.verticalScrollBar()
        bar.setValue(bar.maximum())
