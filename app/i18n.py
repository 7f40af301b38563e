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

import logging
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QObject, QTranslator

from app.resources import resource_path
from engine.reading.stepping import RunProgress
from engine.runs import Run, RunKind, Status

log = logging.getLogger("longread.app")

# The languages the window speaks besides English (the source language): a .ts each in
# resources/i18n/, named in their own language in Settings.
LANGUAGES = {"en": "English", "ru": "Русский"}


def translations_folder() -> Path:
    """Where the compiled .qm files are: resources/i18n (the source tree's or the bundle's)."""
    return resource_path("i18n")


def chosen_locale(language: str) -> QLocale:
    """The locale the window speaks: ``language`` (a code from ``LANGUAGES``) or, for
    ``""``, the system's (``LANG``/``LC_ALL`` on Linux, the user's settings elsewhere)."""
    return QLocale(language) if language else QLocale.system()


def install_translators(app: QCoreApplication, language: str = "", *, folder: Path | None = None) -> list[QTranslator]:
    """Install Longread's and Qt's translations for ``language`` (``""``: the system's).

    English needs none. A missing .qm (a source checkout where ``make translations`` has
    not run) leaves the window in English and says so in the log.

    Returns:
        the translators installed (keep them alive as long as the app).
    """
    locale = chosen_locale(language)
    if locale.language() in (QLocale.Language.English, QLocale.Language.C):
        return []
    folder = folder or translations_folder()
    installed = []
    ours = QTranslator(app)
    if ours.load(locale, "longread", "_", str(folder)):
        app.installTranslator(ours)
        installed.append(ours)
    else:
        log.warning("no translation of the window for %s in %s (run `make translations`)", locale.name(), folder)
        return []
    # Qt's own strings (the OK/Cancel of standard buttons, a line edit's context menu).
    for qt_folder in (QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath), _pyside_translations()):
        qt = QTranslator(app)
        if qt.load(locale, "qtbase", "_", qt_folder):
            app.installTranslator(qt)
            installed.append(qt)
            break
    return installed


def _pyside_translations() -> str:
    """PySide6's own copy of Qt's translations (where a frozen bundle keeps them)."""
    import PySide6

    return str(Path(PySide6.__file__).parent / "Qt" / "translations")


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


class Counted(QObject):
    """The module-level strings with a count (``%n``), as ``self.tr(text, "", n)``: the
    only form whose plural forms every supported PySide6's lupdate finds (before 6.12,
    ``QCoreApplication.translate(context, text, "", n)`` came out as a plain string)."""

    def of_waves(self, done: int, total: int) -> str:
        if total == 1:
            return self.tr("{done} of %n wave", "", total).format(done=done)
        return self.tr("{done} of %n waves", "", total).format(done=done)

    def of_steps(self, done: int, total: int) -> str:
        if total == 1:
            return self.tr("{done} of %n step", "", total).format(done=done)
        return self.tr("{done} of %n steps", "", total).format(done=done)

    def notes_dropped(self, dropped: int) -> str:
        if dropped == 1:
            return self.tr("(%n note dropped: not on its page)", "", dropped)
        return self.tr("(%n notes dropped: not on its page)", "", dropped)


COUNTED = Counted()


def run_progress(run: Run) -> str:
    """``2 of 5 steps`` / ``1 of 4 waves``: how far a stopped run got (``Run.progress``)."""
    if run.kind is RunKind.WAVES:
        waves = run.waves
        return COUNTED.of_waves(sum(1 for w in waves if w.done), len(waves))
    return COUNTED.of_steps(run.done_steps, len(run.steps))


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
