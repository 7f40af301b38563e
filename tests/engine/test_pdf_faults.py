"""PDF faults with real PDFs: encryption, broken files, scans and OCR, limits, parallel pages.

Every PDF here is real, written by fpdf2 (and then damaged on purpose where the test says
so); extraction runs in its real child processes. Each bad input must give a plain
message and leave the store without a trace of the document.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.corpus import layout_document
from engine.errors import EmptyDocumentError, EngineError, ExtractionTimeout, IngestError, PasswordRequired, PdfError
from engine.ingest import read_document
from engine.ingest.ocr import INSTALL_HINT, TESSERACT_ENV
from engine.ingest.pdf import ExtractorBug, Job, extract_pdf
from engine.reading.citations import check_citations
from engine.store import Store
from tests.conftest import fact_pages, write_encrypted_pdf, write_pdf
from tests.engine import hooks

HAS_TESSERACT = shutil.which("tesseract") is not None
needs_tesseract = pytest.mark.skipif(
    not HAS_TESSERACT, reason="Tesseract is not installed (Debian: apt-get install tesseract-ocr)"
)


def _assert_store_untouched(store: Store) -> None:
    assert store.count_documents() == 0
    assert store.db.execute("SELECT count(*) FROM pages").fetchone()[0] == 0
    assert store.integrity_check() == "ok"


def _text_image(text: str, *, width: int = 1700, height: int = 600) -> object:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=56)
    for i, line in enumerate(text.split("\n")):
        draw.text((60, 60 + i * 90), line, fill=0, font=font)
    return image


def _scanned_pdf(path: Path, pages: list[str | None]) -> Path:
    """A PDF whose ``None`` entries are text pages and strings are images of that text."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=11)
    for i, entry in enumerate(pages, start=1):
        pdf.add_page()
        if entry is None:
            pdf.multi_cell(180, 5, f"Page {i} has a real text layer about the harbor office.")
        else:
            pdf.image(_text_image(entry), x=10, y=10, w=190)
    pdf.output(str(path))
    return path


# -- encryption ----------------------------------------------------------------------


def test_aes256_user_password_is_asked_for_and_wrong_one_is_named(tmp_path: Path, store: Store) -> None:
    path = write_encrypted_pdf(tmp_path / "sealed.pdf", owner="owner-secret", user="letmein")
    with pytest.raises(PasswordRequired, match="sealed.pdf is encrypted: enter its password") as missing:
        read_document(path, store=store)
    with pytest.raises(PasswordRequired, match="The password for sealed.pdf is not right") as wrong:
        read_document(path, store=store, password="guess")
    # The password never appears in a message or its detail.
    for info in (missing, wrong):
        assert "letmein" not in str(info.value) and "guess" not in str(info.value)
        assert "guess" not in (info.value.detail or "")
    _assert_store_untouched(store)

    doc, extracted = read_document(path, store=store, password="letmein")
    assert extracted and doc.n_pages == 3
    assert "482913" in doc.pages[2].text
    stored = store.db.execute("SELECT * FROM documents").fetchall()
    assert "letmein" not in repr(stored)


@pytest.mark.parametrize("method", ["AES_128", "RC4"])
def test_other_ciphers_open_with_their_password(tmp_path: Path, store: Store, method: str) -> None:
    path = write_encrypted_pdf(tmp_path / f"{method}.pdf", owner="o", user="u", method=method)
    doc, _ = read_document(path, store=store, password="u")
    assert "482913" in doc.pages[2].text


def test_owner_password_only_opens_without_asking(tmp_path: Path, store: Store) -> None:
    path = write_encrypted_pdf(tmp_path / "locked-printing.pdf", owner="owner-only", user=None)
    doc, _ = read_document(path, store=store)
    assert doc.n_pages == 3 and "482913" in doc.pages[2].text


def test_a_job_does_not_show_its_password() -> None:
    job = Job(path="sealed.pdf", password="letmein")
    assert job.password == "letmein"
    assert "letmein" not in repr(job) and "letmein" not in str(job)
    assert "sealed.pdf" in repr(job)


def test_pypdf_decides_what_an_encrypted_file_needs(tmp_path: Path) -> None:
    # PDFium refuses without saying whether a password is missing or wrong; pypdf tells.
    path = write_encrypted_pdf(tmp_path / "sealed.pdf", owner="o", user="u")
    with pytest.raises(PasswordRequired, match="not right"):
        extract_pdf(path, password="nope")


# -- broken files --------------------------------------------------------------------


def test_broken_xref_is_repaired(tmp_path: Path, store: Store) -> None:
    data = write_pdf(tmp_path / "whole.pdf", fact_pages(4)).read_bytes()
    start = data.rfind(b"\nxref")
    # Every offset in the cross-reference table off by 7 bytes, and startxref wrong too.
    table = re.sub(rb"(\d{10}) 00000 n", lambda m: b"%010d 00000 n" % (int(m.group(1)) + 7), data[start:])
    table = re.sub(rb"startxref\s+\d+", b"startxref\n999999", table)
    path = tmp_path / "broken-xref.pdf"
    path.write_bytes(data[:start] + table)
    doc, _ = read_document(path, store=store)
    assert doc.n_pages == 4
    assert "482913" in doc.pages[2].text


def test_damaged_pages_get_a_second_opinion_from_pypdf(tmp_path: Path) -> None:
    data = write_pdf(tmp_path / "whole.pdf", fact_pages(4)).read_bytes()
    path = tmp_path / "smudged.pdf"
    # Garbage over the first page's content: PDFium loses pages 1-2, pypdf still reads page 2.
    path.write_bytes(data[:400] + b"\x00garbage" * 50 + data[800:])
    result = extract_pdf(path, ocr=False)
    assert "pypdf" in result.sources, result.sources
    assert result.extractor.startswith("pdfium+pypdf")
    assert "482913" in result.pages[2]


def test_garbage_after_a_pdf_header(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "junk.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    with pytest.raises(PdfError, match="junk.pdf is damaged") as info:
        read_document(path, store=store)
    assert "Traceback" not in str(info.value)
    _assert_store_untouched(store)


# -- scans and OCR ---------------------------------------------------------------------


def test_pages_without_text_are_reported_page_by_page(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TESSERACT_ENV, "")  # as on a machine without Tesseract
    path = _scanned_pdf(tmp_path / "exhibits.pdf", [None, "SCANNED EXHIBIT", None, "SCANNED", "SCANNED"])
    notices: list[str] = []
    doc, _ = read_document(path, store=store, on_notice=notices.append)
    assert [bool(p.text) for p in doc.pages] == [True, False, True, False, False]
    assert not any(p.ocr for p in doc.pages)
    assert len(notices) == 1
    assert "exhibits.pdf: pages 2, 4-5 of 5 have no text layer" in notices[0]
    assert INSTALL_HINT in notices[0]


def test_a_whole_scan_without_tesseract_says_how_to_get_it(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TESSERACT_ENV, "")
    path = _scanned_pdf(tmp_path / "scan.pdf", ["SCANNED PAGE ONE", "SCANNED PAGE TWO"])
    with pytest.raises(EmptyDocumentError, match="no text layer on any of its 2 pages") as info:
        read_document(path, store=store)
    assert "apt install tesseract-ocr" in str(info.value)
    _assert_store_untouched(store)


@needs_tesseract
def test_scanned_pages_are_read_by_ocr_and_marked(tmp_path: Path, store: Store) -> None:
    path = _scanned_pdf(
        tmp_path / "scan.pdf",
        [None, "The vault access code\nis 482913 according\nto the harbor office."],
    )
    progress: list[tuple[int, int, str]] = []
    notices: list[str] = []
    doc, _ = read_document(
        path, store=store, on_progress=lambda *a: progress.append(a), on_notice=notices.append
    )
    assert [p.ocr for p in doc.pages] == [False, True]
    assert "482913" in doc.pages[1].text
    assert "harbor" in doc.pages[1].text.lower()
    assert "ocr" in doc.extractor
    assert progress[-1][:2] == (2, 2) and any(stage == "ocr" for _, _, stage in progress)
    assert "page 2 had no text layer and was read by OCR" in notices[0]
    # The stored document keeps the flag; the layout and citations say OCR.
    stored = store.get_document(doc.sha256)
    assert stored is not None and stored.pages[1].ocr
    layout = layout_document(stored)
    assert "[scan.pdf p.1]\n" in layout and "[scan.pdf p.2, OCR]\n" in layout
    from engine.corpus import Corpus

    cites = check_citations('The code is 482913 [scan.pdf p.2, OCR].', Corpus((stored,)))
    assert [(c.document, c.page, c.exists) for c in cites] == [("scan.pdf", 2, True)]


# -- limits, crashes and files that change ---------------------------------------------


def test_time_limit_is_per_page_not_per_document(fact_pdf: Path, store: Store) -> None:
    with pytest.raises(ExtractionTimeout, match="took longer than 2 seconds on one page"):
        read_document(fact_pdf, store=store, pdf_timeout_s=2, pdf_worker=hooks.hang_after_first_page)
    _assert_store_untouched(store)


def test_extractor_that_dies_is_reported(fact_pdf: Path, store: Store) -> None:
    with pytest.raises(ExtractionTimeout, match="stopped unexpectedly"):
        read_document(fact_pdf, store=store, pdf_worker=hooks.die_abruptly)
    _assert_store_untouched(store)


def test_a_bug_in_the_reader_is_reported_as_a_bug_with_its_traceback(fact_pdf: Path, store: Store) -> None:
    with pytest.raises(ExtractorBug) as info:
        read_document(fact_pdf, store=store, pdf_worker=hooks.hit_a_bug)
    assert not isinstance(info.value, EngineError)  # the crash dialog / a CLI traceback, not "damaged"
    message = str(info.value)
    assert "bug in Longread's PDF reader, not a problem with the file" in message
    assert "Traceback (most recent call last)" in message
    assert "_read_part" in message and "TypeError" in message
    assert "damaged" not in message
    _assert_store_untouched(store)


def test_an_error_inside_a_pdf_library_is_still_a_damaged_pdf(fact_pdf: Path, store: Store) -> None:
    with pytest.raises(PdfError, match=r"handbook.pdf is damaged and could not be read \(KeyError") as info:
        read_document(fact_pdf, store=store, pdf_worker=hooks.pdf_library_fails)
    assert "Traceback" not in str(info.value)
    _assert_store_untouched(store)


def test_pdf_that_changes_while_being_read(fact_pdf: Path, store: Store) -> None:
    with pytest.raises(IngestError, match="handbook.pdf changed while Longread was reading it"):
        read_document(fact_pdf, store=store, pdf_worker=hooks.change_file_then_extract)
    _assert_store_untouched(store)
    # Saved and stable now: it reads, under the hash of its new bytes.
    doc, extracted = read_document(fact_pdf, store=store)
    assert extracted and doc.n_pages == 4


def test_pdf_that_disappears_while_being_read(fact_pdf: Path, store: Store) -> None:
    with pytest.raises(IngestError, match="handbook.pdf disappeared while Longread was reading it"):
        read_document(fact_pdf, store=store, pdf_worker=hooks.delete_file_then_extract)
    _assert_store_untouched(store)


def test_missing_file_is_a_plain_error(tmp_path: Path, store: Store) -> None:
    with pytest.raises(IngestError, match="Cannot read gone.pdf"):
        read_document(tmp_path / "gone.pdf", store=store)


# -- long PDFs: parallel pages with progress -------------------------------------------


def test_parallel_extraction_matches_sequential(tmp_path: Path) -> None:
    pages = [f"Page {i} of the long filing. Clause {i * 7} says item {i * 13} is due." for i in range(1, 41)]
    path = write_pdf(tmp_path / "long.pdf", pages)
    seen: list[tuple[int, int, str]] = []
    parallel = extract_pdf(path, workers=2, parallel_min_pages=10, on_progress=lambda *a: seen.append(a))
    sequential = extract_pdf(path, workers=1)
    assert parallel.pages == sequential.pages
    assert len(parallel.pages) == 40
    assert all(f"Clause {i * 7} says" in parallel.pages[i - 1] for i in range(1, 41))
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and done[-1] == 40 and {t for _, t, _ in seen} == {40}
