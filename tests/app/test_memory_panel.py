"""The Memory panel and the gauge's memory segment in the real window (fake backend).

An answer becomes an entry the panel lists with its cost in tokens; the gauge draws the
memory as its own segment of exactly the tokens the next prompt carries; pin, the window's
switch and forget go through the model lane's library and show at once.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from engine.library import Library
from engine.memory import MEMORY_INTRO
from tests.app.test_conversation import _load

QUESTION = "What is the vault access code?"
SCRIPTED = 'The code is 482913: "The vault access code is 482913." [handbook.pdf p.3]'


def _ask(qtbot, window, question: str) -> None:
    window.conversation.question.setPlainText(question)
    with qtbot.waitSignal(window.answered, timeout=60000):
        window.conversation.ask_button.click()


def test_memory_panel_lists_pins_switches_and_forgets(
    qtbot, make_window, fake_backend, fact_pdf: Path, home: Path
) -> None:
    window = make_window()
    panel, gauge = window.memory_panel, window.gauge
    _load(qtbot, window, [fact_pdf])
    assert panel.entry_ids() == [] and gauge.numbers()["memory_tokens"] == 0
    fake_backend.enqueue(SCRIPTED)
    _ask(qtbot, window, QUESTION)

    # The answer is remembered: listed with its tokens, and drawn as the gauge's memory segment.
    qtbot.waitUntil(lambda: len(panel.entry_ids()) == 1, timeout=30000)
    [entry_id] = panel.entry_ids()
    tokens = panel.layout_shown.n_tokens
    assert tokens > 0 and gauge.numbers()["memory_tokens"] == tokens
    assert int(panel.tree.topLevelItem(0).text(2).replace(",", "")) == panel.layout_shown.costs[entry_id]
    assert "memory" in gauge.window_text.text()
    _ask(qtbot, window, "And where is it written?")
    prompt = fake_backend.prompts[-1]
    assert MEMORY_INTRO.strip() in prompt.text and QUESTION in prompt.text.split("Question:")[0]

    # Pin the first entry from the panel.
    qtbot.waitUntil(lambda: len(panel.entry_ids()) == 2, timeout=30000)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    panel.pin_button.click()
    with Library(home / "longread.db") as library:
        qtbot.waitUntil(lambda: library.memory.get(entry_id).pinned, timeout=30000)
    qtbot.waitUntil(lambda: panel.pin_button.text() == "Unpin", timeout=30000)

    # The switch turns memory off: the gauge's segment goes and the next prompt has none.
    panel.switch.setChecked(False)
    qtbot.waitUntil(lambda: gauge.numbers().get("memory_tokens") == 0, timeout=30000)
    _ask(qtbot, window, "Third question?")
    assert MEMORY_INTRO.strip() not in fake_backend.prompts[-1].text
    panel.switch.setChecked(True)
    qtbot.waitUntil(lambda: len(panel.entry_ids()) == 3, timeout=30000)

    # Forget asks once more on the same button, then the entry is gone everywhere.
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    panel.forget_button.click()
    assert panel.entry_ids()[0] == entry_id and "again" in panel.forget_button.text()
    panel.forget_button.click()
    qtbot.waitUntil(lambda: entry_id not in panel.entry_ids(), timeout=30000)
    with Library(home / "longread.db") as library:
        assert entry_id not in [e.id for e in library.memory.entries()]
    assert panel.tree.topLevelItem(0).checkState(3) == Qt.CheckState.Checked
