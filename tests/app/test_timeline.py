"""Think deeply and Read in waves from the window, with the real SmolLM2: the timeline
rows, the progress line, the stored steps and waves, and the Markdown export."""

from __future__ import annotations

from pathlib import Path

from app.settings import AppSettings
from engine.reading.deep import list_deep, load_deep
from engine.reading.waves import list_reads
from engine.store import open_store
from tests.app.test_conversation import _load
from tests.conftest import fact_pages, write_pdf

QUESTION = "What is the vault access code?"


def _deep_window(qtbot, make_window, app_settings: AppSettings, tmp_path: Path) -> object:
    """A window with a 2-page PDF loaded, a 1,024-token window and 16-token steps."""
    app_settings.n_ctx = 1024
    window = make_window()
    window.step_tokens = 16
    _load(qtbot, window, [write_pdf(tmp_path / "h.pdf", fact_pages(2, fact_page=2))])
    return window


def _start(window, mode: str) -> None:
    view = window.conversation
    view.mode_box.setCurrentText(mode)
    view.question.setPlainText(QUESTION)
    view.ask_button.click()
    assert window.asking and not view.mode_box.isEnabled()


def _ask(qtbot, window, mode: str) -> object:
    view = window.conversation
    results: list[object] = []
    window.answered.connect(results.append)
    _start(window, mode)
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
    window = _deep_window(qtbot, make_window, app_settings, tmp_path)
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


def test_a_stopped_deep_session_reopens_as_its_timeline_and_resumes(
    qtbot, make_window, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    window = _deep_window(qtbot, make_window, app_settings, tmp_path)
    _start(window, "Think deeply")
    qtbot.waitUntil(lambda: window.timeline.statuses()[:2] == ["done", "done"], timeout=600000)
    with qtbot.waitSignal(window.ask_cancelled, timeout=60000):
        window.cancel_ask()

    store = open_store(home / "longread.db")
    try:
        (session,) = store.list_sessions()
        (stopped,) = list_deep(store, session.id)
    finally:
        store.close()
    assert stopped.status == "cancelled"
    done_before = [(s.position, s.text, s.finished_at) for s in stopped.steps if s.status == "done"]
    assert len(done_before) >= 2

    # A fresh window (as after a restart) lists the session with its one question and
    # reopens it as the timeline it left, with Resume.
    window.shutdown()
    again = make_window()
    qtbot.waitUntil(lambda: again.sidebar.list.count() == 1, timeout=30000)
    assert "1 question" in again.sidebar.list.item(0).text()
    with qtbot.waitSignal(again.session_restored, timeout=30000):
        again.open_session(session.id)
    assert again.timeline.isVisible() and again.timeline.resume_button.isVisible()
    assert again.timeline.statuses() == [s.status for s in stopped.steps]
    assert f"Stopped after {len(done_before)} of 5 steps" in again.timeline.title.text()
    assert again.conversation.turns[-1].question == QUESTION
    assert again.conversation.turns[-1].status == "cancelled"

    results: list[object] = []
    again.answered.connect(results.append)
    again.timeline.resume_button.click()
    assert again.asking and not again.timeline.resume_button.isVisible()
    qtbot.waitUntil(lambda: bool(results) or not again.asking, timeout=600000)
    assert results, (again.conversation.status.text(), again.timeline.statuses())
    qtbot.waitUntil(lambda: again.timeline.statuses() == ["done"] * 5)
    store = open_store(home / "longread.db")
    try:
        finished = load_deep(store, stopped.id)
    finally:
        store.close()
    assert finished is not None and finished.status == "done"
    # Steps finished before the stop were kept, not redone.
    assert [(s.position, s.text, s.finished_at) for s in finished.steps[: len(done_before)]] == done_before
    assert again.conversation.turns[-1].answer == finished.answer
    assert [t.question for t in again.conversation.turns] == [QUESTION]  # the stopped turn was replaced

    # A new session hides the timeline.
    again.new_session()
    assert not again.timeline.isVisible()
