"""Take the README's screenshots of the real window, reading with the real SmolLM2.

Run under a virtual X server (a real xcb window, not the offscreen platform)::

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python docs/take_screenshots.py

It uses a throwaway data folder and settings file, and writes
``docs/screenshot-empty.png`` (the first start), ``docs/screenshot-corpus.png`` (the
sample document loaded, with the budget gauge) and ``docs/screenshot-answer.png`` (an
answer with page citations; the script asks follow-ups until an answer cites a page,
and prints every answer) and ``docs/screenshot-reading.png`` (the progress bar while
the corpus is read) by grabbing the window (``QWidget.grab``).

Then it runs itself again under ``LANG=ru_RU.UTF-8`` (``--russian``: the window follows
the system locale, with the translations compiled from resources/i18n into the
throwaway folder) for the Russian window (issue 18): ``docs/screenshot-ru-empty.png``
and ``docs/screenshot-ru-answer.png`` (a two-page Russian PDF, drawn with DejaVu Sans,
asked about in Russian).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What amount must Coastline pay Harbor Point in the end, and on which page does the award say so? Cite the page.",
    # Follow-ups reuse the read corpus (only the question is new), so asking again is
    # quick; a 135M model does not always cite, so the script asks until an answer does.
    "Which page states the final net amount? Answer with its page marker, like [harbor-lease-dispute.md p.1].",
    "Quote the sentence that gives the amount Coastline shall pay, then its page marker.",
]


RUSSIAN_QUESTION = "Кто основал библиотеку и сколько книг он собрал?"


def main() -> int:
    russian = "--russian" in sys.argv[1:]
    sys.path.insert(0, str(ROOT))
    home = Path(tempfile.mkdtemp(prefix="longread-shots-"))
    os.environ["LONGREAD_HOME"] = str(home)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

    from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: TID251 (a script that drives the GUI)
    from PySide6.QtWidgets import QApplication  # noqa: TID251 (a script that drives the GUI)

    from app.resources import sample_document  # noqa: TID251 (a script that drives the GUI)
    from app.settings import AppSettings  # noqa: TID251 (a script that drives the GUI)
    from app.views.main_window import MainWindow  # noqa: TID251 (a script that drives the GUI)
    from engine.config import ReadSettings
    from engine.library import Library
    from engine.models.bundled import bundled_model_path

    _qt_app = QApplication(sys.argv[:1])  # kept alive for the whole run
    if russian:
        from app.i18n import install_translators  # noqa: TID251 (a script that drives the GUI)

        qm = home / "i18n"
        subprocess.run(
            [sys.executable, str(ROOT / "packaging" / "translations.py"), "build", "--out", str(qm)], check=True
        )
        translators = install_translators(_qt_app, "", folder=qm)  # the system's language: LANG
        if not translators:
            raise SystemExit("no Russian translation installed: is LANG=ru_RU.UTF-8 set?")
    settings = AppSettings(QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat))

    def open_library() -> Library:
        return Library(home / "longread.db", settings=ReadSettings(max_answer_tokens=60))

    window = MainWindow(
        library_factory=open_library,
        bundled_model=bundled_model_path(),
        settings=settings,
        data_folder=home,
    )
    window.resize(1400, 900)
    window.show()

    def wait(signal, timeout_s: float) -> object:  # type: ignore[no-untyped-def]
        loop = QEventLoop()
        got: list[object] = []
        signal.connect(lambda *args: (got.append(args[0] if args else None), loop.quit()))
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
        if not got:
            window.close()
            raise SystemExit(f"timed out waiting for {signal}")
        return got[0]

    def settle(ms: int = 600) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    out = ROOT / "docs"
    settle(1500)  # the model list fills in
    if russian:
        return _russian_shots(window, home, out, wait, settle)
    window.grab().save(str(out / "screenshot-empty.png"))

    window.add_paths([sample_document()])
    wait(window.measured, 300)
    settle()
    window.grab().save(str(out / "screenshot-corpus.png"))

    progress = window.conversation.progress
    for i, question in enumerate(QUESTIONS):
        window.conversation.question.setPlainText(question)
        start = time.perf_counter()
        window.conversation.ask_button.click()
        if i == 0:
            # One frame mid-prefill: the progress bar with tokens/s and time left.
            deadline = time.perf_counter() + 600
            while not (progress.maximum() > 0 and 0 < progress.value() < progress.maximum()):
                settle(200)
                if time.perf_counter() > deadline:
                    break
            settle(300)
            window.grab().save(str(out / "screenshot-reading.png"))
        result = wait(window.answered, 2400)
        print(f"answered in {time.perf_counter() - start:.0f} s: {result.answer!r}")  # type: ignore[attr-defined]
        cited = [(c.document, c.page, c.ok) for c in result.citations]  # type: ignore[attr-defined]
        print("citations:", cited)
        if any(c.exists for c in result.citations):  # type: ignore[attr-defined]
            break
    settle()
    window.grab().save(str(out / "screenshot-answer.png"))
    window.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k != "LANGUAGE"}
    return subprocess.run([sys.executable, __file__, "--russian"], env={**env, "LANG": "ru_RU.UTF-8"}).returncode


def _russian_shots(window, home: Path, out: Path, wait, settle) -> int:  # type: ignore[no-untyped-def]
    """The Russian window: empty, then a Russian PDF asked about in Russian."""
    from tests.engine.russian_prose import RUSSIAN

    window.grab().save(str(out / "screenshot-ru-empty.png"))
    window.add_paths([_russian_pdf(home / "библиотека.pdf", RUSSIAN.split("\n\n"))])
    wait(window.measured, 300)
    settle()
    window.conversation.question.setPlainText(RUSSIAN_QUESTION)
    start = time.perf_counter()
    window.conversation.ask_button.click()
    result = wait(window.answered, 2400)
    print(f"answered in {time.perf_counter() - start:.0f} s: {result.answer!r}")  # type: ignore[attr-defined]
    settle()
    window.grab().save(str(out / "screenshot-ru-answer.png"))
    window.close()
    return 0


def _russian_pdf(path: Path, paragraphs: list[str]) -> Path:
    """Two pages of Russian prose, drawn with DejaVu Sans (it has Cyrillic glyphs)."""
    from fpdf import FPDF

    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not font.is_file():
        import matplotlib

        font = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", fname=str(font))
    pdf.set_font("DejaVu", size=11)
    for text in ("\n\n".join(paragraphs[:2]), "\n\n".join(paragraphs[2:])):
        pdf.add_page()
        pdf.multi_cell(180, 6, text)
    pdf.output(str(path))
    return path


if __name__ == "__main__":
    sys.exit(main())
