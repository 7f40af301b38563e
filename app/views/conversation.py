"""The conversation: questions and streamed answers, with page citations as links.

The view keeps the turns as data and renders them to HTML (throttled while an answer
streams, so a fast model cannot flood the main thread). Answers are Markdown, rendered by
``app.views.markdown`` with the model's own HTML, images and links shown as text (issue
18 item 2); the transcript's context menu copies an answer as Markdown or plain text. Citations are found with the
engine's ``check_citations`` against the corpus: a valid one is a link
(``cite:N``) that opens the page; one that names a missing page or misquotes it is
marked and explained under the answer, as are the numbers, dates, codes and quotations
found on no page and an answer that cites nothing (``check_answer``, engine/reading/facts.py). Below the transcript: the prefill progress bar
(tokens/s and time left), the question box (Ctrl+Enter asks), the way of reading (a
``RunKind``: Ask, Think deeply, Read in waves) and Ask / Cancel (Esc).

A stored run becomes a turn with ``TurnView.from_run`` (the same for every kind of run);
``describe_ask`` is the line under a fresh answer (how the documents got into the model).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QCoreApplication, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.i18n import format_duration, kind_label
from app.views.markdown import SafeBrowser, Span, markdown_html, markdown_plain
from engine.corpus import Corpus
from engine.reading.ask import AskResult
from engine.reading.citations import Citation, check_citations
from engine.reading.facts import AnswerCheck, Unfounded, check_answer
from engine.runs import Run, RunKind, Status
from engine.runtime.backend import PrefillProgress

RENDER_EVERY_MS = 60
LINK = "#1a56db"
BAD = "#b3261e"
# How a stored run that did not finish reads in the transcript.
_SHOWN_STATUSES = (Status.DONE, Status.CANCELLED, Status.FAILED)


def mode_names() -> dict[RunKind, str]:
    """The ways of reading as the box next to Ask names them (translated)."""
    return {
        RunKind.ASK: QCoreApplication.translate("ConversationView", "Ask"),
        RunKind.THINK: QCoreApplication.translate("ConversationView", "Think deeply"),
        RunKind.WAVES: QCoreApplication.translate("ConversationView", "Read in waves"),
    }


@dataclass
class TurnView:
    """One question and its answer as shown."""

    question: str
    answer: str = ""
    status: Status = Status.RUNNING  # running, done, cancelled, failed or interrupted
    error: str = ""
    note: str = ""
    citations: list[Citation] = field(default_factory=list)
    assembled: bool = False  # its documents were assembled from their snapshots (issue 17)

    @classmethod
    def from_run(cls, run: Run) -> TurnView:
        """A stored run of any kind as a turn: its question, its answer (the partial one
        of a stopped run) and a note on how it was read."""
        step = run.answer_step
        answer = run.answer or (step.text if step is not None else "")
        status = run.status if run.status in _SHOWN_STATUSES else Status.INTERRUPTED
        return cls(run.question, answer, status, run.error or "", _describe_run(run))


class QuestionBox(QPlainTextEdit):
    """The question box. It handles Ctrl+Enter and Esc itself: shortcuts need an active
    window, typing does not. (A subclass, not an event filter on the view: PySide6 may call
    a filter while its owner is half destroyed, which crashed the test run.)"""

    ask_pressed = Signal()
    cancel_pressed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
            event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.ask_pressed.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.cancel_pressed.emit()
            return
        super().keyPressEvent(event)


class ConversationView(QWidget):
    """Transcript, progress and the question box.

    Signals:
        ask_requested(str): the user asked a question (Ctrl+Enter or Ask).
        cancel_requested(): the user pressed Cancel or Esc.
        citation_activated(object): a citation link was clicked (a ``Citation``).
        waves_requested(str): the user took the offer to read a question that did not
            fit in waves instead (``offer_waves``).
        fresh_requested(str): under an answer read from documents assembled from their
            snapshots, the user asked to read them fresh and ask that question again.
    """

    ask_requested = Signal(str)
    fresh_requested = Signal(str)
    waves_requested = Signal(str)
    cancel_requested = Signal()
    citation_activated = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.turns: list[TurnView] = []
        self.corpus = Corpus()
        self.busy = False
        self._links: list[Citation] = []
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_EVERY_MS)
        self._render_timer.timeout.connect(self._render)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel(self.tr("Questions and answers"))
        heading.setStyleSheet("font-size: 13pt; font-weight: 600;")
        layout.addWidget(heading)
        self.transcript = SafeBrowser()  # answers are untrusted: it loads nothing
        self.transcript.anchorClicked.connect(self._on_transcript_anchor_clicked)
        self.transcript.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.transcript.customContextMenuRequested.connect(self._on_transcript_context_menu_requested)
        layout.addWidget(self.transcript, 1)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #4b5563;")
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        # Offered next to a refusal: the question did not fit the window (issue 13 item 6).
        self.waves_button = QPushButton()
        self.waves_button.setVisible(False)
        self.waves_button.clicked.connect(self._on_waves_button_clicked)
        status_row.addWidget(self.waves_button)
        layout.addLayout(status_row)
        self._waves_question = ""

        self.question = QuestionBox()
        self.question.ask_pressed.connect(self._on_ask_button_clicked)
        self.question.cancel_pressed.connect(self._on_cancel_button_clicked)
        self.question.setPlaceholderText(self.tr("Ask a question about these documents. Ctrl+Enter asks."))
        self.question.setFixedHeight(78)
        layout.addWidget(self.question)
        buttons = QHBoxLayout()
        self.hint = QLabel(self.tr("Answers cite pages like [filing.pdf p.12]: click one to see the page."))
        self.hint.setStyleSheet("color: #6b7280;")
        self.hint.setWordWrap(True)  # longer in other languages: it wraps rather than widen the window
        buttons.addWidget(self.hint, 1)
        self.cancel_button = QPushButton(self.tr("Cancel (Esc)"))
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.ask_button = QPushButton(self.tr("Ask (Ctrl+Enter)"))
        self.ask_button.setDefault(True)
        self.ask_button.clicked.connect(self._on_ask_button_clicked)
        # How to answer: one pass (Ask), stored steps (Think deeply) or waves of pages.
        self.mode_box = QComboBox()
        for kind, name in mode_names().items():
            self.mode_box.addItem(name, kind.value)
        self.mode_box.setToolTip(
            self.tr("Ask: one pass. Think deeply: five stored steps. Read in waves: long documents in parts.")
        )
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.mode_box)
        buttons.addWidget(self.ask_button)
        layout.addLayout(buttons)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self._on_ask_button_clicked)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self._on_cancel_button_clicked)
        self.set_busy(False)
        self._render()

    # -- state --------------------------------------------------------------------

    @property
    def mode(self) -> RunKind:
        """The way of reading chosen next to Ask."""
        return RunKind(self.mode_box.currentData())

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.cancel_button.setEnabled(busy)
        self.ask_button.setEnabled(not busy)
        self.mode_box.setEnabled(not busy)
        if not busy:
            self.progress.setVisible(False)

    def set_corpus(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._render()

    def set_turns(self, turns: list[TurnView]) -> None:
        self.turns = turns
        for turn in turns:
            turn.citations = check_citations(turn.answer, self.corpus) if turn.answer else []
        self._render()

    def offer_waves(self, question: str, eta: str) -> None:
        """Offer to read ``question`` in waves (``Read in waves (about 12 min)``) next to
        the refusal of an ask that did not fit the window."""
        self._waves_question = question
        self.waves_button.setText(self.tr("Read in waves ({eta})").format(eta=eta))
        self.waves_button.setToolTip(self.tr("Read the documents window by window, keeping passages, then answer"))
        self.waves_button.setVisible(True)

    def _on_waves_button_clicked(self) -> None:
        if self.busy or not self._waves_question:
            return
        self.waves_button.setVisible(False)
        self.mode_box.setCurrentIndex(self.mode_box.findData(RunKind.WAVES.value))
        self.waves_requested.emit(self._waves_question)

    def start_turn(self, question: str) -> TurnView:
        self.waves_button.setVisible(False)
        turn = TurnView(question)
        self.turns.append(turn)
        self.set_busy(True)
        self.status.setText(self.tr("Getting the model ready…"))
        self.progress.setRange(0, 0)
        self.progress.setFormat(self.tr("Preparing…"))
        self.progress.setVisible(True)
        self._render()
        return turn

    def show_progress(self, p: PrefillProgress) -> None:
        """Where reading the documents for an answer is (the bar, speed and time left)."""
        self.progress.setVisible(True)
        self.progress.setRange(0, p.total)
        self.progress.setValue(p.done)
        if p.reused:
            bar = self.tr("Reading the documents: {done} / {total} tokens, {reused} already read")
        else:
            bar = self.tr("Reading the documents: {done} / {total} tokens")
        # A progress bar's format gives % a meaning (%p, %v): double it.
        bar = bar.format(done=f"{p.done:,}", total=f"{p.total:,}", reused=f"{p.reused:,}")
        self.progress.setFormat(bar.replace("%", "%%"))
        self.status.setText(
            self.tr("{speed} tokens/s, about {left} left. Esc cancels.").format(
                speed=f"{p.tokens_per_s:,.0f}", left=format_duration(p.eta_s)
            )
        )

    def show_run_progress(self, text: str) -> None:
        """Where a run of steps is (``RunProgress.describe()``); its steps have the timeline."""
        self.progress.setVisible(False)
        self.status.setText(self.tr("{progress}. Esc cancels.").format(progress=text))

    def append_text(self, piece: str) -> None:
        if not self.turns:
            return
        turn = self.turns[-1]
        if not turn.answer:
            self.progress.setVisible(False)
            self.status.setText(self.tr("Answering… Esc stops."))
        turn.answer += piece
        if not self._render_timer.isActive():
            self._render_timer.start()

    def finish_turn(
        self, *, status: Status, answer: str | None = None, error: str = "", note: str = "", assembled: bool = False
    ) -> None:
        if not self.turns:
            return
        turn = self.turns[-1]
        turn.status = status
        turn.assembled = assembled and status is Status.DONE
        if answer is not None:
            turn.answer = answer
        turn.error = error
        turn.note = note
        turn.citations = check_citations(turn.answer, self.corpus) if turn.answer else []
        self.set_busy(False)
        self.status.setText(
            note if status is Status.DONE else error or (self.tr("Cancelled.") if status is Status.CANCELLED else "")
        )
        self._render_timer.stop()
        self._render()

    # -- rendering ----------------------------------------------------------------

    def _on_ask_button_clicked(self) -> None:
        text = self.question.toPlainText().strip()
        if not text or self.busy:
            return
        self.ask_requested.emit(text)

    def _on_cancel_button_clicked(self) -> None:
        if self.busy:
            self.cancel_requested.emit()

    def _on_transcript_anchor_clicked(self, url: QUrl) -> None:
        if url.scheme() == "fresh":
            try:
                turn = self.turns[int(url.path())]
            except (ValueError, IndexError):
                return
            if not self.busy:
                self.fresh_requested.emit(turn.question)
            return
        if url.scheme() != "cite":
            return
        try:
            citation = self._links[int(url.path())]
        except (ValueError, IndexError):
            return
        self.citation_activated.emit(citation)

    def rendered_html(self) -> str:
        return self.transcript.toHtml()

    def link_count(self) -> int:
        return len(self._links)

    def _render(self) -> None:
        self._links = []
        if not self.turns:
            if self.corpus.documents:
                body = "<p style='color:#4b5563'>" + self.tr(
                    "Ask anything about the documents on the left: Longread reads "
                    "<b>all of them</b>, every page, before it answers, and cites the pages it used."
                )
            else:
                body = "<p style='color:#4b5563'>" + self.tr(
                    "No documents yet. Drop PDFs or folders on this window, or press Ctrl+O. Then ask a question here."
                )
            self.transcript.setHtml(body + "</p>")
            return
        parts = []
        you, longread, reading = self.tr("You:"), self.tr("Longread:"), self.tr("reading the documents…")
        not_checked, failed = self.tr("not checked"), self.tr("Failed.")
        for index, turn in enumerate(self.turns):
            parts.append(
                f"<p style='margin-bottom:2px'><a name='turn-{index}'><b>{you}</b></a> "
                + html.escape(turn.question).replace("\n", "<br>")
                + "</p>"
            )
            running = turn.status == Status.RUNNING
            check = self._check(turn) if turn.answer and not running else AnswerCheck([])
            citations = check.citations
            answer_html = self._answer_html(turn.answer, citations, check.unfounded) if turn.answer else ""
            if running and not turn.answer:
                answer_html = f"<i style='color:#6b7280'>{reading}</i>"
            parts.append(f"<p style='margin-top:2px; margin-bottom:0px'><b>{longread}</b></p>" + answer_html)
            problems = [c for c in citations if not c.ok]
            for c in problems:
                parts.append(
                    f"<p style='color:#b3261e; margin-left:16px'>⚠ [{html.escape(c.document)} p.{c.page}]: "
                    f"{html.escape(self._citation_problem(c) or not_checked)}</p>"
                )
            for u in check.unfounded:
                parts.append(
                    f"<p style='color:#b3261e; margin-left:16px'>⚠ “{html.escape(u.text)}”: {html.escape(self._unfounded_problem(u))}</p>"
                )
            if turn.status == Status.DONE and turn.answer and check.cites_nothing:
                unverified = self.tr(
                    "Unverified: this answer cites no page, so nothing in it was checked against the documents."
                )
                parts.append(f"<p style='color:#b3261e; margin-left:16px'>⚠ {unverified}</p>")
            if turn.status in (Status.CANCELLED, Status.INTERRUPTED):
                if turn.status == Status.CANCELLED:
                    stops = self.tr("Cancelled: the answer stops here.")
                else:
                    stops = self.tr("Interrupted: the answer stops here.")
                parts.append(f"<p style='color:#6b7280'><i>{stops}</i></p>")
            if turn.status == Status.FAILED:
                parts.append(f"<p style='color:#b3261e'>{html.escape(turn.error or failed)}</p>")
            if turn.note:
                fresh = ""
                if turn.assembled:  # issue 17: close to a fresh read, not always the same
                    fresh = " <a href='fresh:{i}'>{label}</a>".format(
                        i=index, label=html.escape(self.tr("Read the documents fresh and ask again"))
                    )
                parts.append(f"<p style='color:#6b7280; font-size:small'>{html.escape(turn.note)}{fresh}</p>")
            parts.append("<hr>")
        self.transcript.setHtml("".join(parts))
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _check(self, turn: TurnView) -> AnswerCheck:
        if not self.corpus.documents:  # nothing to check facts against
            return AnswerCheck(check_citations(turn.answer, self.corpus))
        return check_answer(turn.answer, self.corpus, question=turn.question)

    def _citation_problem(self, c: Citation) -> str:
        """Why a citation failed (``Citation.problem``, worded here in the window's language)."""
        if c.ok:
            return ""
        if not c.exists and self.corpus.find(c.document) is None:
            if not c.document:
                return self.tr("the citation names no document")
            return self.tr("there is no document called '{name}'").format(name=c.document)
        doc = self.corpus.find(c.document)
        if not c.exists and doc is not None:
            return self.tr("{name} has no page {page} (it has {pages})").format(
                name=doc.name, page=c.page, pages=doc.n_pages
            )
        if c.last_page is not None:
            return self.tr("the quoted words are not on pages {first}-{last} of {name}").format(
                first=c.page, last=c.last_page, name=c.document
            )
        return self.tr("the quoted words are not on page {page} of {name}").format(page=c.page, name=c.document)

    def _unfounded_problem(self, u: Unfounded) -> str:
        """Why a fact is flagged (``Unfounded.problem``), in the window's language."""
        problems = {
            "quote": self.tr("the quoted words are on no page of the documents"),
            "number": self.tr("this number is on no page of the documents"),
            "date": self.tr("this date is on no page of the documents"),
            "code": self.tr("this code is on no page of the documents"),
        }
        return problems.get(u.kind, u.problem)

    def _answer_html(self, answer: str, citations: list[Citation], unfounded: Sequence[Unfounded] = ()) -> str:
        """The answer rendered as Markdown (``app.views.markdown``: its HTML shown as text),
        valid citations as ``cite:N`` links, bad ones struck out, facts on no page marked."""
        spans: list[Span] = []
        pos = 0
        marked: list[Citation | Unfounded] = [*citations, *unfounded]
        for c in sorted(marked, key=lambda s: s.start):
            if c.start < pos:
                continue
            pos = c.end
            label = answer[c.start : c.end]
            if isinstance(c, Unfounded):
                tip = self._unfounded_problem(c)
                spans.append(Span(c.start, c.end, label=f"{label} ⚠", color=BAD, background="#fde8e8", tooltip=tip))
            elif c.exists:
                self._links.append(c)
                spans.append(Span(c.start, c.end, href=f"cite:{len(self._links) - 1}", color=LINK if c.ok else BAD))
            else:
                spans.append(Span(c.start, c.end, color=BAD, strike=True, tooltip=self._citation_problem(c)))
        return markdown_html(answer, spans)

    # -- copying --------------------------------------------------------------------

    def turn_at(self, position: int) -> int | None:
        """The index of the turn shown at ``position`` of the transcript's document."""
        block = self.transcript.document().findBlock(position)
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                names = it.fragment().charFormat().anchorNames()
                turn = next((int(n[len("turn-") :]) for n in names if n.startswith("turn-")), None)
                if turn is not None and turn < len(self.turns):
                    return turn
                it += 1
            block = block.previous()
        return None

    def copy_answer(self, index: int, *, markdown: bool) -> str:
        """Put turn ``index``'s answer on the clipboard, as Markdown (the model's text) or
        as plain text (its Markdown taken out); return what was copied."""
        answer = self.turns[index].answer
        text = answer if markdown else markdown_plain(answer)
        QApplication.clipboard().setText(text)
        return text

    def _on_transcript_context_menu_requested(self, pos: QPoint) -> None:
        menu = self.transcript.createStandardContextMenu(pos)
        turn = self.turn_at(self.transcript.cursorForPosition(pos).position())
        if turn is not None and self.turns[turn].answer:
            menu.addSeparator()
            as_markdown = menu.addAction(self.tr("Copy answer as Markdown"))
            as_markdown.triggered.connect(lambda: self.copy_answer(turn, markdown=True))
            as_plain = menu.addAction(self.tr("Copy answer as plain text"))
            as_plain.triggered.connect(lambda: self.copy_answer(turn, markdown=False))
        menu.exec(self.transcript.viewport().mapToGlobal(pos))
        menu.deleteLater()


def describe_ask(result: AskResult) -> str:
    """The line under a fresh answer: how the documents got into the model, and the speeds."""
    p = result.prefill
    warm = result.warm  # issue 4: how the corpus got into the context
    if warm is not None and warm.source == "snapshot" and warm.cold_prefill_s:
        read = QCoreApplication.translate(
            "ConversationView", "restored the documents in {restore} s (reading them took {cold} s)"
        ).format(restore=f"{warm.restore_s:.1f}", cold=f"{warm.cold_prefill_s:.0f}")
    elif warm is not None and warm.source == "snapshot":
        read = QCoreApplication.translate("ConversationView", "restored the documents in {restore} s").format(
            restore=f"{warm.restore_s:.1f}"
        )
    elif warm is not None and warm.composed:  # issue 17: assembled from documents' snapshots
        took = f"{warm.restore_s:.1f}" if warm.restore_s >= 0.1 else f"{warm.restore_s:.2f}"
        read = QCoreApplication.translate(
            "ConversationView",
            "assembled from {documents} documents' snapshots in {took} s ({tokens} tokens read again)",
        ).format(documents=warm.documents, took=took, tokens=f"{warm.reread_tokens:,}")
        if warm.cold_prefill_s:
            read += QCoreApplication.translate("ConversationView", " instead of about {cold}").format(
                cold=format_duration(warm.cold_prefill_s)
            )
    elif warm is not None and warm.source == "context" and warm.assembled:
        read = QCoreApplication.translate(
            "ConversationView", "the documents were already assembled from their snapshots"
        )
    elif warm is not None and warm.source == "context" and p.evaluated < 64:
        read = QCoreApplication.translate("ConversationView", "the documents were already read")
    elif p.evaluated and p.seconds > 0:
        read = QCoreApplication.translate(
            "ConversationView", "read {tokens} tokens in {seconds} s ({speed} tokens/s)"
        ).format(tokens=f"{p.evaluated:,}", seconds=f"{p.seconds:.1f}", speed=f"{p.evaluated / p.seconds:,.0f}")
    else:
        read = QCoreApplication.translate("ConversationView", "read nothing new")
    if p.reused:
        read += QCoreApplication.translate("ConversationView", ", {reused} already in memory").format(
            reused=f"{p.reused:,}"
        )
    notice = f" {warm.notice}" if warm is not None and warm.notice else ""
    answered = QCoreApplication.translate(
        "ConversationView", "{read}; answered {tokens} tokens in {seconds} s."
    ).format(read=read, tokens=result.answer_tokens, seconds=f"{result.generate_s:.1f}")
    return answered + notice


def _describe_run(run: Run) -> str:
    """The line under a stored run's answer: the model, and for an ask its window and read."""
    if run.kind is not RunKind.ASK:
        return QCoreApplication.translate("ConversationView", "{kind} with {model}.").format(
            kind=kind_label(run.kind), model=run.model
        )
    step = run.answer_step
    if step is None or step.prefill_tokens is None:
        return ""
    return QCoreApplication.translate(
        "ConversationView", "{model}, window {n_ctx}, KV {kv_type}; read {tokens} tokens in {seconds} s."
    ).format(
        model=run.model,
        n_ctx=run.settings.get("n_ctx", "?"),
        kv_type=run.settings.get("kv_type", "?"),
        tokens=f"{step.prefill_tokens:,}",
        seconds=f"{step.prefill_s or 0:.1f}",
    )
