"""The window's language: Qt translations, and the words the engine's values are shown with.

Every string the window shows is written in English in the source as ``self.tr("...")``
(or ``QCoreApplication.translate("Context", "...")`` outside a QObject) and translated
by Qt's own tools: ``pyside6-lupdate`` collects them into ``resources/i18n/longread_<lang>.ts``
(``make translations-update``), a person translates the .ts, ``pyside6-lrelease`` compiles
it to a .qm (``make translations``; the packaging build does the same and PyInstaller
bundles ``resources/``). ``install_translators`` loads the .qm of the chosen language
(``language``: a code such as ``"ru"``, or ``""`` for the system locale) with Qt's own
translations of its standard buttons and dialogs.

The engine is Qt-free and speaks English; where the window shows one of its values (a
run's kind, a step's status, a duration, a size) it words it here, translated.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from engine.reading.stepping import RunProgress
from engine.runs import Run, RunKind, Status


def kind_label(kind: RunKind) -> str:
    """How a person names a stored run: ``Asked``, ``Thought deeply``, ``Read in waves``."""
    return {
        RunKind.ASK: QCoreApplication.translate("runs", "Asked"),
        RunKind.THINK: QCoreApplication.translate("runs", "Thought deeply"),
        RunKind.WAVES: QCoreApplication.translate("runs", "Read in waves"),
    }[kind]


def status_label(status: Status) -> str:
    """A step's or run's status in words (``done``, ``running``, ...)."""
    labels = {
        Status.PENDING: QCoreApplication.translate("runs", "pending"),
        Status.RUNNING: QCoreApplication.translate("runs", "running"),
        Status.DONE: QCoreApplication.translate("runs", "done"),
        Status.FAILED: QCoreApplication.translate("runs", "failed"),
        Status.CANCELLED: QCoreApplication.translate("runs", "cancelled"),
        Status.INTERRUPTED: QCoreApplication.translate("runs", "interrupted"),
    }
    return labels.get(status, str(status))


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min`` (as ``engine.units.format_duration``), translated."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return QCoreApplication.translate("units", "{s} s").format(s=seconds)
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return QCoreApplication.translate("units", "{min} min {s} s").format(min=minutes, s=f"{sec:02d}")
    hours, minutes = divmod(minutes, 60)
    return QCoreApplication.translate("units", "{h} h {min} min").format(h=hours, min=f"{minutes:02d}")


def format_bytes(n: float) -> str:
    """``98 MB``, ``1.4 GB``, ``512 B`` (decimal units, as ``engine.units.format_bytes``), translated."""
    units = (
        (QCoreApplication.translate("units", "TB"), 1e12),
        (QCoreApplication.translate("units", "GB"), 1e9),
        (QCoreApplication.translate("units", "MB"), 1e6),
        (QCoreApplication.translate("units", "KB"), 1e3),
    )
    for unit, size in units:
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{max(0, int(n))} " + QCoreApplication.translate("units", "B")


def step_kind_label(kind: str) -> str:
    """A step's heading by its kind (``engine.runs.STEP_HEADINGS``), translated."""
    labels = {
        "plan": QCoreApplication.translate("runs", "Plan"),
        "examine": QCoreApplication.translate("runs", "Examination"),
        "hypotheses": QCoreApplication.translate("runs", "Hypotheses"),
        "critique": QCoreApplication.translate("runs", "Critique"),
        "answer": QCoreApplication.translate("runs", "Answer"),
        "wave": QCoreApplication.translate("runs", "Wave"),
    }
    return labels.get(kind, kind.title())


def run_progress(run: Run) -> str:
    """``2 of 5 steps`` / ``1 of 4 waves``: how far a stopped run got (``Run.progress``)."""
    if run.kind is RunKind.WAVES:
        waves = run.waves
        done, total = sum(1 for w in waves if w.done), len(waves)
        if total == 1:
            return QCoreApplication.translate("runs", "{done} of %n wave", "", total).format(done=done)
        return QCoreApplication.translate("runs", "{done} of %n waves", "", total).format(done=done)
    done, total = run.done_steps, len(run.steps)
    if total == 1:
        return QCoreApplication.translate("runs", "{done} of %n step", "", total).format(done=done)
    return QCoreApplication.translate("runs", "{done} of %n steps", "", total).format(done=done)


def describe_progress(progress: RunProgress) -> str:
    """``Step 2 of 5 (Examination), about 40 s left``: where a run of steps is (``RunProgress.describe``)."""
    if progress.kind is RunKind.WAVES and progress.stage == "answer":
        head = QCoreApplication.translate("runs", "Answering from the notes")
    elif progress.kind is RunKind.WAVES:
        head = QCoreApplication.translate("runs", "Wave {n} of {total}").format(n=progress.step, total=progress.n_steps)
    else:
        head = QCoreApplication.translate("runs", "Step {n} of {total} ({kind})").format(
            n=progress.step, total=progress.n_steps, kind=step_kind_label(progress.step_kind)
        )
    if progress.eta_s is None:
        return head
    return QCoreApplication.translate("runs", "{progress}, about {left} left").format(
        progress=head, left=format_duration(progress.eta_s)
    )
