"""PDFium through pypdfium2: the fast path for PDF text, and page rendering for OCR.

The only importer of ``pypdfium2`` (one owner per native dependency, STYLE.md). It is
called only inside the extraction child process of ``engine.ingest.pdf``, never in the
app's own process: PDFium is native code fed untrusted files.

Why PDFium by default: on the same two real PDFs it extracted text about 15 times faster
than pypdf with comparable text (docs/architecture.md; ``benchmarks/ingest.py`` measures it again).
pypdf stays the owner of what it does best: telling a wrong password from a missing one,
repairing files PDFium refuses, and a second opinion on pages PDFium finds empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

# PDFium's FPDF_GetLastError codes (fpdfview.h).
_ERR_FORMAT = 3
_ERR_PASSWORD = 4
_ERR_SECURITY = 5


class PdfiumOpenError(Exception):
    """PDFium could not open the file; ``kind`` is ``password``, ``format`` or ``other``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class PdfiumDocument:
    """An open PDF: page count, page text and page images. Close it when done."""

    source = "pdfium"

    def __init__(self, path: str, *, password: str | None = None) -> None:
        """Open the PDF at ``path``.

        Raises:
            PdfiumOpenError: a password is needed or wrong, or the file is not a usable PDF.
        """
        import pypdfium2 as pdfium

        try:
            self._pdf: Any = pdfium.PdfDocument(path, password=password)
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            kinds = {_ERR_PASSWORD: "password", _ERR_SECURITY: "password", _ERR_FORMAT: "format"}
            kind = kinds.get(code, "other") if isinstance(code, int) else "other"
            raise PdfiumOpenError(kind, str(exc)) from exc

    def __len__(self) -> int:
        return len(self._pdf)

    def read_text(self, index: int) -> str:
        """Return the text of page ``index`` (0-based), with ``\\n`` line ends."""
        page = self._pdf[index]
        try:
            textpage = page.get_textpage()
            try:
                text: str = textpage.get_text_bounded()
            finally:
                textpage.close()
        finally:
            page.close()
        # PDFium ends lines with \r\n and marks soft line-end hyphens with \x02 (or \ufffe).
        return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "-").replace("\ufffe", "-")

    def render_page(self, index: int, *, dpi: int = 300) -> Image:
        """Return page ``index`` (0-based) as a greyscale PIL image at ``dpi``."""
        page = self._pdf[index]
        try:
            bitmap = page.render(scale=dpi / 72, grayscale=True)
            image: Image = bitmap.to_pil()
            return image
        finally:
            page.close()

    def close(self) -> None:
        self._pdf.close()
