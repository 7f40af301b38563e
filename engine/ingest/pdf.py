"""PDF text extraction in a child process with a time and a memory limit.

The only importer of ``pypdf``. A crafted PDF can make a parser loop forever or eat all
memory, and a hang raises nothing, so extraction runs in a ``spawn``ed child process
(no inherited threads or model): the parent waits at most ``timeout_s`` and the child
caps its own address space at ``memory_mb``. Whatever goes wrong comes back as an
``IngestError`` with a plain message; the parent never sees a half-read document.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from engine.errors import EmptyDocumentError, ExtractionTimeout, IngestError, PasswordRequired, PdfError

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_MB = 2048

Worker = Callable[[str, "str | None", Connection, int], None]


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


def extract_pdf_child(path: str, password: str | None, conn: Connection, memory_mb: int) -> None:
    """Child-process entry: read every page's text and send it back through ``conn``.

    Sends ``("ok", pages)`` or ``("error", kind, message)``.
    """
    _limit_memory(memory_mb)
    try:
        conn.send(("ok", _read_pages(path, password)))
    except MemoryError:
        conn.send(("error", "memory", ""))
    except _Failure as failure:
        conn.send(("error", failure.kind, failure.message))
    except Exception as exc:  # pypdf raises many types on broken files
        conn.send(("error", "broken", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))
    finally:
        conn.close()


class _Failure(Exception):
    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.message = message


def _read_pages(path: str, password: str | None) -> list[str]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise _Failure("not_pdf")
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            # An empty user password opens owner-password-only PDFs.
            if not reader.decrypt(password or ""):
                raise _Failure("wrong_password" if password else "password")
        return [(page.extract_text() or "") for page in reader.pages]
    except FileNotDecryptedError as exc:
        raise _Failure("password") from exc
    except PdfReadError as exc:
        raise _Failure("broken", str(exc)) from exc


def extract_pdf(
    path: Path,
    *,
    name: str | None = None,
    password: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    worker: Worker = extract_pdf_child,
) -> list[str]:
    """Return the text of every page of the PDF at ``path``.

    Args:
        path: the PDF file.
        name: the name to use in messages (default: the file name).
        password: the user password, for encrypted PDFs. Never stored or logged.
        timeout_s: wall-clock limit for the extraction.
        memory_mb: address-space limit of the child process.
        worker: the child's entry point (tests pass one that hangs).

    Raises:
        PdfError: not a PDF, broken, or encrypted.
        PasswordRequired: the PDF needs a password (or the one given is wrong).
        ExtractionTimeout: the extractor ran past ``timeout_s`` or out of memory.
        EmptyDocumentError: no page has any text (a scan without a text layer).
    """
    label = name or path.name
    ctx = multiprocessing.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    process = ctx.Process(target=worker, args=(str(path), password, child_conn, memory_mb), daemon=True)
    process.start()
    child_conn.close()
    try:
        if not parent_conn.poll(timeout_s):
            raise ExtractionTimeout(
                f"Reading {label} took longer than {timeout_s:.0f} seconds and was stopped. "
                "The PDF may be damaged or built to stall readers; try printing it to a new PDF.",
                path=str(path),
            )
        try:
            message: Any = parent_conn.recv()
        except EOFError:
            message = ("error", "died", "")
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        parent_conn.close()
    if message[0] == "ok":
        pages: list[str] = message[1]
        if not any(p.strip() for p in pages):
            raise EmptyDocumentError(
                f"{label} has no text layer on any of its {len(pages)} pages: it looks like a scan. "
                "Longread needs text; run OCR on it (for example with ocrmypdf) and add it again.",
                path=str(path),
            )
        return pages
    _, kind, detail = message
    raise _error_for(kind, label, str(path), detail)


def _error_for(kind: str, label: str, path: str, detail: str) -> IngestError:
    if kind == "not_pdf":
        return PdfError(f"{label} is not a PDF file, although its name ends in .pdf.", path=path)
    if kind == "password":
        return PasswordRequired(f"{label} is encrypted: enter its password to read it.", path=path)
    if kind == "wrong_password":
        return PasswordRequired(f"The password for {label} is not right.", path=path)
    if kind in ("memory", "died"):
        return ExtractionTimeout(
            f"Reading {label} needed more memory than allowed and was stopped. "
            "The PDF may be damaged; try printing it to a new PDF.",
            path=path,
            detail=detail,
        )
    return PdfError(
        f"{label} is damaged and could not be read ({detail.splitlines()[0] if detail else 'unknown error'}). "
        "Try opening and re-saving it in a PDF viewer.",
        path=path,
        detail=detail,
    )
