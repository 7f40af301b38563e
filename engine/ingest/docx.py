"""Word documents (.docx) through python-docx: paragraphs and tables in reading order.

The only importer of ``docx``. A .docx has no fixed pages (Word lays them out when it
prints), so sections stand in for them: a new section starts at each heading (``Title``,
``Heading 1`` to ``Heading 3``) and at each explicit page break, and a long section is cut
like a text file. Tables are read row by row, cells separated by tabs.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from engine.errors import EmptyDocumentError, IngestError
from engine.ingest.sections import check_zip, pages_from_sections

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_SECTION_STYLES = ("title", "heading 1", "heading 2", "heading 3")


def _paragraph_breaks_page(element: Any) -> bool:
    for br in element.iter(f"{_W}br"):
        if br.get(f"{_W}type") == "page":
            return True
    return element.find(f"{_W}pPr/{_W}pageBreakBefore") is not None


def docx_sections(data: bytes, *, name: str) -> list[str]:
    """Return the text of a .docx, one string per section.

    Raises:
        IngestError: not a Word document, or damaged.
    """
    from docx import Document as open_docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_zip(archive, name=name, size_bytes=len(data))
        document = open_docx(io.BytesIO(data))
    except IngestError:
        raise
    except Exception as exc:  # python-docx raises zip, XML and key errors on bad files
        raise IngestError(
            f"{name} is not a Word document Longread can read ({type(exc).__name__}). "
            "If it is an old .doc or damaged, open it in Word or LibreOffice and save it as .docx again.",
            path=name,
            detail=str(exc),
        ) from exc
    sections: list[list[str]] = [[]]
    body = document.element.body
    for child in body.iterchildren():
        if child.tag == f"{_W}p":
            paragraph = Paragraph(child, document)
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            if style.lower() in _SECTION_STYLES and any(sections[-1]):
                sections.append([])
            sections[-1].append(paragraph.text)
            if _paragraph_breaks_page(child):
                sections.append([])
        elif child.tag == f"{_W}tbl":
            table = Table(child, document)
            for row in table.rows:
                cells: list[str] = []
                for cell in row.cells:
                    if not cells or cell.text != cells[-1]:  # merged cells repeat their text
                        cells.append(cell.text)
                sections[-1].append("\t".join(cells))
    return ["\n".join(lines) for lines in sections if any(line.strip() for line in lines)]


def extract_docx_pages(data: bytes, *, name: str) -> list[str]:
    """Return the pages (sections) of a .docx.

    Raises:
        EmptyDocumentError: the document has no text.
        IngestError: not a Word document, or damaged.
    """
    pages = pages_from_sections(docx_sections(data, name=name))
    if not pages:
        raise EmptyDocumentError(f"{name} has no text to read.", path=name)
    return pages
