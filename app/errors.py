"""Bugs versus errors: engine errors are shown where they happen; anything else is a bug.

``install_error_handlers(log_path)`` (called by ``app.main``, not by tests, where
pytest-qt catches exceptions raised in slots) logs to ``longread.log`` in the data
folder, routes Qt's own messages to that log, and replaces ``sys.excepthook`` so that an
unexpected exception writes its traceback to the log and opens a ``CrashDialog`` whose
report can be copied. ``EngineError``s that reach the hook (they should not) get a plain
message box instead.
"""

from __future__ import annotations

import logging
import platform
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from engine import __version__
from engine.errors import EngineError

log = logging.getLogger("longread.app")


def format_report(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> str:
    """A bug report: versions, platform and the traceback."""
    lines = [
        f"Longread {__version__}",
        f"Python {platform.python_version()} on {platform.platform()}",
        "",
        "".join(traceback.format_exception(exc_type, exc, tb)),
    ]
    return "\n".join(lines)


class CrashDialog(QDialog):
    """Says that something went wrong that is Longread's fault, with a copyable report."""

    def __init__(self, report: str, *, log_path: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Longread hit a bug"))
        self.resize(640, 420)
        layout = QVBoxLayout(self)
        where = " " + self.tr("It is also in {path}.").format(path=log_path) if log_path else ""
        intro = QLabel(
            self.tr(
                "Something went wrong that is Longread's fault, not yours. Your documents and "
                "conversations are saved. Please copy this report into a bug report."
            )
            + where
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.report = QPlainTextEdit(report)
        self.report.setReadOnly(True)
        layout.addWidget(self.report)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton(self.tr("Copy report"), QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self._on_copy_clicked)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _on_copy_clicked(self) -> None:
        QApplication.clipboard().setText(self.report.toPlainText())


def install_error_handlers(log_path: Path) -> None:
    """Log to ``log_path``, send Qt's messages there, and show bugs in a crash dialog."""
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("longread.llama").setLevel(logging.WARNING)

    def on_qt_message(mode: QtMsgType, context: object, message: str) -> None:
        level = {
            QtMsgType.QtDebugMsg: logging.DEBUG,
            QtMsgType.QtInfoMsg: logging.INFO,
            QtMsgType.QtWarningMsg: logging.WARNING,
        }.get(mode, logging.ERROR)
        logging.getLogger("qt").log(level, message)

    qInstallMessageHandler(on_qt_message)

    def on_exception(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        if isinstance(exc, EngineError):
            log.warning("engine error reached the top: %s", exc.message)
            QMessageBox.warning(QApplication.activeWindow(), "Longread", exc.message)
            return
        report = format_report(exc_type, exc, tb)
        log.error("bug:\n%s", report)
        if QApplication.instance() is not None:
            CrashDialog(report, log_path=log_path, parent=QApplication.activeWindow()).exec()
        else:
            sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = on_exception
