"""Plain text and Markdown: decode, refuse binary junk, split into fixed-size pages.

Text files have no pages, so they are cut into pages of ``TEXT_PAGE_CHARS`` characters
(at paragraph or line breaks) and the UI says so. The encoding is detected, not assumed:
a BOM wins, then strict UTF-8, then UTF-16 without BOM, then charset-normalizer's guess
when it reads as a non-Latin script (cp1251 Cyrillic, Shift-JIS, GB18030, EUC-KR, ...),
then cp1252 (what Windows editors write), then latin-1, which decodes anything. Latin
text goes to cp1252 rather than to the detector, which confuses the Latin code pages
(it took a French cp1252 note for cp1250 here); a wrong cp1252 guess costs a few
accented letters, a wrong guess the other way garbles every one.
"""

from __future__ import annotations

from engine.corpus import split_text_pages
from engine.errors import EmptyDocumentError, IngestError

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_text(data: bytes, *, name: str) -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding)``.

    Raises:
        IngestError: the bytes are binary, not text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding), encoding
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = _decode_legacy(data)
    if _looks_binary(text):
        raise IngestError(
            f"{name} is not a text file: it holds binary data. "
            "If it is a document in another format, save it as PDF or text first.",
            path=name,
        )
    return text, encoding


def _decode_legacy(data: bytes) -> tuple[str, str]:
    # UTF-16 without a BOM: every other byte of ASCII text is NUL.
    if len(data) >= 4 and data[1::2].count(0) > len(data) // 4:
        try:
            return data.decode("utf-16-le"), "utf-16-le"
        except UnicodeDecodeError:
            pass
    guessed = _guess_non_latin(data)
    if guessed is not None:
        return guessed
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _guess_non_latin(data: bytes) -> tuple[str, str] | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    if best is None or best.encoding is None:
        return None
    try:
        text = data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    letters = [ch for ch in text[:8192] if ord(ch) > 0x24F and ch.isalpha()]
    if len(letters) < 8:
        return None  # Latin text (or too little to tell): cp1252 reads it better
    # Halfwidth katakana is what Cyrillic bytes look like when mistaken for Shift-JIS.
    halfwidth = sum(1 for ch in letters if 0xFF61 <= ord(ch) <= 0xFF9F)
    if halfwidth > len(letters) // 4:
        return None
    return text, best.encoding


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    if not sample:
        return False
    if "\x00" in sample:
        return True
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    return controls / len(sample) > 0.05


def extract_text_pages(data: bytes, *, name: str) -> tuple[list[str], str]:
    """Return the pages of a text file and the encoding it was read with.

    Raises:
        EmptyDocumentError: the file holds no text.
        IngestError: the file is binary.
    """
    text, encoding = decode_text(data, name=name)
    pages = split_text_pages(text)
    if not pages:
        raise EmptyDocumentError(f"{name} is empty: there is no text to read.", path=name)
    return pages, encoding
