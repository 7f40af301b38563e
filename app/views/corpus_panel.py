"""The corpus panel: the empty-state drop zone, then the documents in reading order.

Each file the user adds gets a row at once (in the order dropped) that shows a busy bar
while it is read off the main thread, then its pages and tokens, or the error that
stopped it (on its own row: the other files carry on). Ready documents can be moved up
and down or removed; the total sits underneath. The panel holds rows, not engine
objects: ``corpus()`` builds the ``Corpus`` of the ready rows in order.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.i18n import format_duration
from engine.corpus import Corpus, Document

_row_ids = itertools.count(1)
ERROR_COLOR = QColor("#b3261e")


@dataclass
class DocRow:
    """One file in the panel and how far reading it got."""

    id: int
    path: Path
    state: str = "reading"  # reading | ready | failed | locked (an encrypted PDF waiting for its password)
    doc: Document | None = None
    tokens: int | None = None
    message: str = ""
    pages_done: int = 0
    pages_total: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.doc.name if self.doc is not None else self.path.name


class DropZone(QFrame):
    """The empty state: what to do, in one sentence, and two buttons.

    Signals:
        open_requested(), sample_requested()
    """

    open_requested = Signal()
    sample_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setStyleSheet("#dropZone { border: 2px dashed #8a94a6; border-radius: 12px; background: #f6f8fb; }")
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        title = QLabel(self.tr("Drop PDFs or folders here, or press Ctrl+O"))
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        title.setStyleSheet("font-size: 17pt; font-weight: 600; color: #1f2937; border: none;")
        layout.addWidget(title)
        hint = QLabel(
            self.tr(
                "Longread reads every page of your documents with a model on this computer: "
                "nothing is uploaded. PDF, Word (.docx), EPUB, HTML, RTF, text and Markdown files; "
                "a dropped .gguf file becomes the model."
            )
        )
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #4b5563; border: none;")
        layout.addWidget(hint)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.open_button = QPushButton(self.tr("Open documents…"))
        self.open_button.clicked.connect(self.open_requested)
        self.sample_button = QPushButton(self.tr("Try the sample document"))
        self.sample_button.clicked.connect(self.sample_requested)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.sample_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(3)


class _DocTree(QTreeWidget):
    """The document list. Signals: reordered(): rows were dragged into a new order."""

    reordered = Signal()

    def dropEvent(self, event: QDropEvent) -> None:
        super().dropEvent(event)
        if event.source() is self:
            self.reordered.emit()


class CorpusPanel(QWidget):
    """Documents in reading order, with pages, tokens and per-file progress or errors.

    Signals:
        corpus_changed(): the ready documents or their order changed.
        open_requested(): the user wants the file dialog.
        sample_requested(): the user wants the bundled sample document.
        unlock_requested(row_id): the user double-clicked (or pressed Enter on) a locked PDF.
    """

    corpus_changed = Signal()
    open_requested = Signal()
    sample_requested = Signal()
    unlock_requested = Signal(int)

    COLUMNS = ("Document", "Pages", "Tokens", "Status")  # English names; shown as ``column_names()``

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[DocRow] = []
        self._items: dict[int, QTreeWidgetItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel(self.tr("Documents"))
        heading.setStyleSheet("font-size: 13pt; font-weight: 600;")
        layout.addWidget(heading)
        self.stack = QStackedWidget()
        self.drop_zone = DropZone()
        self.drop_zone.open_requested.connect(self.open_requested)
        self.drop_zone.sample_requested.connect(self.sample_requested)
        self.stack.addWidget(self.drop_zone)

        listing = QWidget()
        list_layout = QVBoxLayout(listing)
        list_layout.setContentsMargins(0, 0, 0, 0)
        self.tree = _DocTree()
        self.tree.setColumnCount(len(self.COLUMNS))
        self.tree.setHeaderLabels([self.tr("Document"), self.tr("Pages"), self.tr("Tokens"), self.tr("Status")])
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(True)
        self.tree.setUniformRowHeights(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(3, 150)
        self.tree.itemSelectionChanged.connect(self._on_tree_selection_changed)
        self.tree.itemActivated.connect(self._on_tree_item_activated)
        # Rows can be dragged into a new reading order; the drop is applied to ``rows``.
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.tree.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.tree.reordered.connect(self._on_tree_reordered)
        list_layout.addWidget(self.tree)
        self.total_label = QLabel()
        self.total_label.setStyleSheet("font-weight: 600;")
        list_layout.addWidget(self.total_label)
        buttons = QHBoxLayout()
        self.add_button = QPushButton(self.tr("Add…"))
        self.add_button.setToolTip(self.tr("Add documents (Ctrl+O), or drop them on the window"))
        self.add_button.clicked.connect(self.open_requested)
        self.up_button = QPushButton(self.tr("Move up"))
        self.up_button.setToolTip(self.tr("Read this document earlier (Alt+Up)"))
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button = QPushButton(self.tr("Move down"))
        self.down_button.setToolTip(self.tr("Read this document later (Alt+Down)"))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        self.remove_button = QPushButton(self.tr("Remove"))
        self.remove_button.setToolTip(self.tr("Take this document out of the corpus (Delete)"))
        self.remove_button.clicked.connect(self.remove_selected)
        for button in (self.add_button, self.up_button, self.down_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        list_layout.addLayout(buttons)
        self.stack.addWidget(listing)
        layout.addWidget(self.stack)

        QShortcut(QKeySequence("Alt+Up"), self.tree, lambda: self.move_selected(-1))
        QShortcut(QKeySequence("Alt+Down"), self.tree, lambda: self.move_selected(1))
        QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.tree, self.remove_selected)
        self._refresh()

    # -- rows ---------------------------------------------------------------------

    def add_pending(self, path: Path) -> int:
        """Add a row for a file being read; return its id."""
        row = DocRow(next(_row_ids), path)
        self.rows.append(row)
        self._refresh()
        return row.id

    def add_failed(self, path: Path, message: str) -> int:
        """Add a row for a file that cannot be read at all."""
        row_id = self.add_pending(path)
        self.set_failed(row_id, message)
        return row_id

    def set_read(self, row_id: int, doc: Document) -> None:
        row = self._row(row_id)
        if row is None:
            return
        if any(r.doc is not None and r.doc.sha256 == doc.sha256 for r in self.rows if r is not row):
            row.state, row.doc, row.message = (
                "failed",
                doc,
                self.tr("Already in the corpus: the same file is listed above."),
            )
            self._refresh()
            return
        row.state, row.doc, row.message = "ready", doc, ""
        self._refresh()
        self.corpus_changed.emit()

    def set_progress(self, row_id: int, done: int, total: int) -> None:
        """Show a PDF's pages read so far, with the time left at the pace so far."""
        row = self._row(row_id)
        item = self._items.get(row_id)
        if row is None or row.state != "reading" or item is None:
            return
        row.pages_done, row.pages_total = done, total
        bar = self.tree.itemWidget(item, 3)
        if isinstance(bar, QProgressBar):
            _draw_progress(bar, row)

    def set_failed(self, row_id: int, message: str) -> None:
        row = self._row(row_id)
        if row is None:
            return
        row.state, row.message = "failed", message
        self._refresh()

    def set_locked(self, row_id: int, message: str) -> None:
        """Mark a row as an encrypted PDF that waits for its password."""
        row = self._row(row_id)
        if row is None:
            return
        row.state, row.message = "locked", message
        self._refresh()

    def set_reading(self, row_id: int) -> None:
        """Read a row again (a locked PDF once its password is given)."""
        row = self._row(row_id)
        if row is None:
            return
        row.state, row.message, row.pages_done, row.pages_total = "reading", "", 0, 0
        row.started = time.monotonic()
        self._refresh()

    def row(self, row_id: int) -> DocRow | None:
        """The row with this id, if it is still listed."""
        return self._row(row_id)

    def set_tokens(self, corpus: Corpus, counts: tuple[int, ...]) -> None:
        """Show each document's token count (``counts`` follows ``corpus``'s order)."""
        by_sha = {d.sha256: n for d, n in zip(corpus.documents, counts, strict=True)}
        for row in self.rows:
            if row.state == "ready" and row.doc is not None:
                row.tokens = by_sha.get(row.doc.sha256, row.tokens)
        self._refresh()

    def set_documents(self, docs: tuple[Document, ...]) -> None:
        """Replace everything with these ready documents (a reopened session)."""
        self.rows = [DocRow(next(_row_ids), Path(d.path or d.name), "ready", d) for d in docs]
        self._refresh()
        self.corpus_changed.emit()

    def clear(self) -> None:
        self.rows = []
        self._refresh()
        self.corpus_changed.emit()

    def corpus(self) -> Corpus:
        return Corpus(tuple(r.doc for r in self.rows if r.state == "ready" and r.doc is not None))

    @property
    def reading(self) -> bool:
        return any(r.state == "reading" for r in self.rows)

    def move_selected(self, step: int) -> None:
        row = self._selected()
        if row is None:
            return
        i = self.rows.index(row)
        j = i + step
        if not 0 <= j < len(self.rows):
            return
        self.rows[i], self.rows[j] = self.rows[j], self.rows[i]
        self._refresh(select=row.id)
        if row.state == "ready" or self.rows[i].state == "ready":
            self.corpus_changed.emit()

    def remove_selected(self) -> None:
        row = self._selected()
        if row is None:
            return
        was_ready = row.state == "ready"
        index = self.rows.index(row)
        self.rows.remove(row)
        following = self.rows[min(index, len(self.rows) - 1)].id if self.rows else None
        self._refresh(select=following)
        if was_ready:
            self.corpus_changed.emit()

    # -- drawing ------------------------------------------------------------------

    def _row(self, row_id: int) -> DocRow | None:
        return next((r for r in self.rows if r.id == row_id), None)

    def _selected(self) -> DocRow | None:
        items = self.tree.selectedItems()
        if not items:
            return None
        return self._row(int(items[0].data(0, Qt.ItemDataRole.UserRole)))

    def _on_tree_selection_changed(self) -> None:
        self._update_buttons()

    def _on_tree_item_activated(self, item: QTreeWidgetItem, _column: int) -> None:
        row = self._row(int(item.data(0, Qt.ItemDataRole.UserRole)))
        if row is not None and row.state == "locked":
            self.unlock_requested.emit(row.id)

    def _on_tree_reordered(self) -> None:
        # The tree moved an item by drag and drop: take the new order from the tree,
        # once the tree is out of its drop handler.
        QTimer.singleShot(0, self._apply_tree_order)

    def _apply_tree_order(self) -> None:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        order = [int(item.data(0, Qt.ItemDataRole.UserRole)) for item in items if item is not None]
        by_id = {r.id: r for r in self.rows}
        if sorted(order) != sorted(by_id) or order == [r.id for r in self.rows]:
            self._refresh()
            return
        before = [r.id for r in self.rows if r.state == "ready"]
        self.rows = [by_id[i] for i in order]
        moved = self._selected()
        self._refresh(select=moved.id if moved is not None else None)
        if [r.id for r in self.rows if r.state == "ready"] != before:
            self.corpus_changed.emit()

    def _update_buttons(self) -> None:
        row = self._selected()
        index = self.rows.index(row) if row is not None else -1
        self.up_button.setEnabled(index > 0)
        self.down_button.setEnabled(0 <= index < len(self.rows) - 1)
        self.remove_button.setEnabled(row is not None)

    def _refresh(self, *, select: int | None = None) -> None:
        if select is None:
            current = self._selected()
            select = current.id if current is not None else None
        self.stack.setCurrentIndex(1 if self.rows else 0)
        self.tree.clear()
        self._items = {}
        for row in self.rows:
            item = QTreeWidgetItem()
            item.setData(0, Qt.ItemDataRole.UserRole, row.id)
            item.setText(0, row.name)
            item.setToolTip(0, str(row.path))
            if row.state == "ready" and row.doc is not None:
                item.setText(1, f"{row.doc.n_pages:,}")
                item.setText(2, f"{row.tokens:,}" if row.tokens is not None else self.tr("counting…"))
                if row.doc.kind != "pdf":
                    item.setText(3, self.tr("Ready (text pages of ~3,000 characters)"))
                else:
                    item.setText(3, self.tr("Ready"))
                item.setToolTip(3, self.tr("Text files have no pages: Longread cuts them every ~3,000 characters."))
            elif row.state == "failed":
                item.setText(0, f"{row.name}\n{row.message}")
                item.setToolTip(0, row.message)
                item.setText(3, self.tr("Not added"))
                for col in range(len(self.COLUMNS)):
                    item.setForeground(col, QBrush(ERROR_COLOR))
            elif row.state == "locked":
                item.setText(0, f"{row.name}\n" + self.tr("Double-click to unlock"))
                item.setToolTip(0, f"{row.message} " + self.tr("Double-click (or press Enter) to enter it."))
                item.setText(3, self.tr("Needs a password"))
                item.setForeground(3, QBrush(ERROR_COLOR))
            # Items are dragged to reorder, never dropped onto one another.
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsDropEnabled)
            self._items[row.id] = item
            self.tree.addTopLevelItem(item)
            if row.state == "reading":
                bar = QProgressBar()
                bar.setTextVisible(True)
                bar.setMaximumHeight(18)
                _draw_progress(bar, row)
                self.tree.setItemWidget(item, 3, bar)
            if row.id == select:
                item.setSelected(True)
        ready = [r for r in self.rows if r.state == "ready" and r.doc is not None]
        pages = sum(r.doc.n_pages for r in ready if r.doc is not None)
        counted = [r.tokens for r in ready if r.tokens is not None]
        if len(counted) == len(ready) and ready:
            tokens = self.tr("{tokens} tokens").format(tokens=f"{sum(counted):,}")
        else:
            tokens = self.tr("tokens: counting…")
        reading = sum(1 for r in self.rows if r.state == "reading")
        failed = sum(1 for r in self.rows if r.state == "failed")
        locked = sum(1 for r in self.rows if r.state == "locked")
        if len(ready) == 1:
            total = self.tr("Total: %n document", "", len(ready))
        else:
            total = self.tr("Total: %n documents", "", len(ready))
        pages_text = self.tr("%n page", "", pages) if pages == 1 else self.tr("%n pages", "", pages)
        parts = [total, pages_text.replace(str(pages), f"{pages:,}", 1)]
        if ready:
            parts.append(tokens)
        if reading:
            parts.append(self.tr("%n still reading", "", reading))
        if failed:
            parts.append(self.tr("%n not added", "", failed))
        if locked == 1:
            parts.append(self.tr("%n needs a password", "", locked))
        elif locked:
            parts.append(self.tr("%n need a password", "", locked))
        self.total_label.setText(" · ".join(parts))
        self._update_buttons()


def _draw_progress(bar: QProgressBar, row: DocRow) -> None:
    if row.pages_total <= 0:
        bar.setRange(0, 0)  # nothing reported yet (text formats report nothing): busy
        bar.setFormat(QCoreApplication.translate("CorpusPanel", "Reading…"))
        return
    bar.setRange(0, row.pages_total)
    bar.setValue(row.pages_done)
    elapsed = time.monotonic() - row.started
    left = ""
    if row.pages_done and row.pages_done < row.pages_total:
        eta = elapsed / row.pages_done * (row.pages_total - row.pages_done)
        left = QCoreApplication.translate("CorpusPanel", ", ~{time} left").format(time=format_duration(eta))
    page = QCoreApplication.translate("CorpusPanel", "page {done}/{total}").format(
        done=row.pages_done, total=row.pages_total
    )
    bar.setFormat(page + left)
