"""Every string the window shows, collected from a real window in a fresh process.

Run as ``python -m tests.app.i18n_walk OUT.json --qm-dir DIR [--language CODE]`` with the
environment under test (``LANG=ru_RU.UTF-8``): a fresh process, because Qt reads the
system locale once per process. It installs the translations as ``app.main`` does
(``app.i18n.install_translators``), builds the main window over a temporary store with
the fake backend, and drives it through its states: the empty window, a Russian text
document read and measured, a question asked and answered (with a citation), a
deep-thinking run in the timeline, a reopened session, the settings dialog and the
keyboard help. At each state it walks every widget (labels, buttons, menus and their
actions, tool tips, placeholders, combo items, tree and list items and headers, the
transcript and timeline text, progress formats, the status bar) and writes the strings
to OUT.json as ``[[where, text], ...]``. ``tests/app/test_i18n.py`` judges them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QSpinBox,
    QTableWidget,
    QTextBrowser,
    QTreeWidget,
    QWidget,
)

# A Russian document, question and answer: what the user and the model write is theirs,
# so only the window's own strings can be English.
DOCUMENT = (
    "Договор аренды причала № 17 заключён между портовой компанией «Северная гавань» и "
    "рыболовецким кооперативом «Беломорец». Арендная плата составляет сорок две тысячи рублей "
    "в месяц и вносится не позднее пятого числа.\n\n"
    "Код решения арбитража: АР-4471. Общая сумма, присуждённая кооперативу, составила "
    "триста двенадцать тысяч рублей."
)
QUESTION = "Какой код решения арбитража?"
ANSWER = "Код решения — АР-4471 [договор.txt p.1]."
STEPS = ["План: найти код.", "Изучение: код на странице 1.", "Гипотезы: АР-4471.", "Критика: всё сходится.", ANSWER]

Strings = list[tuple[str, str]]


def widget_strings(root: QWidget) -> Strings:
    """Every user-visible string of ``root`` and its children (hidden ones too: they show later)."""
    out: Strings = []

    def add(where: str, text: str | None) -> None:
        if text and text.strip():
            out.append((where, text))

    for w in [root, *root.findChildren(QWidget)]:
        kind = type(w).__name__
        add(f"{kind}.toolTip", w.toolTip())
        if w.isWindow():
            add(f"{kind}.windowTitle", w.windowTitle())
        if isinstance(w, QLabel):
            add("QLabel", w.text())
        if isinstance(w, QAbstractButton):
            add(f"{kind}.text", w.text())
        if isinstance(w, QGroupBox):
            add("QGroupBox", w.title())
        if isinstance(w, QLineEdit) and not isinstance(w.parent(), QAbstractSpinBox | QComboBox):
            add("QLineEdit.placeholder", w.placeholderText())
        if isinstance(w, QPlainTextEdit):
            add("QPlainTextEdit.placeholder", w.placeholderText())
        if isinstance(w, QTextBrowser):
            add(f"QTextBrowser({w.parent().__class__.__name__})", w.toPlainText())
        if isinstance(w, QProgressBar):
            add("QProgressBar.format", w.format())
        if isinstance(w, QSpinBox):
            add("QSpinBox.special", w.specialValueText())
            add("QSpinBox.suffix", w.suffix())
        if isinstance(w, QComboBox):
            for i in range(w.count()):
                add("QComboBox.item", w.itemText(i))
        if isinstance(w, QTreeWidget):
            header = w.headerItem()
            for col in range(header.columnCount()):
                add("QTreeWidget.header", header.text(col))
            for i in range(w.topLevelItemCount()):
                item = w.topLevelItem(i)
                for col in range(w.columnCount()):
                    add("QTreeWidget.item", item.text(col))
                    add("QTreeWidget.itemToolTip", item.toolTip(col))
        if isinstance(w, QListWidget):
            for i in range(w.count()):
                add("QListWidget.item", w.item(i).text())
        if isinstance(w, QTableWidget):
            for col in range(w.columnCount()):
                header_item = w.horizontalHeaderItem(col)
                add("QTableWidget.header", header_item.text() if header_item else "")
        if isinstance(w, QMenu):
            add("QMenu.title", w.title())
        for action in w.actions():
            add(f"QAction({kind})", action.text())
            add(f"QAction.toolTip({kind})", action.toolTip() if action.toolTip() != action.text() else "")
    if isinstance(root, QMainWindow):
        for action in root.menuBar().actions():
            add("QMenuBar", action.text())
            menu = action.menu()
            if isinstance(menu, QMenu):
                for sub in menu.actions():
                    add("QMenu.action", sub.text())
        add("QStatusBar", root.statusBar().currentMessage())
    return out


def wait_until(app: QApplication, check, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def walk(out_path: Path, *, qm_dir: Path, language: str) -> None:
    from app.i18n import install_translators
    from app.settings import AppSettings
    from app.views.main_window import MainWindow
    from app.views.settings_dialog import SettingsDialog
    from engine.config import ReadSettings
    from engine.library import Library
    from engine.models.bundled import bundled_model_path
    from engine.runs import RunKind
    from engine.runtime.fake import FakeBackend

    app = QApplication.instance() or QApplication(sys.argv[:1])
    translators = install_translators(app, language, folder=qm_dir)
    strings: Strings = [("translators", str(len(translators)))]
    tmp = Path(tempfile.mkdtemp(prefix="longread-i18n-"))
    home = tmp / "home"
    home.mkdir()
    os.environ["LONGREAD_HOME"] = str(home)
    settings = AppSettings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    settings.language = language
    backend = FakeBackend()
    read = ReadSettings(max_answer_tokens=64, n_batch=128)
    window = MainWindow(
        library_factory=lambda: Library(home / "longread.db", backend=backend, settings=read),
        bundled_model=bundled_model_path(),
        settings=settings,
        data_folder=home,
        discover=lambda: [],
    )
    window.show()

    def snap(state: str) -> None:
        app.processEvents()
        strings.extend((f"{state}: {where}", text) for where, text in widget_strings(window))

    wait_until(app, lambda: window.picker.combo.count() > 1)
    snap("empty")
    strings.append(("minimum width", str(window.minimumSizeHint().width())))

    doc = tmp / "договор.txt"
    doc.write_text(DOCUMENT, encoding="utf-8")
    window.add_paths([doc])
    panel = window.corpus_panel
    wait_until(app, lambda: panel.rows and not panel.reading and window.gauge.measure is not None)
    snap("measured")

    backend.enqueue(ANSWER)
    window.conversation.question.setPlainText(QUESTION)
    answered: list[object] = []
    window.answered.connect(answered.append)
    window.ask(QUESTION)
    wait_until(app, lambda: bool(answered))
    snap("answered")

    backend.enqueue(*STEPS)
    window.conversation.mode_box.setCurrentIndex(window.conversation.mode_box.findData(RunKind.THINK.value))
    window.ask(QUESTION)
    wait_until(app, lambda: len(answered) == 2)
    snap("thought")

    session_id = window.session_id
    window.new_session()
    assert session_id is not None
    restored: list[int] = []
    window.session_restored.connect(restored.append)
    window.open_session(session_id)
    wait_until(app, lambda: bool(restored))
    snap("reopened")
    strings.append(("minimum width", str(window.minimumSizeHint().width())))

    dialog = SettingsDialog(settings, current_data_dir=str(home), parent=window)
    strings.extend(("settings: " + where, text) for where, text in widget_strings(dialog))
    dialog.deleteLater()

    # The keyboard help is a modal message box: read it once it is open, then close it.
    def read_help() -> None:
        box = next(w for w in app.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
        strings.extend(("help: " + where, text) for where, text in widget_strings(box))
        box.accept()

    QTimer.singleShot(200, read_help)
    window._show_shortcuts()
    for dialog_widget in app.topLevelWidgets():
        if isinstance(dialog_widget, QDialog) and dialog_widget.isVisible():
            dialog_widget.close()
    window.shutdown()
    out_path.write_text(json.dumps(strings, ensure_ascii=False, indent=1), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--qm-dir", type=Path, required=True)
    parser.add_argument("--language", default="")
    args = parser.parse_args()
    walk(args.out, qm_dir=args.qm_dir, language=args.language)
    return 0


if __name__ == "__main__":
    sys.exit(main())
