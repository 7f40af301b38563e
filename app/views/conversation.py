"""The conversation: questions and streamed answers, with page citations as links.

The view keeps the turns as data and renders them to HTML (throttled while an answer
streams, so a fast model cannot flood the main thread). Citations are found with the
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

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.corpus import Corpus
from engine.reading.ask import AskResult
from engine.reading.citations import Citation, check_citations
from engine.reading.facts import AnswerCheck, Unfounded, check_answer
from engine.runs import Run, RunKind, Status
from engine.runtime.backend import PrefillProgress
from engine.units import format_duration

RENDER_EVERY_MS = 60
MODES = {"Ask": RunKind.ASK, "Think deeply": RunKind.THINK, "Read in waves": RunKind.WAVES}
# How a stored run that did not finish reads in the transcript.
_SHOWN_STATUSES = (Status.DONE, Status.CANCELLED, Status.FAILED)


@dataclass
class TurnView:
    """One question and its answer as shown."""

    question: str
    answer: str = ""
    status: Status = Status.RUNNING  # running, done, cancelled, failed or interrupted
    error: str = ""
    note: str = ""
    citations: list[Citation] = field(default_factory=list)

    @classmethod
    def from_run(cls, run: Run) -> TurnView:
        """A stored run of any kind as a turn: its question, its answer (the partial one
        of a stopped run) and a note on how it was read."""
        step = run.answer_step
        answer = run.answer or (step.text if step is not None else "")
        status = run.status if run.status in _SHOWN_STATUSES else Status.INTERRUPTED
        return cls(run.question, answer, status, run.error or "", _describe_run(run))


class ConversationView(QWidget):
    """Transcript, progress and the question box.

    Signals:
        ask_requested(str): the user asked a question (Ctrl+Enter or Ask).
        cancel_requested(): the user pressed Cancel or Esc.
        citation_activated(object): a citation link was clicked (a ``Citation``).
        waves_requested(str): the user took the offer to read a question that did not
            fit in waves instead (``offer_waves``).
    """

    ask_requested = Signal(str)
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
        heading = QLabel("Questions and answers")
        heading.setStyleSheet("font-size: 13pt; font-weight: 600;")
        layout.addWidget(heading)
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._on_transcript_anchor_clicked)
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

        self.question = QPlainTextEdit()
        self.question.setPlaceholderText("Ask a question about these documents. Ctrl+Enter asks.")
        self.question.setFixedHeight(78)
        layout.addWidget(self.question)
        buttons = QHBoxLayout()
        self.hint = QLabel("Answers cite pages like [filing.pdf p.12]: click one to see the page.")
        self.hint.setStyleSheet("color: #6b7280;")
        buttons.addWidget(self.hint, 1)
        self.cancel_button = QPushButton("Cancel (Esc)")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.ask_button = QPushButton("Ask (Ctrl+Enter)")
        self.ask_button.setDefault(True)
        self.ask_button.clicked.connect(self._on_ask_button_clicked)
        # How to answer: one pass (Ask), stored steps (Think deeply) or waves of pages.
        self.mode_box = QComboBox()
        self.mode_box.addItems(list(MODES))
        self.mode_box.setToolTip(
            "Ask: one pass. Think deeply: five stored steps. Read in waves: long documents in parts."
        )
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.mode_box)
        buttons.addWidget(self.ask_button)
        layout.addLayout(buttons)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, self._on_ask_button_clicked)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self._on_cancel_button_clicked)
        # The box handles its own keys too: shortcuts need an active window, typing does not.
        self.question.installEventFilter(self)
        self.set_busy(False)
        self._render()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.question and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and (
                event.modifiers() & Qt.KeyboardModifier.ControlModifier
            ):
                self._on_ask_button_clicked()
                return True
            if event.key() == Qt.Key.Key_Escape:
                self._on_cancel_button_clicked()
                return True
        return super().eventFilter(watched, event)

    # -- state --------------------------------------------------------------------

    @property
    def mode(self) -> RunKind:
        """The way of reading chosen next to Ask."""
        return MODES[self.mode_box.currentText()]

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
        self.waves_button.setText(f"Read in waves ({eta})")
        self.waves_button.setToolTip("Read the documents window by window, keeping passages, then answer")
        self.waves_button.setVisible(True)

    def _on_waves_button_clicked(self) -> None:
        if self.busy or not self._waves_question:
            return
        self.waves_button.setVisible(False)
        self.mode_box.setCurrentText(next(name for name, kind in MODES.items() if kind is RunKind.WAVES))
        self.waves_requested.emit(self._waves_question)

    def start_turn(self, question: str) -> TurnView:
        self.waves_button.setVisible(False)
        turn = TurnView(question)
        self.turns.append(turn)
        self.set_busy(True)
        self.status.setText("Getting the model ready…")
        self.progress.setRange(0, 0)
        self.progress.setFormat("Preparing…")
        self.progress.setVisible(True)
        self._render()
        return turn

    def show_progress(self, p: PrefillProgress) -> None:
        """Where reading the documents for an answer is (the bar, speed and time left)."""
        self.progress.setVisible(True)
        self.progress.setRange(0, p.total)
        self.progress.setValue(p.done)
        reused_text = f", {p.reused:,} already read" if p.reused else ""
        self.progress.setFormat(f"Reading the documents: {p.done:,} / {p.total:,} tokens{reused_text}")
        self.status.setText(f"{p.tokens_per_s:,.0f} tokens/s, about {format_duration(p.eta_s)} left. Esc cancels.")

    def show_run_progress(self, text: str) -> None:
        """Where a run of steps is (``RunProgress.describe()``); its steps have the timeline."""
        self.progress.setVisible(False)
        self.status.setText(f"{text}. Esc cancels.")

    def append_text(self, piece: str) -> None:
        if not self.turns:
            return
        turn = self.turns[-1]
        if not turn.answer:
            self.progress.setVisible(False)
            self.status.setText("Answering… Esc stops.")
        turn.answer += piece
        if not self._render_timer.isActive():
            self._render_timer.start()

    def finish_turn(self, *, status: Status, answer: str | None = None, error: str = "", note: str = "") -> None:
        if not self.turns:
            return
        turn = self.turns[-1]
        turn.status = status
        if answer is not None:
            turn.answer = answer
        turn.error = error
        turn.note = note
        turn.citations = check_citations(turn.answer, self.corpus) if turn.answer else []
        self.set_busy(False)
        self.status.setText(
            note if status is Status.DONE else error or ("Cancelled." if status is Status.CANCELLED else "")
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
                body = (
                    "<p style='color:#4b5563'>Ask anything about the documents on the left: Longread reads "
                    "<b>all of them</b>, every page, before it answers, and cites the pages it used.</p>"
                )
            else:
                body = (
                    "<p style='color:#4b5563'>No documents yet. Drop PDFs or folders on this window, or press "
                    "Ctrl+O. Then ask a question here.</p>"
                )
            self.transcript.setHtml(body)
            return
        parts = []
        for turn in self.turns:
            parts.append(
                "<p style='margin-bottom:2px'><b>You:</b> " + html.escape(turn.question).replace("\n", "<br>") + "</p>"
            )
            running = turn.status == Status.RUNNING
            check = self._check(turn) if turn.answer and not running else AnswerCheck([])
            citations = check.citations
            answer_html = self._answer_html(turn.answer, citations, check.unfounded) if turn.answer else ""
            if running and not turn.answer:
                answer_html = "<i style='color:#6b7280'>reading the documents…</i>"
            parts.append("<p style='margin-top:2px'><b>Longread:</b> " + answer_html + "</p>")
            problems = [c for c in citations if not c.ok]
            for c in problems:
                parts.append(
                    f"<p style='color:#b3261e; margin-left:16px'>⚠ [{html.escape(c.document)} p.{c.page}]: "
                    f"{html.escape(c.problem or 'not checked')}</p>"
                )
            for u in check.unfounded:
                parts.append(
                    f"<p style='color:#b3261e; margin-left:16px'>⚠ “{html.escape(u.text)}”: {html.escape(u.problem)}</p>"
                )
            if turn.status == Status.DONE and turn.answer and check.cites_nothing:
                parts.append(
                    "<p style='color:#b3261e; margin-left:16px'>⚠ Unverified: this answer cites no page, so "
                    "nothing in it was checked against the documents.</p>"
                )
            if turn.status in (Status.CANCELLED, Status.INTERRUPTED):
                parts.append(f"<p style='color:#6b7280'><i>{turn.status.capitalize()}: the answer stops here.</i></p>")
            if turn.status == Status.FAILED:
                parts.append(f"<p style='color:#b3261e'>{html.escape(turn.error or 'Failed.')}</p>")
            if turn.note:
                parts.append(f"<p style='color:#6b7280; font-size:small'>{html.escape(turn.note)}</p>")
            parts.append("<hr>")
        self.transcript.setHtml("".join(parts))
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _check(self, turn: TurnView) -> AnswerCheck:
        if not self.corpus.documents:  # nothing to check facts against
            return AnswerCheck(check_citations(turn.answer, self.corpus))
        return check_answer(turn.answer, self.corpus, question=turn.question)

    def _answer_html(self, answer: str, citations: list[Citation], unfounded: Sequence[Unfounded] = ()) -> str:
        out = []
        pos = 0
        spans: list[Citation | Unfounded] = sorted([*citations, *unfounded], key=lambda s: s.start)
        for c in spans:
            if c.start < pos:
                continue
            out.append(html.escape(answer[pos : c.start]))
            if isinstance(c, Unfounded):
                label = html.escape(answer[c.start : c.end])
                tip = html.escape(c.problem)
                out.append(f"<span style='color:#b3261e; background:#fde8e8' title='{tip}'>{label} ⚠</span>")
                pos = c.end
                continue
            label = html.escape(answer[c.start : c.end])
            if c.exists:
                self._links.append(c)
                color = "#1a56db" if c.ok else "#b3261e"
                out.append(f"<a href='cite:{len(self._links) - 1}' style='color:{color}'>{label}</a>")
            else:
                out.append(f"<span style='color:#b3261e; text-decoration: line-through'>{label}</span>")
            pos = c.end
        out.append(html.escape(answer[pos:]))
        return "".join(out).replace("\n", "<br>")


def describe_ask(result: AskResult) -> str:
    """The line under a fresh answer: how the documents got into the model, and the speeds."""
    p = result.prefill
    warm = result.warm  # issue 4: how the corpus got into the context
    if warm is not None and warm.source == "snapshot":
        was = f" (reading them took {warm.cold_prefill_s:.0f} s)" if warm.cold_prefill_s else ""
        read = f"restored the documents in {warm.restore_s:.1f} s{was}"
    elif warm is not None and warm.composed:  # issue 17
        read = warm.describe_composition()
    elif warm is not None and warm.source == "context" and p.evaluated < 64:
        read = "the documents were already read"
    elif p.evaluated and p.seconds > 0:
        read = f"read {p.evaluated:,} tokens in {p.seconds:.1f} s ({p.evaluated / p.seconds:,.0f} tokens/s)"
    else:
        read = "read nothing new"
    if p.reused:
        read += f", {p.reused:,} already in memory"
    notice = f" {warm.notice}" if warm is not None and warm.notice else ""
    return f"{read}; answered {result.answer_tokens} tokens in {result.generate_s:.1f} s.{notice}"


def _describe_run(run: Run) -> str:
    """The line under a stored run's answer: the model, and for an ask its window and read."""
    if run.kind is not RunKind.ASK:
        return f"{run.kind.label} with {run.model}."
    step = run.answer_step
    if step is None or step.prefill_tokens is None:
        return ""
    return (
        f"{run.model}, window {run.settings.get('n_ctx', '?')}, KV {run.settings.get('kv_type', '?')}; "
        f"read {step.prefill_tokens:,} tokens in {step.prefill_s or 0:.1f} s."
    )
