"""Real main windows over a temporary store and settings file.

Two tiers, one window: ``make_window`` builds windows whose ``Library`` reads with the
fake backend (``engine/runtime/fake.py``: scripted replies, recorded prompts), so the
window's wiring is tested in seconds; ``make_real_window`` builds them over the real
bundled SmolLM2 (those tests are ``slow``: they take the ``smollm2_path`` fixture). Either
way the window gets a ``library_factory`` as ``app.main`` gives it one, and tests may pass
their own. The model path is SmolLM2's file in both: the window reads its GGUF header (a
few kilobytes, no weights) for the picker; the fake tier never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402

from app.settings import AppSettings  # noqa: E402
from app.views.main_window import MainWindow  # noqa: E402
from engine.config import ReadSettings  # noqa: E402
from engine.library import Library  # noqa: E402
from engine.models.bundled import bundled_model_path  # noqa: E402

WindowMaker = Callable[..., MainWindow]


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


def library_factory(
    db: Path,
    *,
    backend: Any = None,
    max_answer_tokens: int = 24,
    n_batch: int = 128,
    make: Callable[..., Library] = Library,
) -> Callable[[], Library]:
    """Libraries (``make``'s) over the store ``db`` with a short answer budget and small
    prefill batches (the window sets the model, the window size, the KV type, the threads)."""
    settings = ReadSettings(max_answer_tokens=max_answer_tokens, n_batch=n_batch)
    return lambda: make(db, backend=backend, settings=settings)


@pytest.fixture
def fake_backend() -> Any:
    """A scripted backend (``enqueue`` replies, read ``prompts``), shared by every library
    of the test so that token ids agree between the lanes and between windows."""
    from engine.runtime.fake import FakeBackend

    return FakeBackend()


@pytest.fixture
def _windows(qtbot, home: Path, app_settings: AppSettings) -> Iterator[WindowMaker]:
    windows: list[MainWindow] = []

    def make(**kwargs: Any) -> MainWindow:
        kwargs.setdefault("discover", lambda: [])
        kwargs.setdefault("data_folder", home)
        kwargs.setdefault("bundled_model", bundled_model_path())
        window = MainWindow(settings=app_settings, **kwargs)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.shutdown()


@pytest.fixture
def make_window(_windows: WindowMaker, home: Path, fake_backend: Any) -> WindowMaker:
    """Windows reading with ``fake_backend`` (unless given another ``library_factory``)."""

    def make(**kwargs: Any) -> MainWindow:
        kwargs.setdefault("library_factory", library_factory(home / "longread.db", backend=fake_backend))
        return _windows(**kwargs)

    return make


@pytest.fixture
def make_real_window(_windows: WindowMaker, home: Path, smollm2_path: Path) -> WindowMaker:
    """Windows reading with the real SmolLM2 through llama.cpp (tests marked ``slow``)."""

    def make(**kwargs: Any) -> MainWindow:
        kwargs.setdefault("library_factory", library_factory(home / "longread.db"))
        kwargs.setdefault("bundled_model", smollm2_path)
        return _windows(**kwargs)

    return make
