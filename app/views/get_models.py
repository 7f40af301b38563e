"""The "Get models" dialog (issue 18): suggested models and any Hugging Face repository,
their GGUF files with sizes, the disk space free, what the planner says for this machine,
and a download with progress, ETA and cancel.

Contract: every call to the Hub runs on the dialog's own lanes (``app.tasks.Lane``: worker
threads whose context is an ``engine.models.hub.Hub``): one lists repositories and reads
a file's header for the planner's line, the other downloads, so the first still answers
while a download runs. The main thread only shows
results. A download is checked and inspected by the engine before it lands where the
model picker looks; the dialog then emits ``model_downloaded``. Closing the dialog cancels
a download (its bytes stay for the next try, which resumes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.i18n import format_bytes, format_duration
from app.tasks import Job, Lane
from engine.errors import EngineError
from engine.machine import read_available_memory
from engine.models.hub import (
    CuratedModel,
    DownloadProgress,
    Hub,
    HubFile,
    curated_models,
    describe_fit,
    free_disk_bytes,
    parse_spec,
    stored_calibrations,
)

_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class FileFacts:
    """What the dialog says about one file before it is downloaded."""

    file: HubFile
    free_bytes: int
    fit: str
    model_name: str


def read_file_facts(hub: Hub, file: HubFile, *, root: Path, db: Path | None) -> FileFacts:
    """Read the file's header from the Hub and plan it here (on the lane's thread)."""
    info = hub.inspect(file)
    calibrations = stored_calibrations(file, db) if db is not None else []
    fit = describe_fit(info, available_bytes=read_available_memory(), calibrations=calibrations)
    return FileFacts(file, free_disk_bytes(root), fit, f"{info.name} ({info.architecture}, {info.file_type})")


class GetModelsDialog(QDialog):
    """Suggested models, a repository field, files, the plan, a download.

    Signals:
        model_downloaded(object): the ``Path`` of a model now ready to use.
        files_listed(list): a repository's GGUF files were listed (``HubFile``s).
        facts_shown(object): a file's ``FileFacts`` are shown.
        failed(str): something went wrong; the message is shown in the dialog.
    """

    model_downloaded = Signal(object)
    files_listed = Signal(list)
    facts_shown = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        *,
        make_hub: Callable[[], Hub],
        root: Path,
        db: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Get models"))
        self.resize(760, 560)
        self.root = root
        self.db = db
        # Listing and planning get their own lane, so they answer while a download runs.
        self.lane = Lane("hub lane", make_hub, parent=self)
        self.download_lane = Lane("download lane", make_hub, parent=self)
        self._download_job: Job | None = None
        self._facts_job: Job | None = None
        self._files: list[HubFile] = []

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.tr("Suggested models (instruction-tuned, for long documents):")))
        self.curated = QListWidget()
        for model in curated_models():
            item = QListWidgetItem(self._curated_label(model))
            item.setData(_ROLE, model.repo)
            item.setToolTip(model.why)
            self.curated.addItem(item)
        # Selection, not the current item: the view makes its first row current when it
        # gets the focus, and that must not list a repository the user did not choose.
        self.curated.itemSelectionChanged.connect(self._on_curated_item_selection_changed)
        layout.addWidget(self.curated, 2)

        row = QHBoxLayout()
        row.addWidget(QLabel(self.tr("Hugging Face repository:")))
        self.repo_edit = QLineEdit()
        self.repo_edit.setPlaceholderText(self.tr("org/name, e.g. Qwen/Qwen2.5-1.5B-Instruct-GGUF"))
        self.repo_edit.returnPressed.connect(self.list_repo)
        row.addWidget(self.repo_edit, 1)
        self.list_button = QPushButton(self.tr("List files"))
        self.list_button.clicked.connect(self.list_repo)
        row.addWidget(self.list_button)
        layout.addLayout(row)

        self.files = QListWidget()
        self.files.currentItemChanged.connect(self._on_files_current_item_changed)
        layout.addWidget(self.files, 2)

        self.facts = QLabel(self.tr("Choose a model to see its size and what fits on this computer."))
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.facts)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.status)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.download_button = QPushButton(self.tr("Download"))
        self.download_button.setEnabled(False)
        self.download_button.clicked.connect(self.download)
        buttons.addWidget(self.download_button)
        self.cancel_button = QPushButton(self.tr("Cancel download"))
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_download)
        buttons.addWidget(self.cancel_button)
        close = QPushButton(self.tr("Close"))
        close.clicked.connect(self.close)
        buttons.addWidget(close)
        layout.addLayout(buttons)

    def _curated_label(self, model: CuratedModel) -> str:
        sizes = ", ".join(f"{f.quant} ~{format_bytes(f.size_bytes)}" for f in model.files)
        return self.tr("{title} — {context}-token window · {licence} · {sizes}").format(
            title=model.title, context=f"{model.context:,}", licence=model.licence, sizes=sizes
        )

    # -- listing ----------------------------------------------------------------------

    def _on_curated_item_selection_changed(self) -> None:
        selected = self.curated.selectedItems()
        if selected:
            self.repo_edit.setText(str(selected[0].data(_ROLE)))
            self.list_repo()

    def list_repo(self) -> None:
        """List the GGUF files of the repository in the field (on the lane)."""
        text = self.repo_edit.text().strip()
        if not text:
            return
        try:
            repo, name = parse_spec(text)
        except EngineError as exc:
            self._show_error(exc)
            return
        self.files.clear()
        self.download_button.setEnabled(False)
        self.status.setText(self.tr("Listing {repo}…").format(repo=repo))
        curated = next((m for m in curated_models() if m.repo.lower() == repo.lower()), None)
        preferred = name or (curated.recommended if curated is not None else None)
        self.lane.submit(
            lambda hub, _job: hub.list_files(repo),
            name="list files",
            on_done=lambda files: self._show_files(files, preferred),
            on_error=self._show_error,
        )

    def _show_files(self, files: list[HubFile], preferred: str | None) -> None:
        self._files = files
        self.files.clear()
        for f in files:
            item = QListWidgetItem(f.describe())
            item.setData(_ROLE, f)
            self.files.addItem(item)
        if not files:
            self.status.setText(self.tr("This repository has no GGUF model files."))
        else:
            self.status.setText(self.tr("{n} GGUF models.").format(n=len(files)))
            index = next((i for i, f in enumerate(files) if preferred in (f.name, Path(f.name).name)), 0)
            self.files.setCurrentRow(index)
        self.files_listed.emit(files)

    def selected_file(self) -> HubFile | None:
        item = self.files.currentItem()
        value = item.data(_ROLE) if item is not None else None
        return value if isinstance(value, HubFile) else None

    def _on_files_current_item_changed(self, item: QListWidgetItem | None, _previous: object) -> None:
        file = self.selected_file()
        if file is None:
            return
        self.download_button.setEnabled(self._download_job is None)
        self.facts.setText(
            self.tr("{name}: {size}. Reading its header to plan it here…").format(
                name=Path(file.name).name, size=format_bytes(file.size)
            )
        )
        if self._facts_job is not None:
            self._facts_job.cancel()
        root, db = self.root, self.db
        self._facts_job = self.lane.submit(
            lambda hub, _job: read_file_facts(hub, file, root=root, db=db),
            name="plan file",
            on_done=self._show_facts,
            on_error=self._show_error,
        )

    def _show_facts(self, facts: FileFacts) -> None:
        if facts.file != self.selected_file():
            return
        self.facts.setText(
            self.tr("{name}: {size} to download; {free} free on disk.\n{model}\n{fit}").format(
                name=Path(facts.file.name).name,
                size=format_bytes(facts.file.size),
                free=format_bytes(facts.free_bytes),
                model=facts.model_name,
                fit=facts.fit,
            )
        )
        self.facts_shown.emit(facts)

    # -- downloading ------------------------------------------------------------------

    def download(self) -> None:
        """Download the selected file (on the lane), with progress, ETA and cancel."""
        file = self.selected_file()
        if file is None or self._download_job is not None:
            return
        root = self.root
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.download_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(self.tr("Starting the download of {name}…").format(name=Path(file.name).name))
        self._download_job = self.download_lane.submit(
            lambda hub, job: hub.download(file, root=root, on_progress=job.report, cancel=job.token),
            name="download",
            on_done=self._on_downloaded,
            on_progress=self._show_progress,
            on_error=self._on_download_failed,
            on_cancelled=lambda: None,
        )

    def _show_progress(self, progress: DownloadProgress) -> None:
        self.progress.setValue(int(progress.fraction * 1000))
        self.status.setText(self.describe_progress(progress))

    def describe_progress(self, progress: DownloadProgress) -> str:
        """The engine's progress in the window's words: "412 MB of 1.1 GB · 5.2 MB/s · about 2 min left"."""
        if progress.stage == "verify":
            return self.tr("Checking {name} against the Hub's SHA-256…").format(name=progress.name)
        if progress.stage == "inspect":
            return self.tr("Reading {name}'s header…").format(name=progress.name)
        if progress.stage == "done":
            return self.tr("{name} is ready.").format(name=progress.name)
        text = self.tr("{done} of {total}").format(
            done=format_bytes(progress.done_bytes), total=format_bytes(progress.total_bytes)
        )
        if progress.parts > 1:
            text += " " + self.tr("(part {part} of {parts})").format(part=progress.part, parts=progress.parts)
        if progress.bytes_per_s:
            text += " · " + self.tr("{speed}/s").format(speed=format_bytes(progress.bytes_per_s))
        if progress.eta_s is not None:
            text += " · " + self.tr("about {eta} left").format(eta=format_duration(progress.eta_s))
        return text

    def _on_downloaded(self, path: Path) -> None:
        self._download_job = None
        self.cancel_button.setEnabled(False)
        self.download_button.setEnabled(self.selected_file() is not None)
        self.progress.setValue(1000)
        self.status.setText(self.tr("Ready: {path}. It is now in the model list.").format(path=path))
        self.model_downloaded.emit(path)

    def _on_download_failed(self, exc: EngineError) -> None:
        self._download_job = None
        self.cancel_button.setEnabled(False)
        self.download_button.setEnabled(self.selected_file() is not None)
        self._show_error(exc)

    def cancel_download(self) -> None:
        """Stop the download at once; what was fetched stays, and the next try resumes."""
        if self._download_job is None:
            return
        self._download_job.cancel()
        self._download_job = None
        self.cancel_button.setEnabled(False)
        self.download_button.setEnabled(self.selected_file() is not None)
        self.status.setText(self.tr("Cancelled. Download again to resume where it stopped."))

    def _show_error(self, exc: EngineError) -> None:
        self.status.setText(exc.message)
        self.failed.emit(exc.message)

    def _stop_lanes(self) -> None:
        self.cancel_download()
        self.lane.shutdown(timeout_ms=10000)
        self.download_lane.shutdown(timeout_ms=10000)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._stop_lanes()
        super().closeEvent(event)

    def done(self, result: int) -> None:
        self._stop_lanes()
        super().done(result)
