"""Think deeply and Read in waves from the window: the timeline rows, the progress line,
the stored runs and steps, resuming a stopped run through ``Library.resume``, and the
Markdown export. With the fake backend (scripted steps, fast) and with the real SmolLM2
(``slow``)."""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import pytest

from app.settings import AppSettings
from engine.library import Library
from engine.runs import Run, RunKind, Status
from tests.app.conftest import library_factory
from tests.app.test_conversation import _load
from tests.conftest import fact_pages, write_pdf

QUESTION = "What is the vault access code?"
STEPS = (
    "Look at page 2 of h.pdf.",
    'It says "code is 482913." [h.pdf p.2]',  # at most 16 tokens each: window.step_tokens
    "The code is 482913.",
    "Nothing contradicts it.",
    "The vault access code is 482913 [h.pdf p.2].",
)


def _deep_window(qtbot, make_window, app_settings: AppSettings, tmp_path: Path) -> Any:
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


def _ask(qtbot, window, mode: str) -> Any:
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


def _runs(home: Path) -> list[Run]:
    """Every run of the store's only session."""
    with Library(home / "longread.db") as library:
        (session,) = library.sessions()
        return library.runs(session.id)


# -- with the fake backend -----------------------------------------------------------


def test_think_deeply_shows_its_five_steps_and_stores_them(
    qtbot, make_window, fake_backend, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    window = _deep_window(qtbot, make_window, app_settings, tmp_path)
    fake_backend.enqueue(*STEPS)
    result = _ask(qtbot, window, "Think deeply")

    qtbot.waitUntil(lambda: window.timeline.statuses() == ["done"] * 5)
    assert [r.heading for r in window.timeline.rows] == [
        "Step 1: Plan",
        "Step 2: Examination",
        "Step 3: Hypotheses",
        "Step 4: Critique",
        "Step 5: Answer",
    ]
    assert [r.text for r in window.timeline.rows] == list(STEPS)
    # Each step was asked with the whole document and the steps before it.
    assert len(fake_backend.prompts) == 5
    assert "482913" in fake_backend.prompts[0].text
    assert STEPS[0] in fake_backend.prompts[1].text and STEPS[3] in fake_backend.prompts[4].text
    (run,) = _runs(home)
    assert (run.id, run.kind, run.status, run.answer) == (result.run_id, RunKind.THINK, Status.DONE, STEPS[-1])
    assert [(s.kind, s.status, s.text) for s in run.steps] == [
        (kind, Status.DONE, text)
        for kind, text in zip(("plan", "examine", "hypotheses", "critique", "answer"), STEPS, strict=True)
    ]
    assert window.conversation.turns[-1].answer == result.answer == STEPS[-1]
    assert window.conversation.link_count() == 1

    out = tmp_path / "session.md"
    with qtbot.waitSignal(window.exported, timeout=60000):
        window.export_session(out)
    text = out.read_text(encoding="utf-8")
    assert QUESTION in text and STEPS[1] in text


def test_read_in_waves_shows_a_row_per_wave_and_the_answer_in_the_conversation(
    qtbot, make_window, fake_backend, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    app_settings.n_ctx = 1024
    window = make_window()
    window.note_tokens = 16
    _load(qtbot, window, [write_pdf(tmp_path / "h.pdf", fact_pages(12, fact_page=9))])
    fake_backend.enqueue(*[_wave_reply] * 20)
    lines: list[str] = []
    original = window.conversation.status.setText
    window.conversation.status.setText = lambda text: (lines.append(text), original(text))[1]  # type: ignore[method-assign]
    result = _ask(qtbot, window, "Read in waves")

    n = len(result.waves)
    assert n >= 2
    assert any(line.startswith(f"Wave 1 of {n}") for line in lines), lines
    qtbot.waitUntil(lambda: window.timeline.statuses() == ["done"] * n)  # no row for the final answer
    assert [r.heading.split(":")[0] for r in window.timeline.rows] == [f"Wave {i}" for i in range(1, n + 1)]
    assert all("h.pdf p." in r.heading for r in window.timeline.rows)
    assert sum("482913" in r.text for r in window.timeline.rows) == 1
    # The notes say it in the question's words: the answer quotes them (notes.quoted_answer).
    quoted = '"The vault access code is 482913." [h.pdf p.9]'
    assert window.conversation.turns[-1].answer == result.answer == quoted
    assert window.conversation.link_count() == 1
    (run,) = _runs(home)
    assert run.kind is RunKind.WAVES and run.status is Status.DONE
    assert [w.status for w in run.waves] == [Status.DONE] * n
    assert [w.text for w in run.waves] == [r.text for r in window.timeline.rows]


def _wave_reply(prompt: str) -> str:
    """Notes for a wave (the one that read page 9 finds the code), or the final answer."""
    if "passages copied from the documents" in prompt:  # the look-up (it names p.9) and the answer
        return "The vault access code is 482913 [h.pdf p.9]."
    pages = prompt.split("Passages kept")[0]  # not the notes carried from earlier waves
    return "Code 482913 [h.pdf p.9]." if "The vault access code is 482913." in pages else "Nothing relevant."


class _RecordingLibrary(Library):
    """A library that records which runs it was asked to resume."""

    def __init__(self, *args: Any, resumed: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resumed = resumed

    def resume(self, run_id: int, **kwargs: Any) -> Any:
        self._resumed.append(run_id)
        return super().resume(run_id, **kwargs)


def test_a_cancelled_deep_run_reopens_as_its_timeline_and_resumes_through_the_library(
    qtbot, make_window, fake_backend, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    window = _deep_window(qtbot, make_window, app_settings, tmp_path)
    gate = threading.Event()
    writing = threading.Event()

    def third_step(prompt: str) -> str:
        writing.set()  # step 3 has read its prompt and is about to write
        gate.wait(60)  # holds the model lane in step 3 until the test has cancelled
        return "never shown"

    fake_backend.enqueue(STEPS[0], STEPS[1], third_step)
    try:
        _start(window, "Think deeply")
        # Cancel while step 3 writes (its scripted reply taken), not while it still reads:
        # a cancel during its prefill would leave the reply queued for the resumed run.
        qtbot.waitUntil(writing.is_set, timeout=60000)
        qtbot.waitUntil(lambda: window.timeline.statuses()[:3] == ["done", "done", "running"], timeout=60000)
        with qtbot.waitSignal(window.ask_cancelled, timeout=60000):
            window.cancel_ask()
            # Idle at once; the steps reached so far have rows, the one running is stopped.
            assert not window.asking and window.timeline.statuses() == ["done", "done", "interrupted"]
            gate.set()
    finally:
        gate.set()
    (stopped,) = _runs(home)
    assert stopped.status is Status.CANCELLED
    assert [s.status for s in stopped.steps] == ["done", "done", "cancelled", "pending", "pending"]
    done_before = [(s.position, s.text, s.finished_at) for s in stopped.steps if s.done]
    window.shutdown()

    # A fresh window (as after a restart) lists the session with its one question and
    # reopens it as the timeline it left, with Resume.
    resumed: list[int] = []
    recording = functools.partial(_RecordingLibrary, resumed=resumed)
    again = make_window(library_factory=library_factory(home / "longread.db", backend=fake_backend, make=recording))
    qtbot.waitUntil(lambda: again.sidebar.list.count() == 1, timeout=30000)
    assert "1 question" in again.sidebar.list.item(0).text()
    with qtbot.waitSignal(again.session_restored, timeout=30000):
        again.open_session(stopped.session_id)
    assert again.timeline.isVisible() and again.timeline.resume_button.isVisible()
    assert again.timeline.statuses() == ["done", "done", "cancelled", "pending", "pending"]
    assert again.timeline.title.text() == "Stopped after 2 of 5 steps (cancelled). Resume goes on from there."
    assert again.conversation.turns[-1].question == QUESTION
    assert again.conversation.turns[-1].status == "cancelled"

    fake_backend.enqueue(*STEPS[2:])
    prompts_before = len(fake_backend.prompts)
    with qtbot.waitSignal(again.answered, timeout=60000) as blocker:
        again.timeline.resume_button.click()
        assert again.asking and not again.timeline.resume_button.isVisible()
    assert blocker.args[0].run_id == stopped.id and blocker.args[0].ran == [3, 4, 5]
    assert resumed == [stopped.id]  # through Library.resume, on the model lane's library
    qtbot.waitUntil(lambda: again.timeline.statuses() == ["done"] * 5)
    assert [r.text for r in again.timeline.rows] == list(STEPS)
    # Only the three steps not done were generated, each after the stored ones.
    assert len(fake_backend.prompts) == prompts_before + 3
    assert STEPS[1] in fake_backend.prompts[prompts_before].text
    (finished,) = _runs(home)
    assert finished.id == stopped.id and finished.status is Status.DONE
    assert [(s.position, s.text, s.finished_at) for s in finished.steps[:2]] == done_before  # kept, not redone
    assert again.conversation.turns[-1].answer == finished.answer == STEPS[-1]
    assert [t.question for t in again.conversation.turns] == [QUESTION]  # the stopped turn was replaced

    # A new session hides the timeline.
    again.new_session()
    assert not again.timeline.isVisible()


# -- with the real SmolLM2 -------------------------------------------------------------


@pytest.mark.slow
def test_think_deeply_shows_five_steps_stores_them_and_exports(
    qtbot, make_real_window, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    window = _deep_window(qtbot, make_real_window, app_settings, tmp_path)
    result = _ask(qtbot, window, "Think deeply")

    qtbot.waitUntil(lambda: window.timeline.statuses() == ["done"] * 5)
    assert [r.heading.split(":")[0] for r in window.timeline.rows] == [f"Step {i}" for i in range(1, 6)]
    (run,) = _runs(home)
    assert run.id == result.run_id and [s.status for s in run.steps] == ["done"] * 5
    assert [s.text for s in run.steps] == [r.text for r in window.timeline.rows]
    assert window.conversation.turns[-1].answer == result.answer

    out = tmp_path / "session.md"
    with qtbot.waitSignal(window.exported, timeout=60000):
        window.export_session(out)
    assert QUESTION in out.read_text(encoding="utf-8")


@pytest.mark.slow
def test_read_in_waves_shows_wave_progress_and_a_row_per_wave(
    qtbot, make_real_window, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    app_settings.n_ctx = 1024
    window = make_real_window()
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
    (run,) = _runs(home)
    assert run.kind is RunKind.WAVES and [w.status for w in run.waves] == ["done"] * n


@pytest.mark.slow
def test_a_stopped_deep_session_reopens_as_its_timeline_and_resumes(
    qtbot, make_real_window, app_settings: AppSettings, tmp_path: Path, home: Path
) -> None:
    window = _deep_window(qtbot, make_real_window, app_settings, tmp_path)
    _start(window, "Think deeply")
    qtbot.waitUntil(lambda: window.timeline.statuses()[:2] == ["done", "done"], timeout=600000)
    with qtbot.waitSignal(window.ask_cancelled, timeout=60000):
        window.cancel_ask()

    (stopped,) = _runs(home)
    assert stopped.status == "cancelled"
    done_before = [(s.position, s.text, s.finished_at) for s in stopped.steps if s.status == "done"]
    assert len(done_before) >= 2

    # A fresh window (as after a restart) lists the session with its one question and
    # reopens it as the timeline it left, with Resume.
    window.shutdown()
    again = make_real_window(library_factory=library_factory(home / "longread.db"))
    qtbot.waitUntil(lambda: again.sidebar.list.count() == 1, timeout=30000)
    assert "1 question" in again.sidebar.list.item(0).text()
    with qtbot.waitSignal(again.session_restored, timeout=30000):
        again.open_session(stopped.session_id)
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
    (finished,) = _runs(home)
    assert finished.id == stopped.id and finished.status == "done"
    # Steps finished before the stop were kept, not redone.
    assert [(s.position, s.text, s.finished_at) for s in finished.steps[: len(done_before)]] == done_before
    assert again.conversation.turns[-1].answer == finished.answer
    assert [t.question for t in again.conversation.turns] == [QUESTION]  # the stopped turn was replaced

    # A new session hides the timeline.
    again.new_session()
    assert not again.timeline.isVisible()


def test_a_waves_heading_says_what_was_dropped_and_when_its_notes_were_kept() -> None:
    from app.views.timeline import step_heading
    from engine.runs import Step

    def wave(**detail: Any) -> Step:
        return Step(run_id=1, position=3, kind="wave", status=Status.DONE, label="h.pdf p.1-2", detail=detail)

    assert step_heading(wave(block="snapshot")) == "Wave 3: h.pdf p.1-2"
    assert step_heading(wave(dropped_notes=2)) == "Wave 3: h.pdf p.1-2 (2 notes dropped: not on its page)"
    # A question asked before over the same pages: no page was read, the notes were kept.
    assert step_heading(wave(block="notes")) == "Wave 3: h.pdf p.1-2 (notes kept from an earlier question)"
