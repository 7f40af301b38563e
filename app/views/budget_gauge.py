"""The budget gauge: does the corpus fit the window, and what each KV cache type costs.

Two parts, read top to bottom:
- the window: the corpus's tokens plus room for the question and the answer, against
  the window Longread will open (and the model's trained length);
- memory: the model's weights, its KV cache and working memory for each ``KvType``,
  each against the memory this machine has free, with the chosen type marked. Choosing
  a row chooses the cache type.
When the corpus does not fit, a red line says so and buttons offer the ways out. The
numbers are the planner's own ``Plan`` (``engine.planner.measure_corpus``: the rows
``longread plan`` prints), worded by ``engine.units``; the gauge only draws them.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QRectF, QSize, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.i18n import format_bytes, format_duration
from engine.planner import CorpusMeasure
from engine.planning import Plan, PlanRow
from engine.runtime.backend import KvType

WEIGHTS = QColor("#9aa5b1")
CORPUS = QColor("#2f6fdf")
ROOM = QColor("#93b7f3")
MEMORY = QColor("#2f9e8f")  # issue 15: what earlier sessions found, carried after the corpus
KV = QColor("#e0912f")
OTHER = QColor("#c7b8e8")
OK = "#1e7d32"
BAD = "#b3261e"
WARN = "#9a6700"


def kv_note(kv_type: KvType) -> str:
    """What a KV cache type costs and gives, in a few words (translated)."""
    return {
        KvType.F16: QCoreApplication.translate("BudgetGauge", "full precision, fastest on CPUs"),
        KvType.Q8_0: QCoreApplication.translate("BudgetGauge", "about half the cache; prefill 2-4x slower on CPUs"),
        KvType.Q4_0: QCoreApplication.translate("BudgetGauge", "about a quarter of the cache; slowest prefill"),
    }[kv_type]


class SegmentBar(QWidget):
    """A horizontal bar of coloured segments (fractions of the width) and an optional
    marker line (a limit)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.segments: list[tuple[float, QColor]] = []
        self.marker: float | None = None
        self.over = False
        self.setMinimumHeight(16)

    def sizeHint(self) -> QSize:
        return QSize(200, 18)

    def set_segments(self, segments: list[tuple[float, QColor]], *, marker: float | None, over: bool) -> None:
        self.segments, self.marker, self.over = segments, marker, over
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 2.5, -0.5, -2.5)
        painter.setPen(QPen(QColor("#c3c9d2")))
        painter.setBrush(QColor("#eef1f5"))
        painter.drawRoundedRect(rect, 3, 3)
        x = rect.left()
        for fraction, color in self.segments:
            width = max(0.0, min(fraction, 1.0)) * rect.width()
            width = min(width, rect.right() - x)
            if width <= 0:
                continue
            painter.fillRect(QRectF(x, rect.top() + 1, width, rect.height() - 2), color)
            x += width
        if self.marker is not None and 0 <= self.marker <= 1:
            mx = rect.left() + self.marker * rect.width()
            painter.setPen(QPen(QColor(BAD if self.over else "#111827"), 2))
            painter.drawLine(int(mx), int(rect.top() - 2), int(mx), int(rect.bottom() + 2))
        painter.end()


class BudgetGauge(QWidget):
    """Tokens against the window and memory against RAM, with the ways out.

    Signals:
        kv_type_chosen(str): the user picked a KV cache type row.
        window_requested(int): the user asked for a larger window (tokens).
        remove_requested(): the user wants to take documents out.
        model_requested(): the user wants to choose another model.
    """

    kv_type_chosen = Signal(str)
    window_requested = Signal(int)
    remove_requested = Signal()
    model_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.measure: CorpusMeasure | None = None
        self.kv_type = KvType.F16
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel(self.tr("Does it fit?"))
        heading.setStyleSheet("font-size: 13pt; font-weight: 600;")
        layout.addWidget(heading)
        self.verdict = QLabel(self.tr("Add documents to see whether they fit the model."))
        self.verdict.setWordWrap(True)
        self.verdict.setStyleSheet("color: #4b5563;")
        layout.addWidget(self.verdict)

        self.window_caption = QLabel(self.tr("Context window"))
        self.window_caption.setStyleSheet("font-weight: 600;")
        layout.addWidget(self.window_caption)
        self.window_bar = SegmentBar()
        layout.addWidget(self.window_bar)
        self.window_text = QLabel()
        self.window_text.setWordWrap(True)
        layout.addWidget(self.window_text)

        self.memory_caption = QLabel(self.tr("Memory: model + KV cache + working memory, by cache type"))
        self.memory_caption.setStyleSheet("font-weight: 600;")
        layout.addWidget(self.memory_caption)
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        self.kv_group = QButtonGroup(self)
        self.kv_buttons: dict[str, QRadioButton] = {}
        self.memory_bars: dict[str, SegmentBar] = {}
        self.memory_texts: dict[str, QLabel] = {}
        for i, kv in enumerate(KvType):
            button = QRadioButton(kv)
            button.setToolTip(self.tr("KV cache {kv_type}: {note}").format(kv_type=kv, note=kv_note(kv)))
            self.kv_group.addButton(button)
            button.toggled.connect(lambda checked, kv=kv: self._on_kv_button_toggled(kv, checked))
            bar = SegmentBar()
            text = QLabel()
            text.setMinimumWidth(150)
            grid.addWidget(button, i, 0)
            grid.addWidget(bar, i, 1)
            grid.addWidget(text, i, 2)
            self.kv_buttons[kv], self.memory_bars[kv], self.memory_texts[kv] = button, bar, text
        layout.addLayout(grid)
        self.memory_text = QLabel()
        self.memory_text.setWordWrap(True)
        self.memory_text.setStyleSheet("color: #4b5563;")
        layout.addWidget(self.memory_text)

        ways = QHBoxLayout()
        self.larger_button = QPushButton(self.tr("Use a larger window"))
        self.larger_button.clicked.connect(self._on_larger_button_clicked)
        self.remove_button = QPushButton(self.tr("Remove documents"))
        self.remove_button.clicked.connect(self.remove_requested)
        self.model_button = QPushButton(self.tr("Choose another model"))
        self.model_button.clicked.connect(self.model_requested)
        for way in (self.larger_button, self.remove_button, self.model_button):
            ways.addWidget(way)
        ways.addStretch(1)
        self.ways = QWidget()
        self.ways.setLayout(ways)
        layout.addWidget(self.ways)
        self.set_kv_type(KvType.F16)
        self.show_measure(None)

    # -- inputs -------------------------------------------------------------------

    def set_kv_type(self, kv_type: str) -> None:
        self.kv_type = KvType(kv_type)
        button = self.kv_buttons.get(kv_type)
        if button is not None and not button.isChecked():
            button.blockSignals(True)
            button.setChecked(True)
            button.blockSignals(False)
        self._draw()

    def show_busy(self, text: str) -> None:
        """Say what is being counted while the numbers are not ready."""
        self.verdict.setText(text)
        self.verdict.setStyleSheet("color: #4b5563;")

    def show_error(self, message: str) -> None:
        self.measure = None
        self._draw()
        self.verdict.setText(message)
        self.verdict.setStyleSheet(f"color: {BAD};")

    def show_measure(self, measure: CorpusMeasure | None) -> None:
        self.measure = measure
        self._draw()

    # -- numbers the tests read -----------------------------------------------------

    def numbers(self) -> dict[str, int]:
        """The figures drawn, by name (corpus/needed/window tokens, bytes per KV type);
        ``available_bytes`` is missing when the free memory is unknown."""
        m = self.measure
        if m is None:
            return {}
        plan = m.plan
        out = {
            "corpus_tokens": plan.corpus_tokens,
            "memory_tokens": m.memory_tokens,
            "needed_tokens": plan.needed_tokens,
            "n_ctx": plan.n_ctx,
            "max_ctx": plan.max_ctx,
        }
        if plan.available_bytes is not None:
            out["available_bytes"] = plan.available_bytes
        for row in plan.rows:
            out[f"kv_{row.kv_type}_bytes"] = row.kv_bytes
            out[f"total_{row.kv_type}_bytes"] = row.total_bytes
        return out

    # -- drawing ------------------------------------------------------------------

    def _on_kv_button_toggled(self, kv_type: str, checked: bool) -> None:
        if checked and kv_type != self.kv_type:
            self.kv_type = KvType(kv_type)
            self._draw()
            self.kv_type_chosen.emit(kv_type)

    def _on_larger_button_clicked(self) -> None:
        m = self.measure
        if m is not None:
            self.window_requested.emit(m.plan.max_ctx)

    def _flash_note(self, row: PlanRow, plan: Plan) -> str:
        """The planner's warning on a quantized cache (``PlanRow.warning``), worded here."""
        if not row.needs_flash_attn:
            return ""
        note = ". " + self.tr("Needs flash attention (llama.cpp requires it for a quantized cache)")
        f16 = plan.row(KvType.F16).est_prefill_s
        if row.est_prefill_s is not None and f16:
            return (
                note
                + "; "
                + self.tr("measured on this machine, reading takes {ratio}x the time of f16.").format(
                    ratio=f"{row.est_prefill_s / f16:.1f}"
                )
            )
        return note + "; " + self.tr("on CPUs that path often reads 2-4x slower than f16 (not measured here yet).")

    def _draw_server(self, plan: Plan) -> None:
        """A model on a server: its per-request window, and no memory rows (the server's
        memory is not this computer's)."""
        for widget in (self.memory_caption, self.memory_text):
            widget.setVisible(False)
        for kv in self.kv_buttons:
            for part in (self.kv_buttons[kv], self.memory_bars[kv], self.memory_texts[kv]):
                part.setVisible(False)
        self.larger_button.setVisible(False)
        corpus, needed, n_ctx = plan.corpus_tokens, plan.needed_tokens, plan.n_ctx
        self.window_text.setText(
            self.tr(
                "{corpus_mark} documents {corpus} tokens  {room_mark} question and answer {room}  "
                "= {needed} of {n_ctx} ({percent}%). The server at {server} gives each request up to {max_ctx} tokens."
            ).format(
                corpus_mark=f"<span style='color:{CORPUS.name()}'>■</span>",
                room_mark=f"<span style='color:{ROOM.name()}'>■</span>",
                corpus=f"{corpus:,}",
                room=f"{needed - corpus:,}",
                needed=f"{needed:,}",
                n_ctx=f"{n_ctx:,}",
                percent=f"{100 * needed / max(n_ctx, 1):.0f}",
                server=plan.server,
                max_ctx=f"{plan.max_ctx:,}",
            )
        )
        if plan.fits_window:
            self.verdict.setText(self.tr("<b>Fits</b> the server's window."))
            self.verdict.setStyleSheet(f"color: {OK};")
        else:
            self.verdict.setText(
                self.tr(
                    "<b>Does not fit</b> the server's window: fewer or shorter documents, read in waves, or a larger -c on the server."
                )
            )
            self.verdict.setStyleSheet(f"color: {BAD};")

    def _draw(self) -> None:
        m = self.measure
        visible = m is not None
        for widget in (self.window_caption, self.window_bar, self.window_text, self.memory_caption, self.memory_text):
            widget.setVisible(visible)
        for kv in self.kv_buttons:
            for part in (self.kv_buttons[kv], self.memory_bars[kv], self.memory_texts[kv]):
                part.setVisible(visible)
        self.ways.setVisible(False)
        if m is None:
            self.verdict.setText(self.tr("Add documents to see whether they fit the model."))
            self.verdict.setStyleSheet("color: #4b5563;")
            return
        plan = m.plan
        corpus, needed, n_ctx, max_ctx = plan.corpus_tokens, plan.needed_tokens, plan.n_ctx, plan.max_ctx
        scale = max(n_ctx, needed, 1)
        memory = m.memory_tokens
        room = needed - corpus - memory
        self.window_caption.setText(self.tr("Context window: {n_ctx} tokens").format(n_ctx=f"{n_ctx:,}"))
        self.window_bar.set_segments(
            [(corpus / scale, CORPUS), (memory / scale, MEMORY), (room / scale, ROOM)],
            marker=n_ctx / scale if needed > n_ctx else None,
            over=needed > n_ctx,
        )
        self.window_text.setText(
            self.tr(
                "{corpus_mark} documents {corpus} tokens  {room_mark} question and answer {room}  "
                "= {needed} of {n_ctx} ({percent}%). The model was trained on windows of up to {max_ctx}."
            ).format(
                corpus_mark=f"<span style='color:{CORPUS.name()}'>■</span>",
                room_mark=(
                    (
                        f"<span style='color:{MEMORY.name()}'>■</span> "
                        + self.tr("memory {memory}").format(memory=f"{memory:,}")
                        + "  "
                    )
                    if memory
                    else ""
                )
                + f"<span style='color:{ROOM.name()}'>■</span>",
                corpus=f"{corpus:,}",
                room=f"{room:,}",
                needed=f"{needed:,}",
                n_ctx=f"{n_ctx:,}",
                percent=f"{100 * needed / max(n_ctx, 1):.0f}",
                max_ctx=f"{max_ctx:,}",
            )
            # Nothing is dropped without being shown (issue 15): the Memory panel lets the user pick.
            + (f" <b>{m.memory.describe_left_out()}</b>" if m.memory.left_out else "")
        )
        if plan.server is not None:  # issue 16: the server's window, no memory of this machine's
            self._draw_server(plan)
            return
        available = plan.available_bytes
        biggest = max(r.total_bytes for r in plan.rows)
        # Scale to the biggest row so the costs can be compared; the free-memory line is
        # drawn only when it falls on the bar (far more memory than needed is said in words).
        if available is None or available > biggest * 1.1:
            mscale = biggest * 1.1
        else:
            mscale = max(available, biggest) * 1.05
        for row in plan.rows:
            other = row.compute_bytes + row.overhead_bytes
            self.memory_bars[row.kv_type].set_segments(
                [(row.weights_bytes / mscale, WEIGHTS), (row.kv_bytes / mscale, KV), (other / mscale, OTHER)],
                marker=available / mscale if available is not None and available <= mscale else None,
                over=not row.fits_memory,
            )
            verdict = self.tr("fits") if row.fits_memory else self.tr("too big")
            color = OK if row.fits_memory else BAD
            weight = "font-weight:600;" if row.kv_type == self.kv_type else ""
            speed = (
                self.tr(", reads in ~{time}").format(time=format_duration(row.est_prefill_s))
                if row.est_prefill_s
                else ""
            )
            self.memory_texts[row.kv_type].setText(
                f"<span style='{weight}'>{format_bytes(row.total_bytes)} "
                f"<span style='color:{color}'>{verdict}</span>{speed}</span>"
            )
            self.memory_texts[row.kv_type].setToolTip(
                self.tr("model {weights} + KV cache {kv} for {n_ctx} tokens + working memory {other}; {note}").format(
                    weights=format_bytes(row.weights_bytes),
                    kv=format_bytes(row.kv_bytes),
                    n_ctx=f"{n_ctx:,}",
                    other=format_bytes(other),
                    note=kv_note(row.kv_type),
                )
                + self._flash_note(row, plan)
            )
        chosen = plan.row(self.kv_type)
        free = format_bytes(available) if available is not None else self.tr("an unknown amount")
        self.memory_text.setText(
            self.tr(
                "{weights_mark} model {weights}  {kv_mark} KV cache {kv} at {kv_type} ({note})  "
                "{other_mark} working memory {other}. This computer has {free} of memory free."
            ).format(
                weights_mark=f"<span style='color:{WEIGHTS.name()}'>■</span>",
                kv_mark=f"<span style='color:{KV.name()}'>■</span>",
                other_mark=f"<span style='color:{OTHER.name()}'>■</span>",
                weights=format_bytes(chosen.weights_bytes),
                kv=format_bytes(chosen.kv_bytes),
                kv_type=self.kv_type,
                note=kv_note(self.kv_type),
                other=format_bytes(chosen.compute_bytes + chosen.overhead_bytes),
                free=free,
            )
        )
        ways: list[str] = []
        if not plan.fits_window:
            self.ways.setVisible(True)
            can_grow = needed <= max_ctx and n_ctx < max_ctx
            self.larger_button.setVisible(can_grow)
            self.larger_button.setText(self.tr("Use a {max_ctx}-token window").format(max_ctx=f"{max_ctx:,}"))
            if can_grow:
                ways.append(self.tr("a larger window (up to {max_ctx})").format(max_ctx=f"{max_ctx:,}"))
            ways.append(self.tr("fewer or shorter documents"))
            if needed > max_ctx:
                ways.append(self.tr("a model trained on more than {max_ctx} tokens").format(max_ctx=f"{max_ctx:,}"))
            if m.waves is not None:  # both costs of reading in waves (issue 13 item 3)
                ways.append(self.tr("reading it in waves: {costs}").format(costs=m.waves.describe()))
            self.verdict.setText(
                self.tr(
                    "<b>Does not fit:</b> the documents need {needed} tokens with the question and "
                    "answer, the window holds {n_ctx}. Ways out: {ways}."
                ).format(needed=f"{needed:,}", n_ctx=f"{n_ctx:,}", ways="; ".join(ways))
            )
            self.verdict.setStyleSheet(f"color: {BAD};")
        elif not chosen.fits_memory:
            smaller = [r.kv_type for r in plan.rows if r.fits_memory]
            self.ways.setVisible(True)
            self.larger_button.setVisible(False)
            needed_free = self.tr("<b>Not enough memory</b> at {kv_type}: {needed} needed, {free} free.").format(
                kv_type=self.kv_type, needed=format_bytes(chosen.total_bytes), free=free
            )
            if smaller:
                way = self.tr("Choose {kv_types} below, or use fewer documents or a smaller model.").format(
                    kv_types=self.tr(" or ").join(smaller)
                )
            else:
                way = self.tr("Use fewer documents or a smaller model.")
            self.verdict.setText(needed_free + " " + way)
            self.verdict.setStyleSheet(f"color: {BAD};")
        elif plan.problems:
            # Neither the window nor memory: a window beyond the trained length, say.
            self.verdict.setText(self.tr("<b>Cannot read:</b> {why}").format(why=plan.refusal()))
            self.verdict.setStyleSheet(f"color: {BAD};")
        elif chosen.reliability:
            # Issue 14: the window holds it, but the probe measured less than that.
            waves = plan.waves if plan.waves is not None and plan.waves.kv_type == self.kv_type else None
            measured = next((m.describe() for m in plan.measured if m.kv_type == self.kv_type), "")
            self.verdict.setText(
                self.tr(
                    "<b>Fits the window, beyond what this model reliably reads</b> ({measured}): "
                    "{needed} of {n_ctx} tokens."
                ).format(measured=measured, needed=f"{needed:,}", n_ctx=f"{n_ctx:,}")
                + " "
                + (
                    self.tr("Better: {waves}.").format(waves=waves.describe())
                    if waves is not None
                    else self.tr("Check important answers against the pages.")
                )
            )
            self.verdict.setStyleSheet(f"color: {WARN};")
        else:
            self.verdict.setText(
                self.tr("<b>Fits.</b> {needed} of {n_ctx} tokens; {total} of {free} free memory at {kv_type}.").format(
                    needed=f"{needed:,}",
                    n_ctx=f"{n_ctx:,}",
                    total=format_bytes(chosen.total_bytes),
                    free=free,
                    kv_type=self.kv_type,
                )
            )
            self.verdict.setStyleSheet(f"color: {OK};")
