"""Sessions sidebar (search, rename, delete with undo), settings kept between runs, and
the crash report. Sessions are written to the real store file by ``Library.ask`` with
the fake backend's scripted answers; no real model is needed here."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSettings

from app.errors import CrashDialog, format_report
from app.main import _parse_args
from app.settings import AppSettings
from app.views.settings_dialog import SettingsDialog
from engine.corpus import Corpus
from engine.library import Library

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample" / "harbor-lease-dispute.md"


def _make_sessions(db: Path, gguf_file: Path, fake_backend: object) -> list[int]:
    """Two sessions of one question each, asked through the library."""
    with Library(db, model_path=gguf_file, backend=fake_backend) as library:  # type: ignore[arg-type]
        doc, _fresh = library.add_document(SAMPLE)
        ids = []
        for question, answer in [
            ("Who repaired the roof?", "Harbor Point paid for emergency repairs."),
            ("Was the deposit returned?", "No, it was withheld."),
        ]:
            fake_backend.enqueue(answer)  # type: ignore[attr-defined]
            ids.append(library.ask(Corpus((doc,)), question).session_id)
        return ids


def test_sidebar_lists_searches_renames_and_deletes_with_undo(
    qtbot, make_window, home: Path, gguf_file: Path, fake_backend
) -> None:
    roof, deposit = _make_sessions(home / "longread.db", gguf_file, fake_backend)
    window = make_window()
    sidebar = window.sidebar
    qtbot.waitUntil(lambda: sidebar.session_ids() == [deposit, roof])  # newest first

    with qtbot.waitSignal(window.sessions_listed, timeout=10000) as found:
        sidebar.search.setText("emergency")
    assert found.args[0] == [roof]
    with qtbot.waitSignal(window.sessions_listed, timeout=10000):
        sidebar.search.setText("")

    with qtbot.waitSignal(window.sessions_listed, timeout=10000):
        sidebar.rename_requested.emit(roof, "Roof leak damages")
    assert "Roof leak damages" in sidebar.list.item(sidebar.session_ids().index(roof)).text()

    with qtbot.waitSignal(window.sessions_listed, timeout=10000):
        sidebar.delete_session(deposit)
    assert sidebar.session_ids() == [roof]
    assert sidebar.undo_bar.isVisibleTo(window)
    with qtbot.waitSignal(window.sessions_listed, timeout=10000):
        sidebar.undo_button.click()
    assert set(sidebar.session_ids()) == {roof, deposit}

    # Delete again and let the undo time run out: the session is purged from the store.
    with qtbot.waitSignal(window.sessions_listed, timeout=10000):
        sidebar.delete_session(deposit)
    sidebar._undo_timer.setInterval(1)
    sidebar._undo_timer.start()
    qtbot.waitUntil(lambda: not sidebar.undo_bar.isVisibleTo(window))
    with Library(home / "longread.db") as library:
        qtbot.waitUntil(lambda: library.store.get_session(deposit) is None, timeout=10000)  # purged for good
        assert library.runs(deposit) == []
        assert [s.id for s in library.sessions()] == [roof]


def test_settings_are_kept_between_runs_and_reach_the_reader(qtbot, tmp_path: Path, make_window) -> None:
    path = str(tmp_path / "prefs.ini")
    settings = AppSettings(QSettings(path, QSettings.Format.IniFormat))
    dialog = SettingsDialog(settings, current_data_dir=str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.n_ctx.setValue(4096)
    dialog.kv_type.setCurrentIndex(1)
    dialog.threads.setValue(1)
    dialog.data_dir.setText(str(tmp_path / "data"))
    assert settings.wave_mode == "map"  # the measured default (engine/reading/waves.py)
    dialog.wave_mode.setCurrentIndex(0)
    assert dialog.assemble.isChecked()  # on by default: a changed corpus is assembled (issue 17)
    dialog.assemble.setChecked(False)
    dialog.accept()

    again = AppSettings(QSettings(path, QSettings.Format.IniFormat))
    assert again.wave_mode == "carry"
    assert (again.n_ctx, again.kv_type, again.n_threads, again.data_dir) == (4096, "q8_0", 1, str(tmp_path / "data"))
    read = again.read_settings()
    assert (read.n_ctx, read.kv_type, read.n_threads, read.assemble) == (4096, "q8_0", 1, False)

    window = make_window()
    window.settings.n_ctx = 2048
    window.settings.kv_type = "q4_0"
    with qtbot.waitSignal(window.measured, timeout=60000) as blocker:
        window.add_paths([Path(__file__).resolve().parents[2] / "resources" / "sample" / "harbor-lease-dispute.md"])
        window.apply_settings()
    assert blocker.args[0].plan.n_ctx == 2048
    assert window.gauge.kv_type == "q4_0" and window.gauge.kv_buttons["q4_0"].isChecked()


def test_crash_report_is_copyable_and_names_the_error(qtbot, tmp_path: Path) -> None:
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        exc_type, exc, tb = sys.exc_info()
    assert exc_type is not None and exc is not None
    report = format_report(exc_type, exc, tb)
    assert "ZeroDivisionError: boom" in report and "Longread" in report
    dialog = CrashDialog(report, log_path=tmp_path / "longread.log")
    qtbot.addWidget(dialog)
    dialog._on_copy_clicked()
    from PySide6.QtWidgets import QApplication

    assert "ZeroDivisionError" in QApplication.clipboard().text()


def test_command_line_names_documents_and_a_model() -> None:
    args = _parse_args(["resources/sample/harbor-lease-dispute.md", "--model", "m.gguf", "-platform", "xcb"])
    assert args.paths == [Path("resources/sample/harbor-lease-dispute.md")]
    assert args.model == Path("m.gguf")
