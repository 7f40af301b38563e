"""``longread-app``: the composition root of the desktop app.

``main()`` calls ``multiprocessing.freeze_support()`` first (PDF extraction spawns child
processes, which a frozen app must be able to start), sets ``LONGREAD_HOME`` from the
saved data folder before anything opens the store, installs the log and crash dialog,
builds what the window is given (a factory of the engine's ``Library`` over the data
folder's store, the bundled model, the settings) and the window, and loads the files
named on the command line::

    longread-app resources/sample/harbor-lease-dispute.md
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="longread-app", description="Read whole documents with a local model.")
    parser.add_argument("paths", nargs="*", type=Path, metavar="FILE_OR_FOLDER", help="documents to open")
    parser.add_argument("--model", type=Path, help="a GGUF model file to read with")
    # Issue 8: checks of an installed or frozen app (packaging/README.md).
    parser.add_argument("--selftest", action="store_true", help="check the installation headless, then exit")
    parser.add_argument("--quit-after-start", action="store_true", help="show the window, print when, and quit")
    args, _qt_args = parser.parse_known_args(list(argv))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app; return its exit code."""
    multiprocessing.freeze_support()
    argv = list(sys.argv if argv is None else argv)
    args = _parse_args(argv[1:])
    if args.selftest:
        from app.selftest import run_selftest

        return run_selftest()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.errors import install_error_handlers
    from app.settings import AppSettings
    from engine.config import data_dir, db_path
    from engine.errors import EngineError
    from engine.library import Library
    from engine.models.bundled import bundled_model_path

    app = QApplication(argv)
    app.setOrganizationName("Longread")
    app.setApplicationName("Longread")
    app.setDesktopFileName("longread")  # Wayland and X11 docks match the window to longread.desktop
    settings = AppSettings(QSettings())
    if settings.data_dir and "LONGREAD_HOME" not in os.environ:
        os.environ["LONGREAD_HOME"] = settings.data_dir
    try:
        folder = data_dir()
        install_error_handlers(folder / "longread.log")
        bundled = bundled_model_path()
    except EngineError as exc:
        QMessageBox.critical(None, QApplication.translate("main", "Longread cannot start"), exc.message)
        return 1
    if args.model is not None:
        settings.model_path = str(args.model.resolve())

    from app.views.main_window import MainWindow

    store_path = db_path()

    def open_library() -> Library:
        # One per thread that needs one (each lane, each document read): a Library is one thread's.
        return Library(store_path)

    try:
        window = MainWindow(library_factory=open_library, bundled_model=bundled, settings=settings, data_folder=folder)
    except EngineError as exc:  # the store cannot be opened or migrated (disk full, damaged, ...)
        QMessageBox.critical(None, QApplication.translate("main", "Longread cannot start"), exc.message)
        return 1
    window.show()
    if args.paths:
        window.add_paths([p.resolve() for p in args.paths])
    if args.quit_after_start:
        from PySide6.QtCore import QTimer

        # The first event-loop tick after show(): the window is up and answering events.
        QTimer.singleShot(0, lambda: (print(f"window shown at {time.time():.6f}", flush=True), app.quit()))
    code = app.exec()
    window.shutdown()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
