"""Answers, steps and notes as formatted text (issue 18 item 2): Markdown rendered by Qt
with page citations still links, the model's own HTML, images and links shown as text
and nothing fetched, and an answer copied as Markdown or as plain text. The window's
tests read with the fake backend (scripted answers); the renderer is also tested alone."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QFont, QTextDocument, QTextListFormat
from PySide6.QtWidgets import QApplication

from app.views.markdown import SafeBrowser, Span, markdown_document, markdown_html, markdown_plain
from engine.runs import RunKind
from tests.app.conftest import library_factory

FORMATTED = """## What the handbook says

The vault access code is **482913** [handbook.pdf p.3].

- the code opens the *vault*
- `ask` the desk first

1. sign in
2. get a badge

| item | page |
|------|------|
| code | 3 |
"""

HOSTILE = (
    'Look: <img src="http://127.0.0.1:9/track.png"> and <a href="file:///etc/passwd">passwords</a> '
    "and ![pic](file:///etc/hostname) and [link](file:///etc/passwd) <script>alert(1)</script> "
    "<https://example.com/x> [handbook.pdf p.3]"
)


def _fragments(doc: QTextDocument):
    """Every text fragment of ``doc`` with its format, in order."""
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.isValid():
                yield fragment
            it += 1
        block = block.next()


def _blocks(doc: QTextDocument):
    block = doc.begin()
    while block.isValid():
        yield block
        block = block.next()


def _window(make_window, fake_backend, home: Path):
    """A window whose answers are long enough for a formatted reply."""
    return make_window(
        library_factory=library_factory(home / "longread.db", backend=fake_backend, max_answer_tokens=400)
    )


def _answer(qtbot, window, fake_backend, fact_pdf: Path, reply: str):
    window.add_paths([fact_pdf])
    panel = window.corpus_panel
    qtbot.waitUntil(
        lambda: len(panel.rows) == 1 and not panel.reading and window.gauge.measure is not None, timeout=60000
    )
    fake_backend.enqueue(reply)
    with qtbot.waitSignal(window.answered, timeout=60000):
        window.ask("What is the vault access code?")
    return window


def test_an_answer_renders_its_markdown_with_the_citation_a_link(
    qtbot, make_window, fake_backend, fact_pdf: Path, home: Path
) -> None:
    window = _answer(qtbot, _window(make_window, fake_backend, home), fake_backend, fact_pdf, FORMATTED)
    view = window.conversation
    doc = view.transcript.document()
    blocks = list(_blocks(doc))

    heading = next(b for b in blocks if b.text() == "What the handbook says")
    assert heading.blockFormat().headingLevel() == 2
    items = [b for b in blocks if b.textList() is not None]
    assert [b.text() for b in items] == ["the code opens the vault", "ask the desk first", "sign in", "get a badge"]
    assert items[0].textList() is items[1].textList() and items[2].textList() is not items[0].textList()
    assert items[2].textList().format().style() == QTextListFormat.Style.ListDecimal
    assert "**" not in view.transcript.toPlainText()  # markup is not shown as text

    fragments = list(_fragments(doc))
    bold = next(f for f in fragments if f.text() == "482913")
    assert bold.charFormat().fontWeight() == QFont.Weight.Bold
    italic = next(f for f in fragments if f.text() == "vault")
    assert italic.charFormat().fontItalic()
    code = next(f for f in fragments if f.text() == "ask")
    assert code.charFormat().fontFixedPitch() or "monospace" in code.charFormat().fontFamilies()
    assert "<table" in view.rendered_html() and "code" in view.transcript.toPlainText()

    # The citation is still a link that opens its page.
    links = [f for f in fragments if f.charFormat().anchorHref()]
    assert [(f.text(), f.charFormat().anchorHref()) for f in links] == [("[handbook.pdf p.3]", "cite:0")]
    assert view.link_count() == 1
    with qtbot.waitSignal(view.citation_activated, timeout=5000) as opened:
        view.transcript.anchorClicked.emit(QUrl("cite:0"))
    assert (opened.args[0].document, opened.args[0].page) == ("handbook.pdf", 3)


def test_hostile_html_in_an_answer_stays_text_and_nothing_is_fetched(
    qtbot, make_window, fake_backend, fact_pdf: Path, home: Path
) -> None:
    window = _answer(qtbot, _window(make_window, fake_backend, home), fake_backend, fact_pdf, HOSTILE)
    view = window.conversation
    text = view.transcript.toPlainText()
    # The tags read as the model wrote them (the fact check flags the quoted address: on no page).
    assert '<img src="http://127.0.0.1:9/track.png"' in text
    assert '<a href="file:///etc/passwd"' in text and "passwords</a>" in text
    assert "<script>alert(1)</script>" in text
    doc = view.transcript.document()
    fragments = list(_fragments(doc))
    assert not [f for f in fragments if f.charFormat().isImageFormat()]
    # The only link is the checked citation; the model's own links are words.
    assert [f.charFormat().anchorHref() for f in fragments if f.charFormat().anchorHref()] == ["cite:0"]
    assert "pic" in text and "link" in text and "https://example.com/x" in text
    assert view.transcript.refused == []  # nothing was even asked for
    html = view.rendered_html()
    assert "&lt;img src=" in html and not re.search(r"<img\b", html)
    assert re.findall(r"href=[\"']([^\"']*)", html) == ["cite:0"]


def test_steps_and_notes_render_as_markdown_and_stay_safe(
    qtbot, make_window, fake_backend, fact_pdf: Path, home: Path
) -> None:
    window = _window(make_window, fake_backend, home)
    window.add_paths([fact_pdf])
    panel = window.corpus_panel
    qtbot.waitUntil(
        lambda: len(panel.rows) == 1 and not panel.reading and window.gauge.measure is not None, timeout=60000
    )
    fake_backend.enqueue("- **first** point\n- second point", HOSTILE, "plain", "plain", FORMATTED)
    window.conversation.mode_box.setCurrentIndex(window.conversation.mode_box.findData(RunKind.THINK.value))
    with qtbot.waitSignal(window.answered, timeout=60000):
        window.ask("What is the vault access code?")
    doc = window.timeline.browser.document()

    def listed() -> list[str]:
        return [b.text() for b in _blocks(doc) if b.textList() is not None]

    qtbot.waitUntil(lambda: listed()[:2] == ["first point", "second point"], timeout=5000)  # rendering is throttled
    assert '<img src="http://127.0.0.1:9/track.png">' in window.timeline.browser.toPlainText()  # steps: not checked
    fragments = list(_fragments(doc))
    assert not [f for f in fragments if f.charFormat().isImageFormat() or f.charFormat().isAnchor()]
    assert window.timeline.browser.refused == []


def test_an_answer_is_copied_as_markdown_or_as_plain_text(
    qtbot, make_window, fake_backend, fact_pdf: Path, home: Path
) -> None:
    window = _answer(qtbot, _window(make_window, fake_backend, home), fake_backend, fact_pdf, FORMATTED)
    fake_backend.enqueue("Second answer with **bold** [handbook.pdf p.3].")
    with qtbot.waitSignal(window.answered, timeout=60000):
        window.ask("And again?")
    view = window.conversation
    doc_text = view.transcript.toPlainText()
    # The turn under a point of the transcript (what the context menu copies).
    assert view.turn_at(doc_text.index("sign in")) == 0
    assert view.turn_at(doc_text.index("Second answer")) == 1
    assert view.turn_at(0) == 0

    assert view.copy_answer(0, markdown=True) == FORMATTED.strip()  # the answer as stored
    assert QApplication.clipboard().text() == FORMATTED.strip()
    plain = view.copy_answer(0, markdown=False)
    assert QApplication.clipboard().text() == plain
    assert plain.splitlines() == [
        "What the handbook says",
        "The vault access code is 482913 [handbook.pdf p.3].",
        "• the code opens the vault",
        "• ask the desk first",
        "1. sign in",
        "2. get a badge",
        "item\tpage",
        "code\t3",
    ]
    assert view.copy_answer(1, markdown=False) == "Second answer with bold [handbook.pdf p.3]."


def test_the_renderer_draws_spans_and_unlinks_the_rest(qapp) -> None:
    text = "Code **123** at [a.pdf p.1], see [site](https://x.test) and `[a.pdf p.2]`."
    first = text.index("[a.pdf p.1]")
    code = text.index("[a.pdf p.2]")
    number = text.index("123")
    spans = [
        Span(first, first + 11, href="cite:7", color="#1a56db"),
        Span(code, code + 11, href="cite:8"),  # inside code: stays text, no link
        Span(number, number + 3, label="123 ⚠", color="#b3261e", tooltip="on no page"),
    ]
    doc = markdown_document(text, spans)
    fragments = list(_fragments(doc))
    assert [(f.text(), f.charFormat().anchorHref()) for f in fragments if f.charFormat().isAnchor()] == [
        ("[a.pdf p.1]", "cite:7")
    ]
    flagged = next(f for f in fragments if f.text() == "123 ⚠")
    assert flagged.charFormat().toolTip() == "on no page"
    assert flagged.charFormat().fontWeight() == QFont.Weight.Bold
    assert doc.toPlainText() == "Code 123 ⚠ at [a.pdf p.1], see site and [a.pdf p.2]."
    assert "cite:7" in markdown_html(text, spans) and "https://x.test" not in markdown_html(text, spans)


def test_the_safe_browser_loads_no_resource(qapp) -> None:
    browser = SafeBrowser()
    browser.setHtml("<p>x</p><img src='file:///etc/hostname'><img src='http://127.0.0.1:9/a.png'>")
    browser.document().adjustSize()  # layout asks for the images
    assert "file:///etc/hostname" in browser.refused
    assert all(f.charFormat().isImageFormat() for f in _fragments(browser.document()) if f.text() == "\ufffc")
    # Asked, refused: not a byte of the file came back (Qt reads a local file itself
    # when the browser's answer is null: the browser answers with nothing instead).
    image = browser.document().resource(QTextDocument.ResourceType.ImageResource, QUrl("file:///etc/hostname"))
    assert image is None or not bytes(image)


def test_plain_text_keeps_list_numbers_and_table_rows(qapp) -> None:
    assert (
        markdown_plain("# Title\n\n3. three\n4. four\n\n|a|b|\n|-|-|\n|1|2|") == "Title\n3. three\n4. four\na\tb\n1\t2"
    )
