"""Plain text and Markdown: decode, refuse binary junk, split into fixed-size pages.

Text files have no pages, so they are cut into pages of ``TEXT_PAGE_CHARS`` characters
(at paragraph or line breaks) and the UI says so. The encoding is detected, not assumed:
a BOM wins, then strict UTF-8 (a file cut inside its last character included), then
UTF-16 without BOM, then the Cyrillic code pages, then charset-normalizer's guess when it
reads as a non-Latin script (Shift-JIS, GB18030, EUC-KR, ...) or as cp1250 in a Central
European language, then cp1252 (what Windows editors write), then latin-1, which decodes
anything. Other Latin text goes to cp1252 rather than to the detector, which confuses
the Latin code pages (it took a French cp1252 note for cp1250 here); a wrong cp1252 guess
costs a few accented letters, a wrong guess the other way garbles every one.

Cyrillic (issue 18 item 3): the same bytes decode as Cyrillic letters in cp1251, koi8-r,
cp866, mac-cyrillic and iso8859-5, and charset-normalizer took a short koi8-r text for
Shift-JIS and cp866 for cp1125. Each of those code pages is tried and the text is scored
as Russian-like: how many of its letter pairs are among the commonest of Russian, less
the letters whose case flips inside a word (koi8-r read as cp1251 swaps the cases) and
the symbols inside words. The best decoding wins when it reads as Russian at all.
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
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            text, encoding = data[: exc.start].decode("utf-8"), "utf-8"  # cut inside its last character
        else:
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
    cyrillic = guess_cyrillic(data)
    if cyrillic is not None:
        return cyrillic
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
    if best.encoding in _CENTRAL_EUROPEAN_CODECS and best.language in _CENTRAL_EUROPEAN:
        return text, best.encoding  # Polish, Czech, ... in cp1250: cp1252 would garble ą, ł, ż, ť
    letters = [ch for ch in text[:8192] if ord(ch) > 0x24F and ch.isalpha()]
    if len(letters) < 8:
        return None  # Latin text (or too little to tell): cp1252 reads it better
    # Halfwidth katakana is what Cyrillic bytes look like when mistaken for Shift-JIS.
    halfwidth = sum(1 for ch in letters if 0xFF61 <= ord(ch) <= 0xFF9F)
    if halfwidth > len(letters) // 4:
        return None
    return text, best.encoding


_CENTRAL_EUROPEAN_CODECS = frozenset({"cp1250"})
_CENTRAL_EUROPEAN = frozenset({"Polish", "Czech", "Slovak", "Hungarian", "Slovene", "Croatian", "Romanian"})
CYRILLIC_CODECS = ("cp1251", "koi8-r", "cp866", "mac-cyrillic", "iso8859-5")
# The commonest letter pairs of Russian prose (about a third of all pairs in real text;
# a wrong code page's letters rarely form them).
_RUSSIAN_PAIRS = frozenset(
    "ст но то на ен ов ни ра во ко ер не по ре пр ро ал ли ос го ан та ор ло ка ет ол ва ел ом ле "
    "ть ла де ри ес од ак ат ин ит он ки от ск ар те за ве ны ой ие да ми ме ти ий ый ая ое ся их "
    "ем ам ую же ль ды ви ду ег ас ых ей ча чт тв мо ди ил ык".split()
)
_MIN_CYRILLIC_LETTERS = 20
_MIN_SCORE = 0.15


def guess_cyrillic(data: bytes) -> tuple[str, str] | None:
    """``(text, encoding)`` when ``data`` reads as Russian-like text in one of the
    Cyrillic code pages (the best-scoring one), else None."""
    sample = data[:65536]
    if sum(1 for b in sample if b >= 0x80) < _MIN_CYRILLIC_LETTERS:
        return None
    best: tuple[float, str] | None = None
    for codec in CYRILLIC_CODECS:
        try:
            text = sample.decode(codec)
        except UnicodeDecodeError:
            continue
        score = cyrillic_score(text)
        if score is not None and (best is None or score > best[0]):
            best = (score, codec)
    if best is None or best[0] < _MIN_SCORE:
        return None
    try:
        return data.decode(best[1]), best[1]
    except UnicodeDecodeError:  # the sample decoded, the rest does not: not this code page
        return None


def cyrillic_score(text: str) -> float | None:
    """How Russian-like ``text`` reads: the share of its Cyrillic letter pairs that are
    common Russian pairs, less the share of letters whose case flips inside a word and
    of symbols inside words. None when too few of its letters are Cyrillic to tell."""
    letters = [ch for ch in text if ch.isalpha()]
    cyrillic = [ch for ch in letters if "\u0400" <= ch <= "\u04ff"]
    if len(cyrillic) < _MIN_CYRILLIC_LETTERS or len(cyrillic) < 0.3 * len(letters):
        return None
    pairs = common = flips = odd = 0
    for a, b in zip(text, text[1:], strict=False):
        if not (a.isalpha() and "\u0400" <= a <= "\u04ff"):
            continue
        if b.isalpha() and "\u0400" <= b <= "\u04ff":
            pairs += 1
            common += (a + b).lower() in _RUSSIAN_PAIRS
            flips += a.islower() and b.isupper()
        elif not b.isspace() and not b.isascii():
            odd += 1  # a symbol glued to a Cyrillic letter: a letter of another code page
    if not pairs:
        return None
    return (common - flips - odd) / pairs


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
