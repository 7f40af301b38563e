"""The page a citation points to: the rendered PDF page (Qt PDF) with the cited passage
highlighted, and beside it the text Longread extracted from that page.

The PDF is opened off the main thread (a ``QPdfDocument`` loaded in a pool thread and
moved to the main thread when ready), so a large or slow file never freezes the window.
Text documents (and PDFs that are no longer where they were) show the extracted text
only, and say why.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, Signal, Slot
from PySide6.QtPdf import QPdfDocument, QPdfSearchModel
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import QDialog, QLabel, QSplitter, QTextBrowser, QVBoxLayout, QWidget

from engine.corpus import Document
from engine.reading.citations import normalize

_pool = QThreadPool()
_pool.setMaxThreadCount(1)


class _PdfLoaded(QObject):
    """Signals: loaded(object): a QPdfDocument now living on the main thread, or the
    reason it did not open ("password" for a locked PDF, else None)."""

    loaded = Signal(object)


class _PdfLoader(QRunnable):
    def __init__(self, path: Path, signals: _PdfLoaded) -> None:
        super().__init__()
        self._path = path
        self._signals = signals

    def run(self) -> None:
        pdf = QPdfDocument()
        error = pdf.load(str(self._path))
        main = QCoreApplication.instance()
        if error != QPdfDocument.Error.None_ or main is None:
            pdf.deleteLater()
            self._signals.loaded.emit("password" if error == QPdfDocument.Error.IncorrectPassword else None)
            return
        pdf.moveToThread(main.thread())
        self._signals.loaded.emit(pdf)


def highlight_html(text: str, quote: str | None) -> str:
    """The page text as HTML with ``quote`` (whitespace- and case-tolerant) highlighted."""
    if not quote:
        return "<pre style='white-space: pre-wrap'>" + html.escape(text) + "</pre>"
    # Map positions in the normalized text back to the original: search word by word.
    words = normalize(quote).split()
    lowered = text.lower()
    start = lowered.find(words[0]) if words else -1
    while start != -1:
        end = _match_words(lowered, start, words)
        if end is not None:
            return (
                "<pre style='white-space: pre-wrap'>"
                + html.escape(text[:start])
                + "<span style='background:#ffe066'>"
                + html.escape(text[start:end])
                + "</span>"
                + html.escape(text[end:])
                + "</pre>"
            )
        start = lowered.find(words[0], start + 1)
    return "<pre style='white-space: pre-wrap'>" + html.escape(text) + "</pre>"


def _match_words(text: str, start: int, words: list[str]) -> int | None:
    pos = start
    for word in words:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith(word, pos):
            return None
        pos += len(word)
    return pos


class PageViewer(QDialog):
    """One cited page: the rendered page beside its extracted text.

    Signals:
        pdf_shown(): the PDF page is on screen (tests wait for it).
    """

    pdf_shown = Signal()

    def __init__(self, doc: Document, page: int, *, quote: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.page = page
        self.quote = quote
        self.pdf: QPdfDocument | None = None
        self.search: QPdfSearchModel | None = None
        self.setWindowTitle(self.tr("{name}, page {page}").format(name=doc.name, page=page))
        self.resize(1100, 780)
        layout = QVBoxLayout(self)
        title = QLabel(
            self.tr("{name}, page {page} of {pages}").format(
                name=f"<b>{html.escape(doc.name)}</b>", page=page, pages=doc.n_pages
            )
        )
        layout.addWidget(title)
        splitter = QSplitter()
        self.view = QPdfView()
        self.view.setPageMode(QPdfView.PageMode.SinglePage)
        self.view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.placeholder = QLabel()
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: #4b5563; padding: 12px;")
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.view)
        left_layout.addWidget(self.placeholder)
        splitter.addWidget(left)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        if quote:
            caption = self.tr("Text Longread read from this page (quoted passage highlighted)")
        else:
            caption = self.tr("Text Longread read from this page")
        right_layout.addWidget(QLabel(caption))
        self.text = QTextBrowser()
        page_obj = doc.page(page)
        self.text.setHtml(highlight_html(page_obj.text if page_obj else "", quote))
        right_layout.addWidget(self.text)
        splitter.addWidget(right)
        splitter.setSizes([620, 440])
        layout.addWidget(splitter)

        path = Path(doc.path) if doc.path else None
        if doc.kind == "pdf" and path is not None and path.is_file():
            self.view.setVisible(False)
            self.placeholder.setText(self.tr("Opening the PDF…"))
            self._signals = _PdfLoaded()
            self._signals.loaded.connect(self._on_loader_loaded)
            _pool.start(_PdfLoader(path, self._signals))
        else:
            self.view.setVisible(False)
            if doc.kind == "pdf":
                self.placeholder.setText(
                    self.tr("The PDF is no longer at {path}; the text Longread read is on the right.").format(
                        path=doc.path
                    )
                )
            else:
                self.placeholder.setText(
                    self.tr(
                        "This is a text file: it has no page images. Longread cut it into pages of about "
                        "3,000 characters; the page's text is on the right."
                    )
                )

    @Slot(object)
    def _on_loader_loaded(self, pdf: QPdfDocument | str | None) -> None:
        if pdf == "password":
            self.placeholder.setText(
                self.tr(
                    "This PDF is locked with a password, which Longread does not keep; the text Longread read "
                    "with it is on the right."
                )
            )
            return
        if not isinstance(pdf, QPdfDocument):
            self.placeholder.setText(
                self.tr("Qt PDF could not open this file; the text Longread read is on the right.")
            )
            return
        pdf.setParent(self)
        self.pdf = pdf
        self.view.setDocument(pdf)
        self.view.setVisible(True)
        self.placeholder.setVisible(False)
        navigator = self.view.pageNavigator()
        navigator.jump(self.page - 1, navigator.currentLocation())
        if self.quote:
            self.search = QPdfSearchModel(self)
            self.search.setDocument(pdf)
            self.search.setSearchString(" ".join(self.quote.split()[:8]))
            self.view.setSearchModel(self.search)
            self.view.setCurrentSearchResultIndex(0)
        self.pdf_shown.emit()
