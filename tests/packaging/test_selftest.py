"""``app.selftest`` from the source tree: its PDF is a real PDF, a failure exits 1 naming
the check, and it leaves the caller's environment and data folder alone.

The full pass (model loaded, question answered) runs in the frozen app, in
``test_bundle.py``; here only the parts that need no bundle.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.selftest import PDF_CODE, PDF_PAGES, run_selftest, write_text_pdf
from engine.ingest import read_document


def test_selftest_pdf_is_read_by_both_extractors(tmp_path: Path) -> None:
    path = write_text_pdf(tmp_path / "handbook.pdf", PDF_PAGES)
    doc, extracted = read_document(path)
    assert extracted and doc.kind == "pdf" and doc.n_pages == len(PDF_PAGES)
    assert PDF_CODE in doc.pages[1].text and PDF_CODE not in doc.pages[0].text
    # A second parser reads it too: the file is well formed, not just tolerated by PDFium.
    from pypdf import PdfReader

    reader = PdfReader(path, strict=True)
    assert len(reader.pages) == len(PDF_PAGES)
    assert "front desk" in reader.pages[1].extract_text()


def test_selftest_reports_a_missing_model_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LONGREAD_MODEL", str(tmp_path / "missing.gguf"))
    monkeypatch.setenv("LONGREAD_HOME", str(tmp_path / "mine"))
    lines: list[str] = []
    assert run_selftest(out=lines.append) == 1
    assert lines[-1].startswith("FAILED: ask:") and "missing.gguf" in lines[-1]
    assert any(line.startswith("ingested handbook.pdf: 2 pages") for line in lines)
    # It worked in its own temporary folder and put the caller's back.
    assert os.environ["LONGREAD_HOME"] == str(tmp_path / "mine")
    assert not (tmp_path / "mine").exists()
