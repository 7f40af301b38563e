"""OCR of scanned pages with Tesseract, through pytesseract, when Tesseract is installed.

The only importer of ``pytesseract``. Tesseract is a separate program the user installs
(Debian's ``tesseract-ocr``); Longread never bundles it. ``find_tesseract`` says whether
it is there, and ``INSTALL_HINT`` says how to get it when it is not. Pages are rendered
by PDFium (``engine.ingest.pdfium``) in the extraction child and read here, one page per
call, so the parent can show progress and enforce its time limit page by page.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

INSTALL_HINT = (
    "Install Tesseract OCR to read scanned pages: on Debian or Ubuntu `sudo apt install tesseract-ocr`, "
    "on macOS `brew install tesseract`, on Windows the installer from "
    "https://github.com/UB-Mannheim/tesseract/wiki. Then add the document again."
)

# Environment variable naming the tesseract program, for installs outside PATH.
TESSERACT_ENV = "LONGREAD_TESSERACT"


def find_tesseract() -> str | None:
    """Return the path of the ``tesseract`` program, or None when it is not installed."""
    configured = os.environ.get(TESSERACT_ENV)
    if configured is not None:
        # An explicit setting wins, even an empty or wrong one (tests use it to hide Tesseract).
        return configured if configured and os.path.isfile(configured) else None
    return shutil.which("tesseract")


def read_image(image: Image, *, language: str = "eng", timeout_s: float = 0) -> str:
    """Return the text Tesseract reads in ``image``.

    Args:
        image: a rendered page.
        language: Tesseract language code(s), e.g. ``eng`` or ``eng+deu``.
        timeout_s: stop Tesseract after this many seconds (0: no limit).

    Raises:
        RuntimeError: Tesseract is missing, failed, or ran past ``timeout_s``.
    """
    import pytesseract

    program = find_tesseract()
    if program is None:
        raise RuntimeError("Tesseract is not installed. " + INSTALL_HINT)
    pytesseract.pytesseract.tesseract_cmd = program
    # Pages are read in parallel by several children: one thread per Tesseract run.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        text: str = pytesseract.image_to_string(image, lang=language, timeout=timeout_s)
    except (pytesseract.TesseractError, pytesseract.TesseractNotFoundError, OSError) as exc:
        raise RuntimeError(f"Tesseract failed: {exc}") from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise RuntimeError(f"Tesseract took longer than {timeout_s:.0f} seconds on a page") from exc
    return text.strip()
