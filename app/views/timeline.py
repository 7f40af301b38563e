"""The timeline of a deep-thinking or wave read: one row per step or wave.

Contract: ``show_step(key, heading, status, text)`` adds or updates a row (the engine's
``on_step`` rows: status pending, running, done, interrupted, cancelled or failed);
``append_text(piece)`` streams into the running row and returns False when no row is
running (the final answer then belongs to the conversation); ``mark_stopped()`` turns
running and pending rows into ``interrupted`` when the user cancels; ``show_resume(text)``
shows a Resume button (a reopened run that did not finish), which emits
``resume_requested``; ``clear()`` hides the timeline. Rendering is
throttled like the conversation's, so a fast model cannot flood the main thread.
Widgets only: the window feeds it from the model lane's reports.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

RENDER_EVERY_MS = 60
_COLORS = {"done": "#15803d", "running": "#1a56db", "pending": "#6b7280", "interrupted": "#b45309"}


@dataclass
class TimelineRow:
    """One step or wave as shown."""

    key: int
    heading: str
    status: str
    text: str = ""


class TimelineView(QWidget):
    """Rows of steps or waves, the running one streaming.

    Signals:
        resume_requested(): the user pressed Resume on a run that did not finish.
    """

    resume_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[TimelineRow] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setWordWrap(True)
        header.addWidget(self.title, 1)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Go on from the first step not done; finished steps are kept as they are")
        self.resume_button.clicked.connect(self.resume_requested)
        self.resume_button.setVisible(False)
        header.addWidget(self.resume_button)
        layout.addLayout(header)
        self.browser = QTextBrowser()
        layout.addWidget(self.browser, 1)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_EVERY_MS)
        self._render_timer.timeout.connect(self._render)
        self.setVisible(False)

    def start(self, title: str) -> None:
        """Clear the rows and show the timeline for a new run."""
        self.rows = []
        self.title.setText(title)
        self.resume_button.setVisible(False)
        self.setVisible(True)
        self._render()

    def show_resume(self, text: str) -> None:
        """Offer to resume a run that stopped before its end (``text`` says where it stopped)."""
        self.title.setText(text)
        self.resume_button.setVisible(True)

    def clear(self) -> None:
        """No run to show: hide the timeline."""
        self.rows = []
        self.resume_button.setVisible(False)
        self.setVisible(False)
        self._render()

    def show_step(self, key: int, heading: str, status: str, text: str) -> None:
        row = next((r for r in self.rows if r.key == key), None)
        if row is None:
            row = TimelineRow(key, heading, status, text)
            self.rows.append(row)
            self.rows.sort(key=lambda r: r.key)
        row.heading, row.status = heading, status
        if text or status != "running":
            row.text = text
        self._schedule()

    def append_text(self, piece: str) -> bool:
        row = next((r for r in self.rows if r.status == "running"), None)
        if row is None:
            return False
        row.text += piece
        self._schedule()
        return True

    def mark_stopped(self) -> None:
        for row in self.rows:
            if row.status in ("running", "pending"):
                row.status = "interrupted"
        self._render()

    def statuses(self) -> list[str]:
        return [r.status for r in self.rows]

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
                f"<span style='color:{color}'>({html.escape(row.status)})</span></p>"
            )
            if row.text:
                parts.append("<p style='margin-top:2px'>" + html.escape(row.text).replace("\n", "<br>") + "</p>")
        self.browser.setHtml("".join(parts))
        bar = self.browser.verticalScrollBar()
        bar.setValue(bar.maximum())
