"""The model picker: the bundled model, GGUF files the user added or dropped, and the
ones found in Longread's own models folder (downloads) and LM Studio's, GPT4All's and the
Hugging Face cache's folders, each with its size, architecture and trained context. The
last entries open a file dialog and the "Get models" dialog."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from app.i18n import format_bytes
from engine.models.gguf import ModelInfo

_BROWSE = "__browse__"
_GET = "__get__"


@dataclass(frozen=True)
class ModelSummary:
    """What the picker shows about a model file."""

    name: str
    architecture: str
    context_length: int
    size_bytes: int


def summarize_model(info: ModelInfo) -> ModelSummary:
    """The picker's line about a model, from its facts."""
    return ModelSummary(info.name, info.architecture, info.context_length, info.file_size)


@dataclass(frozen=True)
class ModelEntry:
    """One model the picker offers."""

    path: Path
    source: str  # "bundled", "added", "Longread", "LM Studio", "GPT4All", "Hugging Face"
    summary: ModelSummary | None = None
    problem: str = ""

    def label(self) -> str:
        source = {
            "bundled": QCoreApplication.translate("ModelPicker", "bundled"),
            "added": QCoreApplication.translate("ModelPicker", "added"),
            "chosen": QCoreApplication.translate("ModelPicker", "chosen"),
        }.get(self.source, self.source)
        if self.summary is None:
            problem = self.problem or QCoreApplication.translate("ModelPicker", "reading…")
            return f"{self.path.name} ({source}) — {problem}"
        s = self.summary
        context = QCoreApplication.translate("ModelPicker", "{tokens}-token context").format(
            tokens=f"{s.context_length:,}"
        )
        return f"{self.path.name} — {format_bytes(s.size_bytes)} · {s.architecture} · {context} ({source})"


class ModelPicker(QWidget):
    """A combo box of models.

    Signals:
        model_chosen(object): a ``Path`` the user picked.
        browse_requested(): the user wants to choose a GGUF file.
        get_requested(): the user wants to download a model (the "Get models" dialog).
        details_requested(): the user wants the model details (its measured effective context).
    """

    model_chosen = Signal(object)
    browse_requested = Signal()
    get_requested = Signal()
    details_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[ModelEntry] = []
        self.current: Path | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(self.tr("Model:")))
        self.combo = QComboBox()
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(30)
        self.combo.activated.connect(self._on_combo_activated)
        layout.addWidget(self.combo, 1)
        self.details_button = QPushButton(self.tr("Details…"))
        self.details_button.setToolTip(self.tr("What this model reads reliably on this computer (longread probe)"))
        self.details_button.clicked.connect(self.details_requested)
        layout.addWidget(self.details_button)

    def set_entries(self, entries: list[ModelEntry], *, current: Path) -> None:
        seen: set[Path] = set()
        unique = []
        for entry in entries:
            key = entry.path.resolve() if entry.path.exists() else entry.path
            if key not in seen:
                seen.add(key)
                unique.append(entry)
        self.entries = unique
        self.current = current
        self._fill()

    def add_entry(self, entry: ModelEntry, *, select: bool) -> None:
        self.entries = [e for e in self.entries if e.path != entry.path] + [entry]
        if select:
            self.current = entry.path
        self._fill()

    def _fill(self) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for entry in self.entries:
            self.combo.addItem(entry.label(), str(entry.path))
            self.combo.setItemData(self.combo.count() - 1, str(entry.path), 3)  # 3 = ToolTipRole
        self.combo.addItem(self.tr("Choose a GGUF model file…"), _BROWSE)
        self.combo.addItem(self.tr("Get models from Hugging Face…"), _GET)
        index = next((i for i, e in enumerate(self.entries) if e.path == self.current), 0)
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)

    def _on_combo_activated(self, index: int) -> None:
        data = self.combo.itemData(index)
        if data in (_BROWSE, _GET):
            self._fill()  # put the selection back on the current model
            (self.browse_requested if data == _BROWSE else self.get_requested).emit()
            return
        path = Path(str(data))
        if path != self.current:
            self.current = path
            self.model_chosen.emit(path)
