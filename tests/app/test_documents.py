"""Documents in: drops of real PDFs and text, bad files on their own rows, the gauge's
numbers against the engine's (with the real SmolLM2, ``slow``), and a dropped GGUF
becoming the model. The other tests count tokens with the fake backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLineEdit

from engine.corpus import Corpus
from engine.library import Library
from engine.models.gguf import inspect_gguf
from engine.planning import make_plan
from engine.reading.citations import Citation
from engine.runtime.backend import KvType
from engine.units import format_bytes
from tests.app.dnd import drop_files
from tests.conftest import fact_pages, write_pdf


def _wait_read(qtbot, window, n_rows: int) -> None:
    qtbot.waitUntil(lambda: len(window.corpus_panel.rows) == n_rows and not window.corpus_panel.reading, timeout=60000)


def test_drop_adds_documents_with_their_page_counts(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    folder = tmp_path / "exhibits"
    folder.mkdir()
    write_pdf(folder / "a-exhibit.pdf", fact_pages(2))
    write_pdf(folder / "b-exhibit.pdf", fact_pages(3, fact_page=2))
    filing = write_pdf(tmp_path / "filing.pdf", fact_pages(4))
    (folder / "notes.bin").write_bytes(b"\x00\x01")  # skipped: not a document type

    progressed: list[tuple[int, int, int]] = []
    window.ingest.document_progressed.connect(lambda row, done, total: progressed.append((row, done, total)))
    assert drop_files(window, [filing, folder])
    with qtbot.waitSignal(window.measured, timeout=60000):
        _wait_read(qtbot, window, 3)

    rows = window.corpus_panel.rows
    assert [(r.name, r.state, r.doc.n_pages if r.doc else None) for r in rows] == [
        ("filing.pdf", "ready", 4),
        ("a-exhibit.pdf", "ready", 2),
        ("b-exhibit.pdf", "ready", 3),
    ]
    # Each PDF's row showed its pages as they were read.
    assert {(total, done) for row, done, total in progressed if row == rows[0].id and done == total} == {(4, 4)}
    qtbot.waitUntil(lambda: all(r.tokens for r in window.corpus_panel.rows))
    assert "9 pages" in window.corpus_panel.total_label.text()
    total = sum(r.tokens or 0 for r in rows)
    assert f"{total:,} tokens" in window.corpus_panel.total_label.text()

    # Reorder and remove: the corpus follows the rows.
    window.corpus_panel.tree.topLevelItem(2).setSelected(True)
    window.corpus_panel.move_selected(-1)
    assert [d.name for d in window.corpus_panel.corpus().documents] == ["filing.pdf", "b-exhibit.pdf", "a-exhibit.pdf"]
    window.corpus_panel.remove_selected()
    assert [d.name for d in window.corpus_panel.corpus().documents] == ["filing.pdf", "a-exhibit.pdf"]

    # Dragging a row to the top (the tree moves its item; the panel takes the tree's order).
    tree = window.corpus_panel.tree
    with qtbot.waitSignal(window.corpus_panel.corpus_changed, timeout=5000):
        tree.insertTopLevelItem(0, tree.takeTopLevelItem(1))
        tree.reordered.emit()
    assert [d.name for d in window.corpus_panel.corpus().documents] == ["a-exhibit.pdf", "filing.pdf"]
    assert [tree.topLevelItem(i).text(0) for i in range(2)] == ["a-exhibit.pdf", "filing.pdf"]

    # Files dropped on the list itself (which takes drags of its own rows) still reach the window.
    late = write_pdf(tmp_path / "late.pdf", fact_pages(1))
    assert drop_files(tree.viewport(), [late])
    _wait_read(qtbot, window, 3)
    assert [d.name for d in window.corpus_panel.corpus().documents] == ["a-exhibit.pdf", "filing.pdf", "late.pdf"]


def test_a_bad_file_shows_its_error_row_and_the_others_load(qtbot, make_window, tmp_path: Path, fact_pdf: Path) -> None:
    window = make_window()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer garbage\n%%EOF\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    word = tmp_path / "brief.pages"
    word.write_bytes(b"PK\x03\x04 not really")

    assert drop_files(window, [broken, fact_pdf, empty, word])
    _wait_read(qtbot, window, 4)

    by_name = {r.path.name: r for r in window.corpus_panel.rows}
    assert by_name["handbook.pdf"].state == "ready"
    assert by_name["handbook.pdf"].doc is not None and by_name["handbook.pdf"].doc.n_pages == 4
    for name in ("broken.pdf", "empty.txt", "brief.pages"):
        row = by_name[name]
        assert row.state == "failed", name
        assert name in row.message or "PDF" in row.message, row.message
    assert "empty" in by_name["empty.txt"].message
    assert ".pages" in by_name["brief.pages"].message
    # The error is drawn on the file's own row, in the panel.
    texts = [window.corpus_panel.tree.topLevelItem(i).text(0) for i in range(4)]
    assert any(by_name["broken.pdf"].message in t for t in texts)
    assert [d.name for d in window.corpus_panel.corpus().documents] == ["handbook.pdf"]
    assert "3 not added" in window.corpus_panel.total_label.text()


@pytest.mark.slow
def test_gauge_numbers_match_the_engine(qtbot, make_real_window, home: Path, smollm2_path: Path) -> None:
    window = make_real_window(library_factory=lambda: Library(home / "longread.db"))  # the app's own settings
    sample = Path(__file__).resolve().parents[2] / "resources" / "sample" / "harbor-lease-dispute.md"
    with qtbot.waitSignal(window.measured, timeout=60000) as blocker:
        window.add_paths([sample])
    measure = blocker.args[0]
    numbers = window.gauge.numbers()

    # The engine's own estimate, from a separate library (its own store connection and model).
    corpus = Corpus(tuple(d for d in window.corpus_panel.corpus().documents))
    with Library(home / "longread.db", model_path=smollm2_path, settings=window.settings.read_settings()) as library:
        _prompt, budget = library.prepare_ask(corpus, "")
    assert numbers["corpus_tokens"] == budget.corpus_tokens
    assert numbers["needed_tokens"] == budget.needed
    assert numbers["n_ctx"] == budget.n_ctx
    assert numbers["max_ctx"] == budget.max_ctx == inspect_gguf(smollm2_path).context_length
    # The gauge shows the planner's own plan: the rows `longread plan` prints.
    info = inspect_gguf(smollm2_path)
    plan = make_plan(info, budget.corpus_tokens, n_ctx=budget.n_ctx, available_bytes=numbers["available_bytes"])
    assert measure.plan.rows == plan.rows
    for kv in KvType:
        assert numbers[f"kv_{kv}_bytes"] == plan.row(kv).kv_bytes == info.kv_cache_bytes(budget.n_ctx, kv, kv)
        assert numbers[f"total_{kv}_bytes"] == plan.row(kv).total_bytes
        # Worded as `longread plan` words it.
        assert format_bytes(plan.row(kv).total_bytes) in window.gauge.memory_texts[kv].text()
    assert numbers["kv_q4_0_bytes"] < numbers["kv_q8_0_bytes"] < numbers["kv_f16_bytes"]
    assert window.corpus_panel.rows[0].tokens == measure.doc_tokens[0] == budget.corpus_tokens
    assert "Fits" in window.gauge.verdict.text()
    assert f"{budget.n_ctx:,}" in window.gauge.window_caption.text()


def test_gauge_says_when_the_corpus_does_not_fit_and_offers_ways_out(
    qtbot, make_window, app_settings, fact_pdf: Path
) -> None:
    app_settings.n_ctx = 256  # far too small for a 4-page handbook
    window = make_window()
    with qtbot.waitSignal(window.measured, timeout=60000):
        window.add_paths([fact_pdf])
    assert "Does not fit" in window.gauge.verdict.text()
    assert window.gauge.ways.isVisibleTo(window)
    assert window.gauge.larger_button.isVisibleTo(window)
    # Taking the larger window fits.
    with qtbot.waitSignal(window.measured, timeout=60000):
        window.gauge.larger_button.click()
    assert app_settings.n_ctx == window.gauge.numbers()["max_ctx"]
    assert "Fits" in window.gauge.verdict.text()


def test_dropped_gguf_becomes_the_model_and_a_bad_one_is_refused(
    qtbot, make_window, tmp_path: Path, gguf_file: Path, app_settings
) -> None:
    window = make_window()
    copy = tmp_path / "my-model.gguf"
    shutil.copyfile(gguf_file, copy)
    with qtbot.waitSignal(window.model_changed, timeout=60000) as blocker:
        assert drop_files(window, [copy])
    assert blocker.args[0] == copy
    assert window.model_path == copy
    assert app_settings.model_path == str(copy)
    assert str(copy) in app_settings.added_models
    assert "my-model.gguf" in window.picker.combo.currentText()

    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGML this is not a gguf file at all" * 10)
    with qtbot.waitSignal(window.model_failed, timeout=60000) as failed:
        drop_files(window, [bad])
    assert "not-a-model.gguf" in failed.args[0]
    assert window.model_path == copy


def test_an_encrypted_pdf_asks_for_its_password_and_never_keeps_it(
    qtbot, make_window, home: Path, tmp_path: Path, fact_pdf: Path
) -> None:
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=11)
    for text in fact_pages(3, fact_page=2, fact="The vault access code is 550731."):
        pdf.add_page()
        pdf.multi_cell(180, 5, text)
    pdf.set_encryption(
        owner_password="owner-secret", user_password="letmein", encryption_method=EncryptionMethod.AES_256
    )
    sealed = tmp_path / "sealed.pdf"
    pdf.output(str(sealed))

    window = make_window()
    assert not window.windowIcon().pixmap(32, 32).isNull()  # resources/icons/longread.svg
    assert drop_files(window, [sealed, fact_pdf])
    qtbot.waitUntil(lambda: window.password_dialog is not None and window.password_dialog.isVisible(), timeout=60000)
    _wait_read(qtbot, window, 2)
    panel = window.corpus_panel
    locked = next(r for r in panel.rows if r.path.name == "sealed.pdf")
    assert locked.state == "locked" and "sealed.pdf is encrypted: enter its password" in locked.message
    assert "1 needs a password" in panel.total_label.text()
    assert [d.name for d in panel.corpus().documents] == ["handbook.pdf"]  # the other file loaded meanwhile
    dialog = window.password_dialog
    assert dialog.textEchoMode() == QLineEdit.EchoMode.Password
    assert "sealed.pdf" in dialog.windowTitle()

    # A wrong password says so and asks again.
    dialog.setTextValue("guess")
    dialog.accept()
    qtbot.waitUntil(lambda: window.password_dialog is not None and window.password_dialog is not dialog, timeout=60000)
    assert locked.state == "locked" and "The password for sealed.pdf is not right" in locked.message

    # "Not now" leaves it locked and out of the corpus; activating its row asks again.
    window.password_dialog.reject()
    assert window.password_dialog is None and locked.state == "locked"
    assert "double-click it" in window.statusBar().currentMessage()
    item = next(
        panel.tree.topLevelItem(i)
        for i in range(panel.tree.topLevelItemCount())
        if panel.tree.topLevelItem(i).text(3) == "Needs a password"
    )
    panel.tree.itemActivated.emit(item, 0)
    assert window.password_dialog is not None
    window.password_dialog.setTextValue("letmein")
    with qtbot.waitSignal(panel.corpus_changed, timeout=60000):
        window.password_dialog.accept()
    assert locked.state == "ready" and locked.doc is not None and locked.doc.n_pages == 3
    assert "550731" in locked.doc.pages[1].text
    assert window.password_dialog is None

    # A citation of it opens the page's text; the PDF view says why it cannot show the page.
    viewer = window.open_citation(Citation(0, 0, "sealed.pdf", 2, True, quote="vault access code is 550731"))
    assert viewer is not None
    qtbot.waitUntil(lambda: "locked with a password" in viewer.placeholder.text(), timeout=30000)
    assert "550731" in viewer.text.toPlainText()
    viewer.close()

    # The password is in neither the database, its write-ahead log, nor the settings.
    window.shutdown()
    for path in [*home.rglob("*"), tmp_path / "settings.ini"]:
        if path.is_file():
            data = path.read_bytes()
            assert b"letmein" not in data and "letmein".encode("utf-16-le") not in data, path
