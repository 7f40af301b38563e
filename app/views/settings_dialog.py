"""Settings: context window, KV cache type, how waves share notes, threads, whether a
changed corpus is assembled from its documents' snapshots, data folder, language. Kept between runs.

A new data folder or language takes effect at the next start (the note under them says
so): every string of the window is translated as it is built.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.i18n import LANGUAGES
from app.settings import AppSettings
from engine.config import default_threads
from engine.reading.waves import WaveMode
from engine.runtime.backend import KvType


def kv_label(kv_type: KvType) -> str:
    """A KV cache type as the settings list it (translated)."""
    return {
        KvType.F16: QCoreApplication.translate("SettingsDialog", "f16: full precision, fastest on CPUs"),
        KvType.Q8_0: QCoreApplication.translate("SettingsDialog", "q8_0: half the memory, slower reading"),
        KvType.Q4_0: QCoreApplication.translate("SettingsDialog", "q4_0: a quarter of the memory, slowest reading"),
    }[kv_type]


class SettingsDialog(QDialog):
    """Edits ``AppSettings``; ``accept`` writes them."""

    def __init__(self, settings: AppSettings, *, current_data_dir: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle(self.tr("Longread settings"))
        form = QFormLayout(self)
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(0, 1 << 20)
        self.n_ctx.setSingleStep(1024)
        self.n_ctx.setSpecialValueText(self.tr("Automatic: what the documents need"))
        self.n_ctx.setSuffix(self.tr(" tokens"))
        self.n_ctx.setValue(settings.n_ctx)
        form.addRow(self.tr("Context window"), self.n_ctx)
        self.kv_type = QComboBox()
        for kv in KvType:
            self.kv_type.addItem(kv_label(kv), kv.value)
        self.kv_type.setCurrentIndex(list(KvType).index(settings.kv_type))
        form.addRow(self.tr("KV cache"), self.kv_type)
        self.wave_mode = QComboBox()  # issue 13 item 4
        self.wave_mode.addItem(self.tr("Carry notes from part to part"), WaveMode.CARRY.value)
        self.wave_mode.addItem(self.tr("Map: each part alone, then one pass over all notes"), WaveMode.MAP.value)
        self.wave_mode.setCurrentIndex(list(WaveMode).index(settings.wave_mode))
        form.addRow(self.tr("Read in waves"), self.wave_mode)
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText(self.tr("Every core ({n})").format(n=default_threads()))
        self.threads.setValue(settings.n_threads)
        form.addRow(self.tr("Threads"), self.threads)
        self.assemble = QCheckBox(self.tr("Assemble a changed corpus from the documents already read"))
        self.assemble.setToolTip(
            self.tr(
                "After a reorder, a removal or an addition, the documents' saved memory is put together in seconds "
                "instead of reading everything again. Its answers are close to a fresh read's, not always the same; "
                "turn this off to always read fresh."
            )
        )
        self.assemble.setChecked(settings.assemble)
        form.addRow(self.tr("Changed corpus"), self.assemble)
        row = QWidget()
        row_layout = QHBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        self.data_dir = QLineEdit(settings.data_dir)
        self.data_dir.setPlaceholderText(current_data_dir)
        browse = QPushButton(self.tr("Choose…"))
        browse.clicked.connect(self._on_browse_clicked)
        row_layout.addWidget(self.data_dir, 1)
        row_layout.addWidget(browse)
        form.addRow(self.tr("Data folder"), row)
        self.language = QComboBox()
        self.language.addItem(self.tr("The system's language"), "")
        for code, name in LANGUAGES.items():  # each named in its own language
            self.language.addItem(name, code)
        self.language.setCurrentIndex(max(0, self.language.findData(settings.language)))
        form.addRow(self.tr("Language"), self.language)
        self.server_url = QLineEdit(settings.server_url)
        self.server_url.setPlaceholderText(self.tr("None: read with the model on this computer"))
        form.addRow(self.tr("Server URL"), self.server_url)
        self.server_model = QLineEdit(settings.server_model)
        self.server_model.setPlaceholderText(self.tr("The first model the server serves"))
        form.addRow(self.tr("Server model"), self.server_model)
        server_note = QLabel(
            self.tr(
                "An OpenAI-compatible server such as llama-server. Its API key is read from "
                "LONGREAD_SERVER_API_KEY or the system keyring and never saved here."
            )
        )
        server_note.setWordWrap(True)
        server_note.setStyleSheet("color: #6b7280;")
        form.addRow(server_note)
        note = QLabel(
            self.tr(
                "The data folder holds your documents, sessions and the log. A new folder, or another language, "
                "is used from the next start."
            )
        )
        note.setWordWrap(True)
        note.setStyleSheet("color: #6b7280;")
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, self.tr("Data folder"), self.data_dir.text() or self.data_dir.placeholderText()
        )
        if folder:
            self.data_dir.setText(folder)

    def accept(self) -> None:
        self.settings.n_ctx = self.n_ctx.value()
        self.settings.kv_type = str(self.kv_type.currentData())
        self.settings.wave_mode = str(self.wave_mode.currentData())
        self.settings.n_threads = self.threads.value()
        self.settings.assemble = self.assemble.isChecked()
        self.settings.data_dir = self.data_dir.text().strip()
        self.settings.language = str(self.language.currentData())
        self.settings.server_url = self.server_url.text()
        self.settings.server_model = self.server_model.text()
        self.settings.sync()
        super().accept()
