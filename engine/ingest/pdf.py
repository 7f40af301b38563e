"""PDF text extraction in child processes with a time and a memory limit.

The only importer of ``pypdf``. A crafted PDF can make a parser loop forever or eat all
memory, and a hang raises nothing, so extraction runs in ``spawn``ed child processes (no
inherited threads or model). Each child caps its own address space at ``memory_mb``; the
parent stops everything when no page has come back for ``timeout_s`` seconds (a stall,
not a total: a 1,000-page scan read by OCR may take an hour and still be progressing).
Whatever goes wrong with the file comes back as an ``IngestError`` with a plain message;
the parent never returns a half-read document. An exception that did not come from the
PDF libraries (or the OS, reading the file) is a bug in Longread, not a damaged PDF: it
comes back as ``ExtractorBug``, not an ``EngineError``, carrying the child's traceback,
so that the CLI prints it and the GUI shows it in the crash dialog.

Which extractor reads what (issue 7):

- PDFium (``engine.ingest.pdfium``) is the default text path: about 15x faster than pypdf
  on the same real PDFs, with comparable text.
- pypdf owns the hard cases: a PDF PDFium refuses to open (it repairs broken files with
  ``strict=False``), telling a wrong password from a missing one, and a second opinion on
  pages where PDFium finds no text.
- Pages still without text are scans: read with Tesseract (``engine.ingest.ocr``) when it
  is installed, and otherwise reported page by page.

A long PDF is split into contiguous page ranges read by ``workers`` children at once. The
first child counts the pages and says how many parts to use; only then are the others
started, each opening the file itself. Pages come back one message at a time, so the
parent reports progress and no child holds a whole document's text.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

from engine.errors import EmptyDocumentError, ExtractionTimeout, IngestError, PasswordRequired, PdfError

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_MB = 2048
# Below this many pages one child reads everything: starting another costs ~0.3 s.
PARALLEL_MIN_PAGES = 48
OCR_DPI = 300


def default_workers() -> int:
    """Children to read a long PDF with: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


@dataclass(frozen=True)
class Job:
    """What one extraction child does: which file, and which share of its pages."""

    path: str
    password: str | None = field(default=None, repr=False)  # kept out of logs and tracebacks
    memory_mb: int = DEFAULT_MEMORY_MB
    part: int = 0
    parts: int = 1
    decide_parts: bool = True
    parallel_min_pages: int = PARALLEL_MIN_PAGES
    ocr: bool = False
    ocr_language: str = "eng"
    ocr_timeout_s: float = 0


Worker = Callable[[Job, Connection], None]
ProgressFn = Callable[[int, int, str], None]

# Where an exception may come from and still be the file's fault: the PDF libraries,
# the image and OCR libraries they hand pages to, and pypdf's crypto. Crafted or broken
# PDFs make these raise almost anything (KeyError, ValueError, zlib.error, ...).
_PDF_LIBRARIES = ("pypdf", "pypdfium2", "pypdfium2_raw", "PIL", "pytesseract", "cryptography")


class ExtractorBug(RuntimeError):
    """A bug in Longread's PDF extraction child (not an ``EngineError``: not the file's
    fault). Its message ends with the child's traceback."""


@dataclass
class PdfText:
    """The pages of a PDF as extracted, and how each was read.

    ``sources[i]`` is ``pdfium``, ``pypdf``, ``ocr`` or ``none`` (no text found).
    """

    pages: list[str]
    sources: list[str]
    ocr_missing: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ocr_pages(self) -> list[int]:
        """1-based numbers of the pages read by OCR."""
        return [i + 1 for i, s in enumerate(self.sources) if s == "ocr"]

    @property
    def empty_pages(self) -> list[int]:
        """1-based numbers of the pages with no text at all."""
        return [i + 1 for i, t in enumerate(self.pages) if not t.strip()]

    @property
    def extractor(self) -> str:
        """The extractors used, e.g. ``pdfium``, ``pdfium+ocr``, ``pypdf``."""
        order = ("pdfium", "pypdf", "ocr")
        used = [s for s in order if s in self.sources]
        return "+".join(used) or "pdfium"


# -- the child ---------------------------------------------------------------------


def _limit_memory(memory_mb: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no rlimit; the time limit still holds.
        return
    limit = memory_mb * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass


class _Failure(Exception):
    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.message = message


class _Pages(Protocol):
    source: str

    def __len__(self) -> int: ...

    def read_text(self, index: int) -> str: ...

    def close(self) -> None: ...


class _PypdfPages:
    """pypdf behind the same three calls as ``PdfiumDocument``."""

    source = "pypdf"

    def __init__(self, path: str, password: str | None) -> None:
        import logging

        from pypdf import PdfReader
        from pypdf.errors import FileNotDecryptedError, PdfReadError

        logging.getLogger("pypdf").setLevel(logging.ERROR)
        try:
            self._reader = PdfReader(path, strict=False)
            if self._reader.is_encrypted:
                # An empty user password opens owner-password-only PDFs.
                if not self._reader.decrypt(password or ""):
                    raise _Failure("wrong_password" if password else "password")
            self._n = len(self._reader.pages)
        except FileNotDecryptedError as exc:
            raise _Failure("password") from exc
        except PdfReadError as exc:
            raise _Failure("broken", str(exc)) from exc

    def __len__(self) -> int:
        return self._n

    def read_text(self, index: int) -> str:
        return self._reader.pages[index].extract_text() or ""

    def close(self) -> None:
        pass


def _open_pages(path: str, password: str | None) -> _Pages:
    from engine.ingest.pdfium import PdfiumDocument, PdfiumOpenError

    try:
        doc = PdfiumDocument(path, password=password)
    except PdfiumOpenError as exc:
        # pypdf decides what a refused file is: encrypted (with or without the right
        # password, or with a cipher PDFium lacks), or damaged in a way it can repair.
        try:
            return _PypdfPages(path, password)
        except _Failure:
            raise
        except Exception as second:
            raise _Failure("broken", f"{exc}; pypdf: {type(second).__name__}: {second}") from second
    return doc


def extract_pdf_child(job: Job, conn: Connection) -> None:
    """Child-process entry: read this job's pages and send each back through ``conn``.

    Sends ``("meta", n_pages, parts)`` (first part only), then ``("ocr", count)`` before
    OCR, ``("page", index, text, source)`` per page, and ``("done",)``; or
    ``("error", kind, message)``.
    """
    run_child(job, conn, _read_part)


def run_child(job: Job, conn: Connection, read: Callable[[Job, Connection], None]) -> None:
    """Run ``read`` under the memory limit and turn what it raises into one error message."""
    _limit_memory(job.memory_mb)
    try:
        read(job, conn)
        conn.send(("done",))
    except MemoryError:
        conn.send(("error", "memory", ""))
    except _Failure as failure:
        conn.send(("error", failure.kind, failure.message))
    except OSError as exc:  # the file went away or the disk failed while reading
        conn.send(("error", "unreadable", exc.strerror or str(exc)))
    except Exception as exc:
        if _raised_by_pdf_library(exc):  # a damaged or crafted file
            conn.send(("error", "broken", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))
        else:  # our own code failed: a bug, with the whole traceback for the report
            conn.send(("error", "bug", traceback.format_exc()))
    finally:
        conn.close()


def _raised_by_pdf_library(exc: BaseException) -> bool:
    """Say whether ``exc`` comes from a PDF library: its type is theirs, or the innermost
    frame that is not the standard library's (``re``, ``_strptime``, ...) is theirs."""
    from engine.ingest.pdfium import PdfiumOpenError

    if isinstance(exc, PdfiumOpenError):  # pypdfium2's refusal, wrapped by its one importer
        return True
    if type(exc).__module__.split(".")[0] in _PDF_LIBRARIES:
        return True
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for frame in reversed(frames):
        top = str(frame.f_globals.get("__name__", "")).split(".")[0]
        if top in _PDF_LIBRARIES:
            return True
        if top not in sys.stdlib_module_names:
            return False  # our code (or another package) raised it
    return False


def _read_part(job: Job, conn: Connection) -> None:
    with open(job.path, "rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise _Failure("not_pdf")
    pages = _open_pages(job.path, job.password)
    try:
        n = len(pages)
        parts = job.parts
        if job.decide_parts:
            parts = job.parts if n >= job.parallel_min_pages else 1
            conn.send(("meta", n, parts))
        start, stop = (n * job.part) // parts, (n * (job.part + 1)) // parts
        empty: list[int] = []
        for i in range(start, stop):
            try:
                text = pages.read_text(i)
            except Exception:  # one bad page: leave it to the second opinion
                text = ""
            if text.strip():
                conn.send(("page", i, text, pages.source))
            else:
                empty.append(i)
        empty = _second_opinion(job, pages, empty, conn)
        if empty and job.ocr:
            _read_by_ocr(job, empty, conn)
        else:
            for i in empty:
                conn.send(("page", i, "", "none"))
    finally:
        pages.close()


def _second_opinion(job: Job, pages: _Pages, empty: list[int], conn: Connection) -> list[int]:
    """Ask pypdf for the pages PDFium found empty; return those still empty."""
    if not empty or pages.source != "pdfium":
        return empty
    try:
        other = _PypdfPages(job.path, job.password)
    except Exception:
        return empty
    still = []
    for i in empty:
        try:
            text = other.read_text(i)
        except Exception:
            text = ""
        if text.strip():
            conn.send(("page", i, text, "pypdf"))
        else:
            still.append(i)
    return still


def _read_by_ocr(job: Job, indexes: list[int], conn: Connection) -> None:
    from engine.ingest.ocr import read_image
    from engine.ingest.pdfium import PdfiumDocument

    conn.send(("ocr", len(indexes)))
    doc = PdfiumDocument(job.path, password=job.password)
    try:
        for i in indexes:
            image = doc.render_page(i, dpi=OCR_DPI)
            try:
                text = read_image(image, language=job.ocr_language, timeout_s=job.ocr_timeout_s)
            except RuntimeError as exc:
                raise _Failure("ocr", str(exc)) from exc
            finally:
                image.close()
            conn.send(("page", i, text, "ocr" if text.strip() else "none"))
    finally:
        doc.close()


# -- the parent --------------------------------------------------------------------


def extract_pdf(
    path: Path,
    *,
    name: str | None = None,
    password: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    workers: int | None = None,
    ocr: bool | None = None,
    ocr_language: str = "eng",
    parallel_min_pages: int = PARALLEL_MIN_PAGES,
    on_progress: ProgressFn | None = None,
    worker: Worker = extract_pdf_child,
) -> PdfText:
    """Return the text of every page of the PDF at ``path``.

    Args:
        path: the PDF file.
        name: the name to use in messages (default: the file name).
        password: the user password, for encrypted PDFs. Never stored or logged.
        timeout_s: the longest the extractors may go without finishing a page.
        memory_mb: address-space limit of each child process.
        workers: children reading a long PDF at once (default: one per core).
        ocr: read pages without text with Tesseract (default: when it is installed).
        ocr_language: Tesseract language code(s).
        parallel_min_pages: below this many pages one child reads everything.
        on_progress: called with (pages done, pages in all, stage) as pages come back;
            stage is ``text`` or ``ocr``.
        worker: the child's entry point (tests pass one that hangs).

    Raises:
        IngestError: the file could not be read (gone, or a disk error).
        PdfError: not a PDF, broken, or encrypted.
        PasswordRequired: the PDF needs a password (or the one given is wrong).
        ExtractionTimeout: the extractor stalled past ``timeout_s`` or ran out of memory.
        EmptyDocumentError: no page has any text (a scan, and OCR is not available).
        ExtractorBug: the child failed on a bug of ours (not an ``EngineError``).
    """
    from engine.ingest.ocr import INSTALL_HINT, find_tesseract

    label = name or path.name
    has_tesseract = find_tesseract() is not None
    use_ocr = has_tesseract if ocr is None else (ocr and has_tesseract)
    first = Job(
        path=str(path),
        password=password,
        memory_mb=memory_mb,
        parts=max(1, workers if workers is not None else default_workers()),
        parallel_min_pages=parallel_min_pages,
        ocr=use_ocr,
        ocr_language=ocr_language,
        ocr_timeout_s=timeout_s,
    )
    run = _Run(label, str(path), timeout_s, worker, on_progress)
    try:
        result = run.collect(first)
    finally:
        run.stop()
    result.ocr_missing = bool(result.empty_pages) and not has_tesseract and ocr is not False
    if not any(p.strip() for p in result.pages):
        n = len(result.pages)
        how = (
            INSTALL_HINT
            if result.ocr_missing
            else "OCR found no text on them either."
            if use_ocr
            else "Run OCR on it (for example with ocrmypdf) and add it again."
        )
        raise EmptyDocumentError(
            f"{label} has no text layer on any of its {n} page{'s' if n != 1 else ''}: it looks like a scan. {how}",
            path=str(path),
        )
    return result


class _Run:
    """The parent's side: children, their pipes, the stall clock, and the pages."""

    def __init__(self, label: str, path: str, timeout_s: float, worker: Worker, on_progress: ProgressFn | None):
        self.label = label
        self.path = path
        self.timeout_s = timeout_s
        self.worker = worker
        self.on_progress = on_progress
        self.ctx = multiprocessing.get_context("spawn")
        self.children: dict[Connection, BaseProcess] = {}

    def start(self, job: Job) -> None:
        parent_conn, child_conn = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(target=self.worker, args=(job, child_conn), daemon=True)
        process.start()
        child_conn.close()
        self.children[parent_conn] = process

    def stop(self) -> None:
        for conn, process in self.children.items():
            if process.is_alive():
                process.kill()
            process.join(5)
            conn.close()
        self.children.clear()

    def collect(self, first: Job) -> PdfText:
        self.start(first)
        open_conns = set(self.children)
        pages: list[str | None] = []
        sources: list[str] = []
        done = 0
        ocr_total = 0
        last = time.monotonic()
        while open_conns:
            ready = wait(list(open_conns), timeout=max(0.0, last + self.timeout_s - time.monotonic()))
            if not ready:
                raise ExtractionTimeout(
                    f"Reading {self.label} took longer than {self.timeout_s:.0f} seconds on one page and was "
                    "stopped. The PDF may be damaged or built to stall readers; try printing it to a new PDF.",
                    path=self.path,
                )
            last = time.monotonic()
            for conn in ready:
                assert isinstance(conn, Connection)
                try:
                    message: Any = conn.recv()
                except EOFError:
                    message = ("error", "died", "")
                kind = message[0]
                if kind == "meta":
                    n, parts = message[1], message[2]
                    pages, sources = [None] * n, ["none"] * n
                    before = set(self.children)
                    for k in range(1, parts):
                        self.start(replace(first, part=k, parts=parts, decide_parts=False))
                    open_conns |= set(self.children) - before
                    if self.on_progress is not None:
                        self.on_progress(0, n, "text")
                elif kind == "page":
                    index, text, source = message[1], message[2], message[3]
                    if pages[index] is None:
                        done += 1
                    pages[index], sources[index] = text, source
                    if self.on_progress is not None:
                        self.on_progress(done, len(pages), "ocr" if ocr_total else "text")
                elif kind == "ocr":
                    ocr_total += message[1]
                    if self.on_progress is not None:
                        self.on_progress(done, len(pages), "ocr")
                elif kind == "done":
                    open_conns.discard(conn)
                else:
                    _, error_kind, detail = message
                    if error_kind == "bug":
                        raise ExtractorBug(
                            f"Reading {self.label} failed on a bug in Longread's PDF reader, not a problem "
                            f"with the file. The reader's traceback:\n{detail}"
                        )
                    raise _error_for(error_kind, self.label, self.path, detail)
        missing = [i + 1 for i, p in enumerate(pages) if p is None]
        if missing:  # a child said done without sending all its pages: a bug, not the file
            raise RuntimeError(f"PDF extraction lost pages {missing[:10]} of {self.label}")
        return PdfText(pages=[p or "" for p in pages], sources=sources)


def _error_for(kind: str, label: str, path: str, detail: str) -> IngestError:
    if kind == "not_pdf":
        return PdfError(f"{label} is not a PDF file, although its name ends in .pdf.", path=path)
    if kind == "password":
        return PasswordRequired(f"{label} is encrypted: enter its password to read it.", path=path)
    if kind == "wrong_password":
        return PasswordRequired(f"The password for {label} is not right.", path=path)
    if kind == "died":
        return ExtractionTimeout(
            f"The reader of {label} stopped unexpectedly: it ran out of memory or crashed on a damaged PDF. "
            "Try printing it to a new PDF.",
            path=path,
            detail=detail,
        )
    if kind == "memory":
        return ExtractionTimeout(
            f"Reading {label} needed more memory than allowed and was stopped. "
            "The PDF may be damaged; try printing it to a new PDF.",
            path=path,
            detail=detail,
        )
    if kind == "unreadable":
        return IngestError(f"Cannot read {label}: {detail}.", path=path, detail=detail)
    if kind == "ocr":
        return PdfError(f"Reading the scanned pages of {label} failed: {detail}", path=path, detail=detail)
    return PdfError(
        f"{label} is damaged and could not be read ({detail.splitlines()[0] if detail else 'unknown error'}). "
        "Try opening and re-saving it in a PDF viewer.",
        path=path,
        detail=detail,
    )
