"""The Memory panel (issue 15): what earlier sessions found, and what the next question carries.

A switch turns memory on or off for the window; a list shows the entries the documents
carry (entries tied to them and the pinned ones, oldest first), each with its date, where
it came from, whether it is pinned, the tokens it costs and whether it goes in or was left
out (the window or the measured effective context could not hold it). Ticking entries is
the user's own pick; Pin, Save (an edit) and Forget act on the selected one (Forget asks
once more on the same button: no modal dialog). The panel only draws
``engine.memory.MemoryLayout`` (from the gauge's ``CorpusMeasure``) and emits what the user
asked for; the window runs it on the model lane (``Library.memory``).

Signals:
    enabled_changed(bool): the switch was flipped.
    pick_changed(object): the user ticked or unticked entries (a list of ids; None: default).
    pin_requested(int, bool): pin or unpin an entry.
    edit_requested(int, str): replace an entry's text.
    forget_requested(int): forget an entry for good.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.memory import MemoryEntry, MemoryLayout

ID_ROLE = Qt.ItemDataRole.UserRole


class MemoryPanel(QWidget):
    """Memory entries with their cost in tokens; switch, pick, pin, edit, forget."""

    enabled_changed = Signal(bool)
    pick_changed = Signal(object)
    pin_requested = Signal(int, bool)
    edit_requested = Signal(int, str)
    forget_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_shown = MemoryLayout()
        self._entries: dict[int, MemoryEntry] = {}
        self._filling = False
        self._confirm_forget: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        heading = QLabel(self.tr("Memory"))
        heading.setStyleSheet("font-size: 13pt; font-weight: 600;")
        top.addWidget(heading)
        top.addStretch(1)
        self.switch = QCheckBox(self.tr("Carry what earlier sessions found"))
        self.switch.setChecked(True)
        self.switch.toggled.connect(self._on_switch_toggled)
        top.addWidget(self.switch)
        layout.addLayout(top)
        self.summary = QLabel(self.tr("No memory yet: finished answers are remembered here."))
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: #4b5563;")
        layout.addWidget(self.summary)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels([self.tr("Date"), self.tr("Entry"), self.tr("Tokens"), self.tr("In")])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 90)
        self.tree.setColumnWidth(1, 260)
        self.tree.itemChanged.connect(self._on_tree_item_changed)
        self.tree.currentItemChanged.connect(self._on_tree_current_item_changed)
        layout.addWidget(self.tree, 1)
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText(self.tr("Select an entry to read or edit it."))
        self.editor.setMaximumHeight(90)
        layout.addWidget(self.editor)
        buttons = QHBoxLayout()
        self.pin_button = QPushButton(self.tr("Pin"))
        self.pin_button.clicked.connect(self._on_pin_button_clicked)
        self.save_button = QPushButton(self.tr("Save edit"))
        self.save_button.clicked.connect(self._on_save_button_clicked)
        self.forget_button = QPushButton(self.tr("Forget"))
        self.forget_button.clicked.connect(self._on_forget_button_clicked)
        for button in (self.pin_button, self.save_button, self.forget_button):
            button.setEnabled(False)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

    # -- inputs -------------------------------------------------------------------

    def show_memory(self, memory: MemoryLayout) -> None:
        """Show the entries a question would carry now and what each costs."""
        current = self.selected_id()
        self.layout_shown = memory
        entries = sorted([*memory.included, *memory.left_out], key=lambda e: (e.created_at, e.id))
        self._entries = {e.id: e for e in entries}
        included = {e.id for e in memory.included}
        self._filling = True
        self.tree.clear()
        for entry in entries:
            item = QTreeWidgetItem(
                [
                    entry.date,
                    ("📌 " if entry.pinned else "") + entry.title(60),
                    f"{memory.costs.get(entry.id, 0):,}",
                    self.tr("in") if entry.id in included else self.tr("left out"),
                ]
            )
            item.setData(0, ID_ROLE, entry.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(3, Qt.CheckState.Checked if entry.id in included else Qt.CheckState.Unchecked)
            item.setToolTip(1, entry.render().strip())
            self.tree.addTopLevelItem(item)
            if entry.id == current:
                self.tree.setCurrentItem(item)
        self._filling = False
        if not entries:
            self.summary.setText(
                self.tr("Memory is off.")
                if not self.switch.isChecked()
                else self.tr("No memory for these documents yet: finished answers are remembered here.")
            )
        else:
            text = self.tr("{n} of {total} entries go in: {tokens} tokens.").format(
                n=len(memory.included), total=len(entries), tokens=f"{memory.n_tokens:,}"
            )
            if memory.left_out:
                text += " " + memory.describe_left_out() + " " + self.tr("Tick the ones you want instead.")
            self.summary.setText(text)
        self._update_buttons()

    def selected_id(self) -> int | None:
        item = self.tree.currentItem()
        return int(item.data(0, ID_ROLE)) if item is not None else None

    def items(self) -> list[QTreeWidgetItem]:
        """The rows, in order."""
        rows = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in rows if item is not None]

    def entry_ids(self) -> list[int]:
        """The ids listed, in order (tests read them)."""
        return [int(item.data(0, ID_ROLE)) for item in self.items()]

    # -- slots --------------------------------------------------------------------

    def _on_switch_toggled(self, checked: bool) -> None:
        self.enabled_changed.emit(checked)

    def _on_tree_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 3:
            return
        picked = [int(row.data(0, ID_ROLE)) for row in self.items() if row.checkState(3) == Qt.CheckState.Checked]
        self.pick_changed.emit(picked)

    def _on_tree_current_item_changed(self, current: QTreeWidgetItem | None, _previous: object) -> None:
        self._confirm_forget = None
        entry = self._entries.get(int(current.data(0, ID_ROLE))) if current is not None else None
        self.editor.setPlainText(entry.answer if entry is not None else "")
        self._update_buttons()

    def _on_pin_button_clicked(self) -> None:
        entry_id = self.selected_id()
        if entry_id is not None:
            self.pin_requested.emit(entry_id, not self._entries[entry_id].pinned)

    def _on_save_button_clicked(self) -> None:
        entry_id = self.selected_id()
        text = self.editor.toPlainText().strip()
        if entry_id is not None and text:
            self.edit_requested.emit(entry_id, text)

    def _on_forget_button_clicked(self) -> None:
        entry_id = self.selected_id()
        if entry_id is None:
            return
        if self._confirm_forget != entry_id:
            self._confirm_forget = entry_id
            self.forget_button.setText(self.tr("Forget for good? Click again"))
            return
        self._confirm_forget = None
        self.forget_button.setText(self.tr("Forget"))
        self.forget_requested.emit(entry_id)

    def _update_buttons(self) -> None:
        entry_id = self.selected_id()
        entry = self._entries.get(entry_id) if entry_id is not None else None
        for button in (self.pin_button, self.save_button, self.forget_button):
            button.setEnabled(entry is not None)
        self.pin_button.setText(self.tr("Unpin") if entry is not None and entry.pinned else self.tr("Pin"))
        if self._confirm_forget is None:
            self.forget_button.setText(self.tr("Forget"))
