"""Child-process entry points for tests (importable by a spawned process)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from multiprocessing.connection import Connection

from engine.ingest.pdf import Job, extract_pdf_child, run_child


def hang_forever(job: Job, conn: Connection) -> None:
    """Stand-in for an extractor stuck on a crafted PDF: never answers."""
    while True:
        time.sleep(1)


def hang_after_first_page(job: Job, conn: Connection) -> None:
    """An extractor that reports one page and then stalls: the limit is per page, not total."""
    conn.send(("meta", 3, 1))
    conn.send(("page", 0, "First page text.", "pdfium"))
    while True:
        time.sleep(1)


def exhaust_memory(job: Job, conn: Connection) -> None:
    """Stand-in for an extractor that blows up on a crafted PDF: allocates past its limit.

    Runs under the real child's limit and error handling (``run_child``).
    """

    def allocate(job: Job, conn: Connection) -> None:
        hog = []
        while True:
            hog.append(bytearray(64 * 1024 * 1024))

    run_child(job, conn, allocate)


def die_abruptly(job: Job, conn: Connection) -> None:
    """An extractor killed by the system (a native crash): the pipe closes, nothing sent."""
    os._exit(1)


def change_file_then_extract(job: Job, conn: Connection) -> None:
    """The user saves the PDF again while it is being read: bytes change under the reader."""
    with open(job.path, "ab") as fh:
        fh.write(b"\n% saved again\n")
    extract_pdf_child(job, conn)


def delete_file_then_extract(job: Job, conn: Connection) -> None:
    """The PDF is moved away while it is being read."""
    os.unlink(job.path)
    extract_pdf_child(job, conn)


def hit_a_bug(job: Job, conn: Connection) -> None:
    """The real extractor with a bug of ours: a job field it compares pages with is None.

    The PDF opens and counts its pages fine; ``_read_part`` then raises ``TypeError`` in
    Longread's own code, under the real child's error handling.
    """
    extract_pdf_child(replace(job, parallel_min_pages=None), conn)  # type: ignore[arg-type]


def pdf_library_fails(job: Job, conn: Connection) -> None:
    """A PDF library raising a plain ``KeyError`` (as pypdf does on a crafted file), under
    the real child's error handling: the file's fault, not a bug."""

    def read(job: Job, conn: Connection) -> None:
        from pypdf.generic import DictionaryObject

        DictionaryObject()["/Pages"]

    run_child(job, conn, read)
