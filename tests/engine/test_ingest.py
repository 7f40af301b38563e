"""Ingestion with real PDFs and text files: pages, dedup, and every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.corpus import layout_document
from engine.errors import EmptyDocumentError, ExtractionTimeout, IngestError, PdfError, UnsupportedFormatError
from engine.ingest import collect_files, read_document, read_documents
from engine.store import Store
from tests.conftest import fact_pages, write_pdf
from tests.engine import hooks


def test_pdf_pages_are_kept_in_order(fact_pdf: Path, store: Store) -> None:
    doc, extracted = read_document(fact_pdf, store=store)
    assert extracted
    assert doc.n_pages == 4
    assert [p.number for p in doc.pages] == [1, 2, 3, 4]
    assert "482913" in doc.pages[2].text
    assert all("482913" not in p.text for i, p in enumerate(doc.pages) if i != 2)
    assert doc.pages[0].text.startswith("Page 1 of the harbor office handbook")


def test_layout_marks_every_page(fact_pdf: Path, store: Store) -> None:
    doc, _ = read_document(fact_pdf, store=store)
    text = layout_document(doc)
    for n in range(1, 5):
        assert f"[handbook.pdf p.{n}]" in text
    # The fact sits after page 3's marker and before page 4's.
    assert text.index("[handbook.pdf p.3]") < text.index("482913") < text.index("[handbook.pdf p.4]")


def test_stored_document_is_never_extracted_again(fact_pdf: Path, store: Store) -> None:
    first, extracted = read_document(fact_pdf, store=store)
    assert extracted

    def must_not_run(*args: object) -> None:  # pragma: no cover - would fail the test
        raise AssertionError("extractor ran for a stored document")

    # The same bytes under another name are the same document, found by hash.
    copy = fact_pdf.with_name("copy-of-handbook.pdf")
    copy.write_bytes(fact_pdf.read_bytes())
    again, extracted_again = read_document(copy, store=store, pdf_worker=must_not_run)
    assert not extracted_again
    assert again.sha256 == first.sha256
    assert again.name == "copy-of-handbook.pdf"
    assert again.pages == first.pages
    assert store.count_documents() == 1


def test_text_file_is_split_into_pages(tmp_path: Path, store: Store) -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 120 for i in range(40)]
    path = tmp_path / "notes.md"
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    doc, _ = read_document(path, store=store)
    assert doc.n_pages > 5
    assert all(len(p.text) <= 3000 for p in doc.pages)
    joined = " ".join(p.text for p in doc.pages)
    assert "Paragraph 0." in joined and "Paragraph 39." in joined


def test_legacy_encodings_are_detected(tmp_path: Path, store: Store) -> None:
    cp = tmp_path / "windows.txt"
    cp.write_bytes("Caf\u00e9 cr\u00e8me \u2014 \u201cquoted\u201d".encode("cp1252"))
    doc, _ = read_document(cp, store=store)
    assert doc.pages[0].text == "Caf\u00e9 cr\u00e8me \u2014 \u201cquoted\u201d"
    u16 = tmp_path / "utf16.txt"
    u16.write_text("Na\u00efve r\u00e9sum\u00e9", encoding="utf-16")
    doc16, _ = read_document(u16, store=store)
    assert doc16.pages[0].text == "Na\u00efve r\u00e9sum\u00e9"


def test_folder_is_read_recursively_and_skips_non_documents(tmp_path: Path, store: Store) -> None:
    folder = tmp_path / "exhibits"
    (folder / "sub").mkdir(parents=True)
    write_pdf(folder / "a.pdf", fact_pages(2))
    (folder / "sub" / "b.txt").write_text("Exhibit B text.", encoding="utf-8")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    collected = collect_files([folder])
    assert [p.name for p in collected.files] == ["a.pdf", "b.txt"]
    assert [p.name for p, _ in collected.skipped] == ["photo.jpg"]
    docs, skipped = read_documents([folder], store=store)
    assert [d.name for d in docs] == ["a.pdf", "b.txt"]
    assert len(skipped) == 1


# -- bad input: a clear message, and the store unchanged ---------------------------


def _assert_store_untouched(store: Store) -> None:
    assert store.count_documents() == 0
    assert store.integrity_check() == "ok"


def test_empty_file(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match="empty.pdf is empty"):
        read_document(path, store=store)
    _assert_store_untouched(store)


def test_pdf_that_is_not_a_pdf(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "letter.pdf"
    path.write_text("Dear Sir, this is a plain letter.", encoding="utf-8")
    with pytest.raises(PdfError, match="letter.pdf is not a PDF file"):
        read_document(path, store=store)
    _assert_store_untouched(store)


def test_truncated_pdf(tmp_path: Path, store: Store) -> None:
    whole = write_pdf(tmp_path / "whole.pdf", fact_pages(6))
    data = whole.read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(PdfError) as info:
        read_document(path, store=store)
    message = str(info.value)
    assert "cut.pdf" in message
    assert "Traceback" not in message
    _assert_store_untouched(store)


def test_pdf_extractor_time_limit(fact_pdf: Path, store: Store) -> None:
    with pytest.raises(ExtractionTimeout, match=r"handbook.pdf took longer than 2 seconds"):
        read_document(fact_pdf, store=store, pdf_timeout_s=2, pdf_worker=hooks.hang_forever)
    _assert_store_untouched(store)


def test_pdf_extractor_memory_limit(fact_pdf: Path, store: Store) -> None:
    from engine.ingest.pdf import extract_pdf

    with pytest.raises(ExtractionTimeout, match="more memory than allowed"):
        extract_pdf(fact_pdf, timeout_s=60, memory_mb=256, worker=hooks.exhaust_memory)
    _assert_store_untouched(store)


def test_binary_junk_named_txt(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "junk.txt"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(IngestError, match="junk.txt is not a text file"):
        read_document(path, store=store)
    _assert_store_untouched(store)


def test_unsupported_format(tmp_path: Path) -> None:
    path = tmp_path / "slides.pptx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedFormatError, match="slides.pptx"):
        collect_files([path])


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        collect_files([tmp_path / "nowhere.pdf"])


def test_scan_without_text_layer(tmp_path: Path, store: Store) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.rect(20, 20, 100, 60, style="F")  # a drawing, no text
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    with pytest.raises(EmptyDocumentError, match="no text layer on any of its 2 pages"):
        read_document(path, store=store)
    _assert_store_untouched(store)
