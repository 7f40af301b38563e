"""The gauge for a model on a server (issue 16): the server's window, no memory rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.views.budget_gauge import BudgetGauge
from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.ingest import read_documents
from engine.library import Library
from engine.runtime.server import ServerBackend
from tests.conftest import fact_pages, write_pdf
from tests.server_procs import NOT_BUILT, binaries, start_llama_server


def test_the_gauge_shows_the_servers_window_and_no_memory_rows(
    qtbot, home: Path, tmp_path: Path, smollm2_path: Path
) -> None:
    bins = binaries()
    if bins is None:
        pytest.skip(NOT_BUILT)
    proc = start_llama_server(bins, smollm2_path, log_dir=tmp_path, ctx=4096)
    try:
        lib = Library(home / "longread.db", backend=ServerBackend(proc.url), settings=ReadSettings())
        docs, _ = read_documents([write_pdf(tmp_path / "h.pdf", fact_pages())], store=lib.store)
        measure = lib.measure(Corpus(tuple(docs)))
        lib.close()
    finally:
        proc.stop()
    assert measure.plan.server == proc.url and measure.plan.rows == () and measure.plan.max_ctx == 4096

    gauge = BudgetGauge()
    qtbot.addWidget(gauge)
    gauge.show()
    gauge.show_measure(measure)
    assert f"The server at {proc.url} gives each request up to 4,096 tokens." in gauge.window_text.text()
    assert gauge.window_bar.isVisible() and "Fits" in gauge.verdict.text()
    assert not gauge.memory_caption.isVisible() and not gauge.memory_text.isVisible()
    assert not any(bar.isVisible() for bar in gauge.memory_bars.values())
    assert not any(button.isVisible() for button in gauge.kv_buttons.values())
