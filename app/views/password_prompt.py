"""Passwords for encrypted PDFs, asked one file at a time.

Contract: ``request(row_id)`` queues a locked row of the corpus panel; the prompt shows
one window-modal dialog at a time (``open``, not ``exec``: the main thread never blocks)
for the next row still locked. An accepted password goes out once, in
``password_given``, to the ingest job that reads the file; it is cleared from the dialog
and kept nowhere else. "Not now" leaves the row locked and emits ``declined``. ``stop()``
asks nothing more (the window is closing).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from app.views.corpus_panel import CorpusPanel


class PasswordPrompt(QObject):
    """Asks for the passwords of the panel's locked PDFs.

    Signals:
        password_given(int, object, str): row id, the file's ``Path`` and its password
            (read the file with it; never keep it).
        declined(str): the user chose "Not now" for this file (its name).
    """

    password_given = Signal(int, object, str)
    declined = Signal(str)

    def __init__(self, panel: CorpusPanel, parent: QWidget) -> None:
        super().__init__(parent)
        self._panel = panel
        self._window = parent
        self._queue: list[int] = []
        self._stopped = False
        self.dialog: QInputDialog | None = None

    def request(self, row_id: int) -> None:
        """Ask for this row's password when no other dialog is open."""
        if row_id not in self._queue:
            self._queue.append(row_id)
        self._ask_next()

    def stop(self) -> None:
        self._stopped = True

    def _ask_next(self) -> None:
        if self.dialog is not None or self._stopped:
            return
        row = None
        while self._queue and row is None:
            candidate = self._panel.row(self._queue.pop(0))
            if candidate is not None and candidate.state == "locked":
                row = candidate
        if row is None:
            return
        dialog = QInputDialog(self._window)
        dialog.setWindowTitle(self.tr("Password for {name}").format(name=row.name))
        dialog.setLabelText(
            f"{row.message}\n\n" + self.tr("Longread uses the password to read the text once; it is not saved.")
        )
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.setOkButtonText(self.tr("Read it"))
        dialog.setCancelButtonText(self.tr("Not now"))
        row_id = row.id
        dialog.finished.connect(lambda result: self._on_dialog_finished(row_id, result))
        self.dialog = dialog
        dialog.open()

    def _on_dialog_finished(self, row_id: int, result: int) -> None:
        dialog = self.dialog
        assert dialog is not None
        password = dialog.textValue()
        dialog.setTextValue("")
        dialog.deleteLater()
        self.dialog = None
        current = self._panel.row(row_id)
        if result == QInputDialog.DialogCode.Accepted.value and password and current is not None:
            self.password_given.emit(row_id, Path(current.path), password)
        elif current is not None and current.state == "locked":
            self.declined.emit(current.name)
        self._ask_next()
