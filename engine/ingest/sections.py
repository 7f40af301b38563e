"""Sections to pages, for formats without pages (DOCX, HTML, EPUB, RTF), and zip guards.

A citation needs a number: a section (a heading's text, a chapter, a page break's span)
becomes one page, and a section longer than ``TEXT_PAGE_CHARS`` is cut like a text file,
so a page never holds more than the model's share of one screen. ``check_zip`` refuses
archives (DOCX and EPUB are zip files) that would inflate past a limit: a zip bomb is a
bad file like any other.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable

from engine.corpus import split_text_pages
from engine.errors import IngestError

# The most a DOCX or EPUB may inflate to, and the worst compression ratio accepted.
MAX_UNZIPPED_BYTES = 1 << 30
MAX_ZIP_RATIO = 200


def pages_from_sections(sections: Iterable[str]) -> list[str]:
    """Return pages: each non-empty section, cut where it is longer than a page."""
    pages: list[str] = []
    for section in sections:
        pages.extend(split_text_pages(section.strip()))
    return pages


def check_zip(archive: zipfile.ZipFile, *, name: str, size_bytes: int) -> None:
    """Refuse an archive whose members would inflate past the limits.

    Raises:
        IngestError: the archive claims more than ``MAX_UNZIPPED_BYTES`` or an absurd ratio.
    """
    total = sum(info.file_size for info in archive.infolist())
    if total > MAX_UNZIPPED_BYTES or total > max(size_bytes, 1 << 20) * MAX_ZIP_RATIO:
        raise IngestError(
            f"{name} would unpack to {total / 1e6:,.0f} MB from {size_bytes / 1e6:,.1f} MB: "
            "Longread does not open files built to fill the disk or memory.",
            path=name,
        )


def format_page_list(numbers: Iterable[int]) -> str:
    """Return ``1-3, 5, 7-8`` for [1, 2, 3, 5, 7, 8]."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
