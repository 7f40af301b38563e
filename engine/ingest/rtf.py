"""Rich Text Format (.rtf) through striprtf; ``\\page`` breaks and long spans make pages.

The only importer of ``striprtf``. RTF is 7-bit text with escapes; characters outside
ASCII come as ``\\'xx`` in the document's code page (``\\ansicpgNNNN``, cp1252 by default)
or as ``\\uNNNN``. striprtf decodes both.
"""

from __future__ import annotations

import re

from engine.errors import EmptyDocumentError, IngestError
from engine.ingest.sections import pages_from_sections

_CODEPAGE = re.compile(rb"\\ansicpg(\d+)")
_PAGE_BREAK = re.compile(r"\\page(?![a-z])")
# Plain text striprtf passes through untouched, split on afterwards.
_MARK = "@@longread-page-break@@"


def extract_rtf_pages(data: bytes, *, name: str) -> list[str]:
    """Return the pages of an RTF document.

    Raises:
        EmptyDocumentError: no text.
        IngestError: not RTF, or damaged.
    """
    from striprtf.striprtf import rtf_to_text

    if not data.lstrip().startswith(b"{\\rtf"):
        raise IngestError(f"{name} is not an RTF document, although its name ends in .rtf.", path=name)
    match = _CODEPAGE.search(data[:4096])
    encoding = f"cp{match.group(1).decode()}" if match else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    source = data.decode("latin-1")  # RTF itself is ASCII; escapes carry the rest
    # Keep explicit page breaks as a mark striprtf leaves alone.
    source = _PAGE_BREAK.sub(lambda _: f"\\par {_MARK}\\par ", source)
    try:
        text: str = rtf_to_text(source, encoding=encoding, errors="replace")  # type: ignore[no-untyped-call]
    except Exception as exc:  # striprtf is a hand-written parser; damage raises anything
        raise IngestError(f"{name} is a damaged RTF document ({type(exc).__name__}).", path=name) from exc
    pages = pages_from_sections(text.split(_MARK))
    if not pages:
        raise EmptyDocumentError(f"{name} has no text to read.", path=name)
    return pages
