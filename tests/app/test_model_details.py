"""The model details dialog (issue 14): the probe's heatmap, effective context and scores,
opened from the window's menu and the model picker."""

from __future__ import annotations

from pathlib import Path

from app.views.model_details import ModelDetails, ModelDetailsDialog
from engine.models.bundled import model_sha256
from engine.probe import TASKS, suite_key
from engine.store import open_store
from engine.store.db import ProbeCell


def _cells(sha: str) -> list[ProbeCell]:
    return [
        ProbeCell(
            model_sha256=sha,
            kv_type="f16",
            n_ctx=2048,
            suite=suite_key(),
            task=task,
            length=length,
            depth=-1.0 if task == "cwe" else 0.5,
            sample=0,
            seed=1,
            prompt_tokens=length - 40,
            expected=("1",),
            output=" 1",
            score=1.0 if length == 1024 or task == "niah_single" else 0.0,
            prefill_s=1.0,
            generate_s=1.0,
            runtime_version="test",
        )  # fmt: skip
        for task in TASKS
        for length in (1024, 2048)
    ]


def test_the_dialog_shows_the_heatmap_the_effective_context_and_the_scores(qtbot, tmp_path: Path) -> None:
    from engine.probe import effective_context
    from engine.probe_plot import draw_heatmap

    cells = _cells("x")
    png = draw_heatmap(cells, tmp_path / "h.png", title="test.gguf")
    details = ModelDetails(
        "test.gguf",
        png,
        tuple(effective_context(cells).values()),
        tuple(("f16", c.task, c.length, c.score) for c in cells),
    )
    dialog = ModelDetailsDialog()
    qtbot.addWidget(dialog)
    dialog.show_details(details)
    assert not dialog.picture.pixmap().isNull() and dialog.picture.pixmap().width() > 400
    assert dialog.table.rowCount() == len(cells)
    assert "reliably reads <b>1,024 tokens</b>" in dialog.summary.text()
    assert "85.6%" in dialog.summary.text()

    dialog.show_details(ModelDetails("new.gguf", None))
    assert "longread probe --quick" in dialog.summary.text() and dialog.table.rowCount() == 0


def test_the_window_opens_model_details_from_the_picker(qtbot, make_window, home: Path, smollm2_path: Path) -> None:
    store = open_store(home / "longread.db")
    for cell in _cells(model_sha256(smollm2_path)):
        store.put_probe_cell(cell)
    store.close()
    window = make_window()
    window.picker.details_button.click()
    qtbot.waitUntil(lambda: getattr(window, "model_details", None) is not None and window.model_details.isVisible())
    dialog = window.model_details
    assert smollm2_path.name in dialog.windowTitle()
    assert dialog.table.rowCount() == 10 and not dialog.picture.pixmap().isNull()
    assert "1,024 tokens" in dialog.summary.text()
    dialog.close()


def test_the_gauge_says_when_a_corpus_is_beyond_the_effective_context(qtbot) -> None:
    from app.views.budget_gauge import BudgetGauge
    from engine.planner import CorpusMeasure
    from engine.planning import MeasuredContext, make_plan
    from engine.probe import THRESHOLD
    from engine.runtime.backend import KvType
    from engine.runtime.fake import FakeBackend

    info = FakeBackend(n_ctx_train=8192).inspect_model(Path("x.gguf"))
    measured = {kv: MeasuredContext(kv, 2048, 1024, 8192, 8192, THRESHOLD) for kv in KvType}
    gauge = BudgetGauge()
    qtbot.addWidget(gauge)
    gauge.set_kv_type("f16")
    gauge.show_measure(CorpusMeasure((4800,), make_plan(info, 4800, available_bytes=None, measured=measured)))
    text = gauge.verdict.text()
    assert "beyond what this model reliably reads</b> (measured 2,048 tokens at f16)" in text
    assert "Better: read in 3 waves of about 2,048 tokens" in text
    gauge.show_measure(CorpusMeasure((1000,), make_plan(info, 1000, available_bytes=None, measured=measured)))
    assert gauge.verdict.text().startswith("<b>Fits.</b>")
