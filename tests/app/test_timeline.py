"""Think deeply and Read in waves from the window, with the real SmolLM2: the timeline
rows, the progress line, the stored steps and waves, and the Markdown export."""

from __future__ import annotations

from pathlib import Path

from app.settings import AppSettings
from engine.reading.deep import load_deep
from engine.reading.waves import list_reads
from engine.store import open_store
from tests.app.test_conversation import _load
from tests.conftest import fact_pages, write_pdf

QUESTION = "What is the vault access code?"


def _ask(qtbot, window, mode: str) -> object:
    view = window.conversation
    view.mode_box.setCurrentText(mode)
    view.question.setPlainText(QUESTION)
    results: list[object] = []
    window.answered.connect(results.append)
    view.ask_button.click()
    assert window.asking and not view.mode_box.isEnabled()
    try:
        qtbot.waitUntil(lambda: bool(results) or not window.asking, timeout=600000)
    except Exception:
        print("DIAG", view.status.text(), window.timeline.statuses(), [r.text[:40] for r in window.timeline.rows])
        raise
    assert results, (view.status.text(), window.timeline.statuses())
    return results[0]


def test_think_deeply_shows_five_steps_stores_them_and_exports(
    qtbot, make_window, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    app_settings.n_ctx = 1024
    window = make_window()
    window.step_tokens = 16
    _load(qtbot, window, [write_pdf(tmp_path / "h.pdf", fact_pages(2, fact_page=2))])
    result = _ask(qtbot, window, "Think deeply")

    qtbot.waitUntil(lambda: window.timeline.statuses() == ["done"] * 5)
    assert [r.heading.split(":")[0] for r in window.timeline.rows] == [f"Step {i}" for i in range(1, 6)]
    store = open_store(home / "longread.db")
    try:
        deep = load_deep(store, result.deep_id)
    finally:
        store.close()
    assert deep is not None and [s.status for s in deep.steps] == ["done"] * 5
    assert [s.text for s in deep.steps] == [r.text for r in window.timeline.rows]
    assert window.conversation.turns[-1].answer == result.answer

    out = tmp_path / "session.md"
    with qtbot.waitSignal(window.exported, timeout=60000):
        window.export_session(out)
    assert QUESTION in out.read_text(encoding="utf-8")


def test_read_in_waves_shows_wave_progress_and_a_row_per_wave(
    qtbot, make_window, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    app_settings.n_ctx = 1024
    window = make_window()
    window.note_tokens = 16
    _load(qtbot, window, [write_pdf(tmp_path / "h.pdf", fact_pages(12, fact_page=9))])
    lines: list[str] = []
    original = window.conversation.status.setText
    window.conversation.status.setText = lambda text: (lines.append(text), original(text))[1]  # type: ignore[method-assign]
    result = _ask(qtbot, window, "Read in waves")

    n = len(result.waves)
    assert n >= 2
    assert any(line.startswith(f"Wave 1 of {n}") for line in lines), lines
    qtbot.waitUntil(lambda: window.timeline.statuses() == ["done"] * n)
    store = open_store(home / "longread.db")
    try:
        reads = list_reads(store, result.session_id)
    finally:
        store.close()
    assert [[w.status for w in r.waves] for r in reads] == [["done"] * n]
