"""EPUB books: chapters in spine order, each chapter's headings as sections.

Read with the standard library (``zipfile`` and ``xml.etree``): an EPUB is a zip of XHTML
chapters listed, in reading order, by the package file that ``META-INF/container.xml``
names. Each chapter goes through ``engine.ingest.html``, so a chapter and each heading in
it start a new page for citations. DRM-protected books (``META-INF/encryption.xml``
covering the chapters) cannot be read and say so.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from urllib.parse import unquote
from xml.etree import ElementTree

from engine.errors import EmptyDocumentError, IngestError
from engine.ingest.html import decode_html, html_sections
from engine.ingest.sections import check_zip, pages_from_sections

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_HTML_TYPES = {"application/xhtml+xml", "text/html"}


def _bad(name: str, why: str, exc: Exception | None = None) -> IngestError:
    return IngestError(f"{name} is not an EPUB book Longread can read: {why}.", path=name, detail=str(exc or ""))


def epub_chapters(data: bytes, *, name: str) -> list[list[str]]:
    """Return the chapters of an EPUB in reading order, each as its sections' text.

    Raises:
        IngestError: not an EPUB, damaged, or protected by DRM.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise _bad(name, "it is not a zip archive", exc) from exc
    with archive:
        check_zip(archive, name=name, size_bytes=len(data))
        try:
            container = ElementTree.fromstring(archive.read("META-INF/container.xml"))
            rootfile = container.find(f".//{_CONTAINER}rootfile")
            if rootfile is None or not rootfile.get("full-path"):
                raise _bad(name, "its container names no package file")
            opf_path = rootfile.get("full-path", "")
            package = ElementTree.fromstring(archive.read(opf_path))
        except KeyError as exc:
            raise _bad(name, f"{exc.args[0] if exc.args else 'a part'} is missing", exc) from exc
        except (ElementTree.ParseError, zipfile.BadZipFile, OSError) as exc:
            raise _bad(name, "its package file is damaged", exc) from exc
        if "META-INF/encryption.xml" in archive.namelist() and _has_drm(archive.read("META-INF/encryption.xml")):
            raise IngestError(
                f"{name} is protected by DRM: Longread cannot read it. Use a DRM-free copy of the book.", path=name
            )
        base = posixpath.dirname(opf_path)
        manifest = {item.get("id"): item for item in package.iter(f"{_OPF}item") if item.get("id") and item.get("href")}
        chapters: list[list[str]] = []
        for itemref in package.iter(f"{_OPF}itemref"):
            item = manifest.get(itemref.get("idref"))
            if item is None or item.get("media-type") not in _HTML_TYPES:
                continue
            member = posixpath.normpath(posixpath.join(base, unquote(item.get("href", ""))))
            try:
                raw = archive.read(member)
            except (KeyError, zipfile.BadZipFile, OSError):
                continue  # a chapter the spine names but the archive lacks: skip it
            sections = html_sections(decode_html(raw, name=name))
            if sections:
                chapters.append(sections)
        return chapters


def _has_drm(encryption_xml: bytes) -> bool:
    # Font obfuscation (IDPF/Adobe) also lives in encryption.xml and is harmless.
    text = encryption_xml.decode("utf-8", "replace")
    return "EncryptedData" in text and "obfuscation" not in text.lower() and "font" not in text.lower()


def extract_epub_pages(data: bytes, *, name: str) -> list[str]:
    """Return the pages of an EPUB: chapter by chapter, section by section.

    Raises:
        EmptyDocumentError: the book has no text.
        IngestError: not an EPUB, damaged, or protected by DRM.
    """
    pages: list[str] = []
    for chapter in epub_chapters(data, name=name):
        pages.extend(pages_from_sections(chapter))
    if not pages:
        raise EmptyDocumentError(f"{name} has no text to read.", path=name)
    return pages
