"""Turn files and folders into ``Document``s, never extracting a stored one twice.

``collect_files`` expands folders (recursively, in name order) and notes what it skips.
``read_document`` hashes a file's bytes first: if the store already has that hash the
stored document is returned and nothing is extracted. Otherwise the format's module
extracts the pages (PDFs in a child process with limits) and the document is written to
the store with all its pages in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.corpus import Document, hash_bytes, make_pages
from engine.errors import EmptyDocumentError, IngestError, UnsupportedFormatError
from engine.ingest import pdf, text
from engine.store import Store

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | PDF_SUFFIXES


@dataclass
class Collected:
    """Files found under the given paths, and what was skipped with why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


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
                if child.name.startswith("."):
                    continue
                if child.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.files.append(child)
                else:
                    found.skipped.append((child, f"{child.suffix or 'no extension'} is not a document type Longread reads"))
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            found.files.append(path)
        else:
            raise UnsupportedFormatError(
                f"{path.name}: Longread reads PDF, .txt and .md files, not {path.suffix or 'files without an extension'}.",
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
) -> tuple[Document, bool]:
    """Read one file into a ``Document``; return it and whether it was extracted now.

    A document whose bytes are already in ``store`` is returned from the store
    (``False``): it is never extracted twice. A new one is stored before returning.

    Raises:
        IngestError: the file cannot be read (empty, broken, encrypted, too slow, ...).
        StorageError: the store cannot be written.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"Cannot read {path.name}: {exc.strerror}.", path=str(path)) from exc
    if not data.strip():
        raise EmptyDocumentError(f"{path.name} is empty: there is no text to read.", path=str(path))
    sha = hash_bytes(data)
    if store is not None:
        known = store.get_document(sha)
        if known is not None:
            return (known if known.name == path.name else replace(known, name=path.name)), False
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        texts = pdf.extract_pdf(path, password=password, timeout_s=pdf_timeout_s, worker=pdf_worker)
        kind, extractor = "pdf", "pypdf"
    elif suffix in TEXT_SUFFIXES:
        texts, encoding = text.extract_text_pages(data, name=path.name)
        kind, extractor = ("markdown" if suffix in {".md", ".markdown"} else "text"), f"text/{encoding}"
    else:
        raise UnsupportedFormatError(f"{path.name}: Longread does not read {suffix} files.", path=str(path))
    doc = Document(
        sha256=sha,
        name=path.name,
        kind=kind,
        pages=make_pages(texts),
        path=str(path.resolve()),
        size_bytes=len(data),
        extractor=extractor,
    )
    if store is not None:
        store.add_document(doc)
    return doc, True


ProgressFn = Callable[[int, int, Path], None]


def read_documents(
    paths: Iterable[Path],
    *,
    store: Store | None = None,
    on_file: ProgressFn | None = None,
) -> tuple[list[Document], list[tuple[Path, str]]]:
    """Read every document under ``paths`` in order; stop at the first bad file.

    Returns:
        the documents, and the skipped non-document files with the reason.

    Raises:
        IngestError: the first file that cannot be read, naming it.
    """
    collected = collect_files(paths)
    if not collected.files:
        raise IngestError("No documents found: give Longread PDF, .txt or .md files, or folders of them.")
    docs = []
    for i, path in enumerate(collected.files):
        if on_file is not None:
            on_file(i, len(collected.files), path)
        doc, _ = read_document(path, store=store)
        docs.append(doc)
    return docs, collected.skipped
