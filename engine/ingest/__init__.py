"""Turn files and folders into ``Document``s, never extracting a stored one twice.

``collect_files`` expands folders (recursively, in name order) and notes what it skips.
``read_document`` hashes a file's bytes first: if the store already has that hash the
stored document is returned and nothing is extracted. Otherwise the format's module
extracts the pages and the document is written to the store with all its pages in one
transaction, so a crash or a bad file never leaves half a document behind.

Formats, one module each: PDF (``pdf``: PDFium, pypdf and Tesseract in child processes
with limits), text and Markdown (``text``), Word .docx (``docx``), HTML (``html``), EPUB
(``epub``) and RTF (``rtf``). Formats without pages number their sections as pages
(headings, chapters, page breaks) so that every citation points somewhere.

Every format but PDF is extracted from the bytes that were hashed, so the stored text is
the hashed content. A PDF is read again by its children; if the file changed or vanished
meanwhile, the document is refused rather than stored under the wrong hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.corpus import Document, Page, hash_bytes, hash_file
from engine.errors import EmptyDocumentError, IngestError, UnsupportedFormatError
from engine.ingest import docx, epub, html, pdf, rtf, text
from engine.ingest.ocr import INSTALL_HINT
from engine.ingest.sections import format_page_list
from engine.store import Store

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
PDF_SUFFIXES = {".pdf"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
DOCX_SUFFIXES = {".docx"}
EPUB_SUFFIXES = {".epub"}
RTF_SUFFIXES = {".rtf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | PDF_SUFFIXES | HTML_SUFFIXES | DOCX_SUFFIXES | EPUB_SUFFIXES | RTF_SUFFIXES
SUPPORTED_LABEL = "PDF, Word (.docx), EPUB, HTML, RTF, .txt and .md files"

# Formats people often try, with what to do instead.
_HINTS = {
    ".doc": "save it as .docx (Word or LibreOffice: File > Save As)",
    ".odt": "save it as .docx or PDF",
    ".pages": "export it as PDF or .docx",
    ".mobi": "convert it to EPUB (for example with Calibre)",
    ".azw3": "convert it to EPUB (for example with Calibre)",
}

NoticeFn = Callable[[str], None]


@dataclass
class Collected:
    """Files found under the given paths, and what was skipped with why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _unsupported_reason(path: Path) -> str:
    suffix = path.suffix.lower()
    hint = _HINTS.get(suffix)
    what = suffix or "a file without an extension"
    return f"{what} is not a document type Longread reads" + (f": {hint}" if hint else "")


def collect_files(paths: Iterable[Path]) -> Collected:
    """Expand ``paths`` into document files, folders recursively, in name order.

    Raises:
        IngestError: a path does not exist, or a named file is not a supported format.
    """
    found = Collected()
    for path in paths:
        if not path.exists():
            raise IngestError(f"{path} does not exist.", path=str(path))
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue  # hidden files and folders (.git, .DS_Store)
                if child.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.files.append(child)
                else:
                    found.skipped.append((child, _unsupported_reason(child)))
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            found.files.append(path)
        else:
            raise UnsupportedFormatError(
                f"{path.name}: Longread reads {SUPPORTED_LABEL}; {_unsupported_reason(path)}.",
                path=str(path),
            )
    return found


def read_document(
    path: Path,
    *,
    store: Store | None = None,
    password: str | None = None,
    pdf_timeout_s: float = pdf.DEFAULT_TIMEOUT_S,
    pdf_worker: pdf.Worker = pdf.extract_pdf_child,
    pdf_workers: int | None = None,
    ocr: bool | None = None,
    on_progress: pdf.ProgressFn | None = None,
    on_notice: NoticeFn | None = None,
) -> tuple[Document, bool]:
    """Read one file into a ``Document``; return it and whether it was extracted now.

    A document whose bytes are already in ``store`` is returned from the store
    (``False``): it is never extracted twice. A new one is stored before returning.

    Args:
        path: the file.
        store: where documents are kept (None: read only).
        password: the user password of an encrypted PDF; never stored or logged.
        pdf_timeout_s: the longest PDF extraction may go without finishing a page.
        pdf_worker: the PDF child's entry point (tests).
        pdf_workers: children reading a long PDF at once (default: one per core).
        ocr: read scanned PDF pages with Tesseract (default: when it is installed).
        on_progress: (pages done, pages in all, stage) while a PDF is read.
        on_notice: called with sentences worth showing (scanned pages, OCR used).

    Raises:
        IngestError: the file cannot be read (empty, broken, encrypted, too slow,
            changed while being read, ...).
        StorageError: the store cannot be written.
    """
    try:
        before = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"Cannot read {path.name}: {exc.strerror or exc}.", path=str(path)) from exc
    if not data.strip():
        raise EmptyDocumentError(f"{path.name} is empty: there is no text to read.", path=str(path))
    sha = hash_bytes(data)
    if store is not None:
        known = store.get_document(sha)
        if known is not None:
            return (known if known.name == path.name else replace(known, name=path.name)), False
    suffix = path.suffix.lower()
    name = path.name
    ocr_flags: list[bool] | None = None
    if suffix in PDF_SUFFIXES:
        try:
            result = pdf.extract_pdf(
                path,
                password=password,
                timeout_s=pdf_timeout_s,
                worker=pdf_worker,
                workers=pdf_workers,
                ocr=ocr,
                on_progress=on_progress,
            )
        except IngestError:
            _check_unchanged(path, before.st_size, before.st_mtime_ns, sha)
            raise
        _check_unchanged(path, before.st_size, before.st_mtime_ns, sha)
        texts, kind, extractor = result.pages, "pdf", result.extractor
        ocr_flags = [s == "ocr" for s in result.sources]
        _notify_scans(name, result, on_notice)
    elif suffix in TEXT_SUFFIXES:
        texts, encoding = text.extract_text_pages(data, name=name)
        kind, extractor = ("markdown" if suffix in {".md", ".markdown"} else "text"), f"text/{encoding}"
    elif suffix in HTML_SUFFIXES:
        texts, kind, extractor = html.extract_html_pages(data, name=name), "html", "html.parser"
    elif suffix in DOCX_SUFFIXES:
        texts, kind, extractor = docx.extract_docx_pages(data, name=name), "docx", "python-docx"
    elif suffix in EPUB_SUFFIXES:
        texts, kind, extractor = epub.extract_epub_pages(data, name=name), "epub", "epub"
    elif suffix in RTF_SUFFIXES:
        texts, kind, extractor = rtf.extract_rtf_pages(data, name=name), "rtf", "striprtf"
    else:
        raise UnsupportedFormatError(f"{name}: {_unsupported_reason(path)}.", path=str(path))
    flags = ocr_flags or [False] * len(texts)
    doc = Document(
        sha256=sha,
        name=name,
        kind=kind,
        pages=tuple(Page(number=i, text=t, ocr=f) for i, (t, f) in enumerate(zip(texts, flags, strict=True), start=1)),
        path=str(path.resolve()),
        size_bytes=len(data),
        extractor=extractor,
    )
    if store is not None:
        store.add_document(doc)
    return doc, True


def _check_unchanged(path: Path, size: int, mtime_ns: int, sha: str) -> None:
    """Refuse a file that vanished or changed while its children were reading it."""
    try:
        now = path.stat()
        changed = now.st_size != size or now.st_mtime_ns != mtime_ns or hash_file(path) != sha
    except OSError as exc:
        raise IngestError(
            f"{path.name} disappeared while Longread was reading it. Nothing was added; add it again.",
            path=str(path),
        ) from exc
    if changed:
        raise IngestError(
            f"{path.name} changed while Longread was reading it. Nothing was added; add it again once it is saved.",
            path=str(path),
        )


def _notify_scans(name: str, result: pdf.PdfText, on_notice: NoticeFn | None) -> None:
    if on_notice is None:
        return
    if result.ocr_pages:
        pages = result.ocr_pages
        many = len(pages) > 1
        on_notice(
            f"{name}: page{'s' if many else ''} {format_page_list(pages)} had no text layer and "
            f"{'were' if many else 'was'} read by OCR; recognition can get words wrong, and citations "
            'of these pages say "OCR".'
        )
    empty = result.empty_pages
    if empty:
        what = f"{name}: page{'s' if len(empty) > 1 else ''} {format_page_list(empty)} of {len(result.pages)} "
        if result.ocr_missing:
            on_notice(what + f"have no text layer (scanned?) and were left empty. {INSTALL_HINT}")
        else:
            on_notice(what + "have no text that Longread could find, even by OCR; they were left empty.")


def read_documents(
    paths: Iterable[Path],
    *,
    store: Store | None = None,
    password: str | None = None,
    on_file: Callable[[int, int, Path], None] | None = None,
    on_progress: pdf.ProgressFn | None = None,
    on_notice: NoticeFn | None = None,
) -> tuple[list[Document], list[tuple[Path, str]]]:
    """Read every document under ``paths`` in order; stop at the first bad file.

    Args:
        paths: files and folders.
        store: where documents are kept (None: read only).
        password: tried on encrypted PDFs; never stored or logged.
        on_file: (index, count, path) before each file.
        on_progress: (pages done, pages in all, stage) while a PDF is read.
        on_notice: sentences worth showing (scanned pages, OCR used).

    Returns:
        the documents, and the skipped non-document files with the reason.

    Raises:
        IngestError: the first file that cannot be read, naming it.
    """
    collected = collect_files(paths)
    if not collected.files:
        raise IngestError(f"No documents found: give Longread {SUPPORTED_LABEL}, or folders of them.")
    docs = []
    for i, path in enumerate(collected.files):
        if on_file is not None:
            on_file(i, len(collected.files), path)
        doc, _ = read_document(path, store=store, password=password, on_progress=on_progress, on_notice=on_notice)
        docs.append(doc)
    return docs, collected.skipped
