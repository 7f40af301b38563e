"""A real main window over a temporary store and settings file, reading with the real
bundled SmolLM2 (tests pick a small answer budget and batch so each runs in seconds)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402

from app.settings import AppSettings  # noqa: E402
from app.views.main_window import MainWindow  # noqa: E402
from engine.config import ReadSettings  # noqa: E402
from engine.reading.ask import Reader  # noqa: E402
from engine.store import Store  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The offscreen platform warns that it cannot resize windows to their size hints:
    # a limit of the test platform, not of the app.
    for item in items:
        if "tests/app/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"))


@pytest.fixture
def app_settings(tmp_path: Path) -> AppSettings:
    """Settings in an ini file of this test (never the user's own)."""
    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


def small_reader(*, max_answer_tokens: int = 24, n_batch: int = 128) -> Callable[[Store, Path, ReadSettings], Reader]:
    """A reader factory with a short answer budget and small prefill batches."""

    def make(store: Store, path: Path, settings: ReadSettings) -> Reader:
        return Reader(store, path, replace(settings, max_answer_tokens=max_answer_tokens, n_batch=n_batch))

    return make


@pytest.fixture
def make_window(
    qtbot, home: Path, smollm2_path: Path, app_settings: AppSettings
) -> Iterator[Callable[..., MainWindow]]:
    windows: list[MainWindow] = []

    def make(**kwargs: object) -> MainWindow:
        kwargs.setdefault("reader_factory", small_reader())
        kwargs.setdefault("discover", lambda: [])
        window = MainWindow(
            db_path=home / "longread.db", bundled_model=smollm2_path, settings=app_settings, **kwargs  # type: ignore[arg-type]
        )
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()
