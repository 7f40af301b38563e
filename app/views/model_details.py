"""The model details dialog: what the model reads reliably on this computer (issue 14).

Contract: ``load_model_details(library, model_path)`` runs on a lane's thread (it reads
the store and draws the heatmap PNG through ``Library.draw_probe``) and returns a plain
``ModelDetails``; ``ModelDetailsDialog.show_details(details)`` runs on the main thread and
shows the heatmap, the effective context per KV cache type with the threshold used, and
the table of mean scores per task and length. A model never probed gets the command
that measures it. The dialog only shows: it runs nothing.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.library import Library
from engine.planning import MeasuredContext
from engine.probe import TASK_LABELS, THRESHOLD, task_means


@dataclass(frozen=True)
class ModelDetails:
    """What the dialog shows about one model file."""

    model_name: str
    png: Path | None
    effective: tuple[MeasuredContext, ...] = ()
    #: (KV type, task label, length, mean score), by KV type, task and length.
    scores: tuple[tuple[str, str, int, float], ...] = field(default=())


def load_model_details(library: Library, model_path: Path) -> ModelDetails:
    """The model's stored probe results and its heatmap (drawn now); on a lane's thread."""
    library.use_model(model_path)
    cells = library.probe_cells()
    if not cells:
        return ModelDetails(model_path.name, None)
    means = task_means(cells)
    scores = tuple(
        (kv, TASK_LABELS.get(task, task), length, score) for (kv, task, length), score in sorted(means.items())
    )
    return ModelDetails(model_path.name, library.draw_probe(), tuple(library.effective_context().values()), scores)


class ModelDetailsDialog(QDialog):
    """The heatmap, effective context and scores of one model (no signals of its own)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Model details"))
        self.resize(1000, 640)
        layout = QVBoxLayout(self)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.picture)
        scroll.setWidgetResizable(True)
        layout.addWidget(scroll, 3)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(
            [self.tr("KV cache"), self.tr("task"), self.tr("length (tokens)"), self.tr("score")]
        )
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table, 2)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def show_details(self, details: ModelDetails) -> None:
        self.setWindowTitle(self.tr("Model details: {name}").format(name=details.model_name))
        name = f"<b>{html.escape(details.model_name)}</b>"
        if details.png is None:
            self.summary.setText(
                self.tr(
                    "{name} has not been measured on this computer yet. Its trained window "
                    "says how much it can take, not how much it reads reliably. Measure it with "
                    "<code>longread probe --quick</code> (a few minutes) or <code>longread probe</code>."
                ).format(name=name)
            )
            self.picture.clear()
            self.table.setRowCount(0)
            return
        lines = [self._describe(m) for m in details.effective]
        self.summary.setText(
            self.tr(
                "{name}: effective context, the longest length at which every task "
                "scores at least {threshold} (RULER's threshold)."
            ).format(name=name, threshold=f"{THRESHOLD:.1%}")
            + "<br>"
            + "<br>".join(lines)
        )
        pixmap = QPixmap(str(details.png))
        self.picture.setPixmap(pixmap)
        self.table.setRowCount(len(details.scores))
        for row, (kv, task, length, score) in enumerate(details.scores):
            for col, text in enumerate((kv, task, f"{length:,}", f"{score:.0%}")):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def _describe(self, m: MeasuredContext) -> str:
        """``KV cache f16: reliably reads <b>8,192 tokens</b> of the 16,384 tested (ended by ...)``."""
        if m.tokens:
            reads = self.tr("KV cache {kv_type}: reliably reads <b>{tokens} tokens</b> of the {tested} tested")
        else:
            reads = self.tr("KV cache {kv_type}: <b>no length</b> read reliably of the {tested} tested")
        line = reads.format(kv_type=m.kv_type, tokens=f"{m.tokens:,}", tested=f"{m.longest_tested:,}")
        if m.weakest:
            line += " " + self.tr("(ended by {task})").format(task=m.weakest)
        return line
