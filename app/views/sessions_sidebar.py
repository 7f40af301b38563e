"""The sessions sidebar: every session, newest first, with search, rename and delete/undo.

The sidebar shows rows it is given and says what the user wants; the main window asks
the engine's ``Library`` for them on the disk lane. A deleted session disappears at once and an "Undo" bar
stays for ``UNDO_MS``; after that the main window purges it.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.store.db import SessionRow

UNDO_MS = 10000
SEARCH_DELAY_MS = 200


class SessionsSidebar(QWidget):
    """Sessions list with search.

    Signals:
        search_changed(str): the search text changed (after a short pause).
        session_opened(int): the user opened a session.
        rename_requested(int, str): new title for a session.
        delete_requested(int): the user deleted a session (undo is offered).
        undo_requested(int): the user undid a deletion.
        purge_due(int): the undo time ran out for a deleted session.
        new_requested(): the user wants a fresh session.
    """

    search_changed = Signal(str)
    session_opened = Signal(int)
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    undo_requested = Signal(int)
    purge_due = Signal(int)
    new_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.current_id: int | None = None
        self._deleted: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel(self.tr("Sessions"))
        heading.setStyleSheet("font-size: 13pt; font-weight: 600;")
        layout.addWidget(heading)
        self.new_button = QPushButton(self.tr("New session"))
        self.new_button.setToolTip(self.tr("Start again with no documents (Ctrl+N)"))
        self.new_button.clicked.connect(self.new_requested)
        layout.addWidget(self.new_button)
        self.search = QLineEdit()
        self.search.setPlaceholderText(self.tr("Search questions and answers"))
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(lambda: self.search_changed.emit(self.search.text()))
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._on_list_context_menu_requested)
        self.list.itemActivated.connect(self._on_list_item_activated)
        self.list.itemClicked.connect(self._on_list_item_activated)
        layout.addWidget(self.list, 1)
        self.empty = QLabel(self.tr("Your questions and answers are kept here, newest first."))
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: #6b7280;")
        layout.addWidget(self.empty)

        self.undo_bar = QWidget()
        undo_layout = QHBoxLayout(self.undo_bar)
        undo_layout.setContentsMargins(0, 0, 0, 0)
        self.undo_label = QLabel(self.tr("Session deleted."))
        self.undo_button = QPushButton(self.tr("Undo"))
        self.undo_button.clicked.connect(self._on_undo_button_clicked)
        undo_layout.addWidget(self.undo_label, 1)
        undo_layout.addWidget(self.undo_button)
        self.undo_bar.setVisible(False)
        layout.addWidget(self.undo_bar)
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(UNDO_MS)
        self._undo_timer.timeout.connect(self._on_undo_timer_timeout)

    def show_sessions(self, rows: list[tuple[SessionRow, int]]) -> None:
        """Show ``(session, number of questions)`` rows, in the order given; a question is
        a run of any kind (an ask, a deep-thinking run, a read in waves)."""
        self.list.clear()
        for session, n_questions in rows:
            when = session.updated_at[:16].replace("T", " ")
            if n_questions == 1:
                questions = self.tr("%n question", "", n_questions)
            else:
                questions = self.tr("%n questions", "", n_questions)
            item = QListWidgetItem(f"{session.title}\n{when} · {questions}")
            item.setData(Qt.ItemDataRole.UserRole, session.id)
            item.setToolTip(session.title)
            self.list.addItem(item)
            if session.id == self.current_id:
                item.setSelected(True)
        searching = bool(self.search.text().strip())
        self.empty.setVisible(not rows)
        self.empty.setText(
            self.tr("No session matches.")
            if searching
            else self.tr("Your questions and answers are kept here, newest first.")
        )

    def session_ids(self) -> list[int]:
        return [int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())]

    def delete_session(self, session_id: int) -> None:
        """Delete with undo (also what the context menu does)."""
        if self._deleted is not None:
            self._undo_timer.stop()
            self.purge_due.emit(self._deleted)
        self._deleted = session_id
        for i in range(self.list.count()):
            if int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) == session_id:
                self.list.takeItem(i)
                break
        self.undo_bar.setVisible(True)
        self._undo_timer.start()
        self.delete_requested.emit(session_id)

    def undo_delete(self) -> None:
        self._on_undo_button_clicked()

    def _on_undo_button_clicked(self) -> None:
        if self._deleted is None:
            return
        session_id, self._deleted = self._deleted, None
        self._undo_timer.stop()
        self.undo_bar.setVisible(False)
        self.undo_requested.emit(session_id)

    def _on_undo_timer_timeout(self) -> None:
        self.undo_bar.setVisible(False)
        if self._deleted is not None:
            session_id, self._deleted = self._deleted, None
            self.purge_due.emit(session_id)

    def _on_list_item_activated(self, item: QListWidgetItem) -> None:
        self.session_opened.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _on_list_context_menu_requested(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        session_id = int(item.data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        menu.addAction(self.tr("Open"), lambda: self.session_opened.emit(session_id))
        menu.addAction(self.tr("Rename…"), lambda: self._rename(session_id, item.toolTip()))
        menu.addAction(self.tr("Delete"), lambda: self.delete_session(session_id))
        menu.exec(self.list.mapToGlobal(pos))

    def _rename(self, session_id: int, title: str) -> None:
        new, ok = QInputDialog.getText(self, self.tr("Rename session"), self.tr("Title:"), text=title)
        if ok and new.strip():
            self.rename_requested.emit(session_id, new.strip())
