"""Measuring the effective context from the window (issue 14): the model panel's heatmap
thumbnail and Measure action, a probe on the model lane with progress (cells and tokens
read), Cancel that keeps the cells done, resuming, and the gauge's warning following the
measurement. Fake backend: the probe's prompts are real, the model is scripted."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from engine.models.bundled import bundled_model_path, model_sha256
from engine.probe import ProbeProgress, ProbeReport, suite_key
from engine.runtime.fake import FAKE_VERSION
from engine.store import open_store
from tests.app.test_model_details import _cells
from tests.conftest import text_pages_file
from tests.engine.test_probe import oracle

QUICK_CELLS = 10  # the quick grid at the fake's 8,192-token window: 1k and 4k x five tasks


def _stored(home: Path) -> int:
    store = open_store(home / "longread.db")
    try:
        return len(store.get_probe_cells(model_sha256(bundled_model_path()), suite=suite_key()))
    finally:
        store.close()


def test_a_quick_measure_runs_on_the_model_lane_reports_progress_and_draws_the_thumbnail(
    qtbot, make_window, fake_backend: Any, home: Path
) -> None:
    threads: list[str] = []

    def reader(prompt: str) -> str:
        threads.append(threading.current_thread().name)
        return oracle(prompt)

    fake_backend.enqueue(*[reader] * QUICK_CELLS)
    window = make_window()
    panel = window.probe_panel
    qtbot.waitUntil(lambda: window.probe.view is not None, timeout=30000)
    assert "not measured yet" in panel.summary.text() and panel.thumbnail.pixmap().isNull()
    progress: list[ProbeProgress] = []
    window.probe.progressed.connect(progress.append)

    with qtbot.waitSignal(window.probe.finished, timeout=120000) as finished:
        panel.quick_action.trigger()
        assert window.probe.running and not panel.measure_button.isEnabled() and panel.cancel_button.isVisible()
    report: ProbeReport = finished.args[0]
    assert report.ran == QUICK_CELLS and {c.length for c in report.cells} == {1024, 4096}
    assert all(c.score == 1.0 for c in report.cells)
    assert len(threads) == QUICK_CELLS and "MainThread" not in threads  # the model lane's thread read them

    # Progress: every cell, and inside each cell the tokens read so far.
    assert [p.done for p in progress if p.last_score is not None] == list(range(1, QUICK_CELLS + 1))
    reading = [p for p in progress if p.reading is not None]
    assert {p.done for p in reading} == set(range(QUICK_CELLS))
    long_cell = [p.reading.done for p in reading if p.length == 4096 and p.task == "vt" and p.reading]
    assert len(long_cell) > 3 and long_cell == sorted(long_cell)  # batches of 128 tokens
    assert panel.progress.maximum() == QUICK_CELLS * 100

    qtbot.waitUntil(lambda: "4,096 tokens at f16" in panel.summary.text(), timeout=30000)
    assert not panel.thumbnail.pixmap().isNull() and panel.thumbnail.pixmap().height() > 40
    assert panel.measure_button.isEnabled() and not panel.cancel_button.isVisible()
    assert "Measured: 10 cells now" in panel.status.text()
    assert _stored(home) == QUICK_CELLS


def test_cancel_keeps_the_cells_done_and_measuring_again_resumes(
    qtbot, make_window, fake_backend: Any, home: Path
) -> None:
    cancelled = threading.Event()

    def held(prompt: str) -> str:
        # The third cell's answer waits until the test has pressed Cancel: the engine then
        # stops before its first answer token, so exactly two cells are done.
        cancelled.wait(30)
        return oracle(prompt)

    fake_backend.enqueue(oracle, oracle, held, *[oracle] * QUICK_CELLS)
    window = make_window()
    panel = window.probe_panel
    seen: list[ProbeProgress] = []

    def on_progress(p: ProbeProgress) -> None:
        seen.append(p)
        if p.last_score is not None and p.done == 2:
            panel.cancel_button.click()
            cancelled.set()

    window.probe.progressed.connect(on_progress)
    with qtbot.waitSignal(window.probe.stopped, timeout=120000):
        panel.quick_action.trigger()
        qtbot.waitUntil(lambda: cancelled.is_set(), timeout=60000)
        # The panel is idle at once, before the engine confirms.
        assert not window.probe.running and panel.measure_button.isEnabled()
        assert not panel.cancel_button.isVisible() and "Stopped" in panel.status.text()
    assert seen[-1].done == 2  # nothing reported after the cancel
    assert _stored(home) == 2

    window.probe.progressed.disconnect(on_progress)
    with qtbot.waitSignal(window.probe.finished, timeout=120000) as finished:
        panel.measure_button.click()  # the button's default: quick
    report: ProbeReport = finished.args[0]
    assert report.ran == QUICK_CELLS - 2 and len(report.cells) == QUICK_CELLS
    assert _stored(home) == QUICK_CELLS


def test_the_gauge_warns_once_a_probe_finds_the_corpus_beyond_what_the_model_reads(
    qtbot, make_window, fake_backend: Any, tmp_path: Path
) -> None:
    window = make_window()
    pages = [
        " ".join(f"Clause {p}.{i} of the lease says the rent is due monthly." for i in range(30)) for p in range(3)
    ]
    with qtbot.waitSignal(window.measured, timeout=60000):
        window.add_paths([text_pages_file(tmp_path / "lease.txt", pages)])
    assert "beyond what this model reliably reads" not in window.gauge.verdict.text()

    # The scripted model answers nothing right: no length is read reliably.
    with qtbot.waitSignal(window.measured, timeout=120000):
        window.probe.start(quick=True)
        window.ask("When is the rent due?")  # refused while the model is measured
        assert "being measured" in window.conversation.status.text()
        assert not window.asking
    assert "beyond what this model reliably reads" in window.gauge.verdict.text()
    assert "below 85.6% even at 1,024 tokens at f16" in window.gauge.verdict.text()


def test_the_thumbnail_opens_the_details_whose_measure_button_starts_a_probe(
    qtbot, make_window, fake_backend: Any, home: Path
) -> None:
    store = open_store(home / "longread.db")
    for cell in _cells(model_sha256(bundled_model_path())):
        store.put_probe_cell(cell)
    store.close()
    window = make_window()
    panel = window.probe_panel
    qtbot.waitUntil(lambda: not panel.thumbnail.pixmap().isNull(), timeout=30000)
    assert "Effective context: 1,024 tokens at f16." == panel.summary.text()

    qtbot.mouseClick(panel.thumbnail, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(window, "model_details", None) is not None and window.model_details.isVisible())
    dialog = window.model_details
    assert dialog.quick_button.isEnabled() and dialog.full_button.isEnabled()
    fake_backend.token_delay_s = 0.001  # slow enough to be running when checked
    dialog.full_button.click()
    assert not dialog.isVisible() and window.probe.running
    assert "full" in panel.status.text()
    with qtbot.waitSignal(window.probe.stopped, timeout=60000):
        panel.cancel_button.click()


def test_the_selftest_draws_a_heatmap(tmp_path: Path) -> None:
    from app.selftest import check_heatmap

    lines: list[str] = []
    check_heatmap(tmp_path, lines.append)
    assert lines[0].startswith("probe prose: ") and f"(suite {suite_key()})" in lines[0]
    assert lines[1].startswith("heatmap drawn (matplotlib Agg): ")
    assert (tmp_path / "heatmap.png").stat().st_size > 5000


def test_a_quick_measure_of_the_real_smollm2_from_the_window(
    qtbot, make_real_window, app_settings: Any, home: Path, smollm2_path: Path
) -> None:
    # A 512-token window: the quick grid is then five cells of 512 tokens.
    app_settings.n_ctx = 512
    app_settings.n_threads = 1
    window = make_real_window()
    panel = window.probe_panel
    progress: list[ProbeProgress] = []
    window.probe.progressed.connect(progress.append)
    with qtbot.waitSignal(window.probe.finished, timeout=900000) as finished:
        panel.quick_action.trigger()
    report: ProbeReport = finished.args[0]
    assert report.n_ctx == 512 and report.ran == 5 and {c.length for c in report.cells} == {512}
    single = next(c for c in report.cells if c.task == "niah_single")
    assert single.score == 1.0, single.output  # SmolLM2 finds one needle in 512 tokens
    assert all(400 < c.prompt_tokens <= 512 and c.runtime_version != FAKE_VERSION for c in report.cells)
    reading = [p.reading for p in progress if p.reading is not None]
    assert len(reading) >= 5 * 3 and all(r.total > 400 for r in reading)  # batches of 128 tokens
    qtbot.waitUntil(lambda: not panel.thumbnail.pixmap().isNull(), timeout=60000)
    assert panel.summary.text().startswith("Effective context: ") and "at f16" in panel.summary.text()
    assert _stored(home) == 5
