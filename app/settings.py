"""Settings kept between runs (QSettings): window, KV cache type, threads, data folder,
the window's language, the chosen model and the GGUF files the user added.

The data folder is honoured by the engine through ``LONGREAD_HOME``, set by
``app.main`` before anything opens the store; a change takes effect at the next start.
Tests pass a ``QSettings`` backed by a file in a temporary folder.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QSettings

from engine.config import ReadSettings
from engine.reading.waves import DEFAULT_WAVE_MODE, WaveMode
from engine.runtime.backend import KvType


class AppSettings:
    """Typed access to the QSettings the app keeps."""

    def __init__(self, qsettings: QSettings) -> None:
        self._q = qsettings

    def _int(self, key: str, default: int) -> int:
        value: Any = self._q.value(key, default)
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    @property
    def n_ctx(self) -> int:
        """The window in tokens; 0 = what the corpus needs."""
        return self._int("read/n_ctx", 0)

    @n_ctx.setter
    def n_ctx(self, value: int) -> None:
        self._q.setValue("read/n_ctx", int(value))

    @property
    def kv_type(self) -> KvType:
        """The KV cache type; a value this version does not know reads as f16."""
        try:
            return KvType(str(self._q.value("read/kv_type", KvType.F16.value)))
        except ValueError:
            return KvType.F16

    @kv_type.setter
    def kv_type(self, value: str) -> None:
        self._q.setValue("read/kv_type", KvType(value).value)

    @property
    def wave_mode(self) -> WaveMode:
        """How Read in waves shares notes: carry them onward, or map (none carried, then
        one pass over them all); a value this version does not know reads as the default."""
        try:
            return WaveMode(str(self._q.value("read/wave_mode", DEFAULT_WAVE_MODE.value)))
        except ValueError:
            return DEFAULT_WAVE_MODE

    @wave_mode.setter
    def wave_mode(self, value: str) -> None:
        self._q.setValue("read/wave_mode", WaveMode(value).value)

    @property
    def n_threads(self) -> int:
        """Threads for llama.cpp; 0 = every core."""
        return self._int("read/n_threads", 0)

    @n_threads.setter
    def n_threads(self, value: int) -> None:
        self._q.setValue("read/n_threads", int(value))

    @property
    def assemble(self) -> bool:
        """Whether a changed corpus is assembled from its documents' snapshots (faster;
        answers close to a fresh read, not always the same: docs/compose.md) or read fresh."""
        value: Any = self._q.value("read/assemble", True)
        return value not in (False, "false", "0", 0)

    @assemble.setter
    def assemble(self, value: bool) -> None:
        self._q.setValue("read/assemble", bool(value))

    @property
    def data_dir(self) -> str:
        """The data folder chosen by the user ('' = the default)."""
        return str(self._q.value("paths/data_dir", "") or "")

    @data_dir.setter
    def data_dir(self, value: str) -> None:
        self._q.setValue("paths/data_dir", value)

    @property
    def language(self) -> str:
        """The window's language code (``"ru"``, ``"en"``); '' = the system's. Read at start."""
        return str(self._q.value("ui/language", "") or "")

    @language.setter
    def language(self, value: str) -> None:
        self._q.setValue("ui/language", value)

    @property
    def model_path(self) -> str:
        return str(self._q.value("model/path", "") or "")

    @model_path.setter
    def model_path(self, value: str) -> None:
        self._q.setValue("model/path", value)

    @property
    def server_url(self) -> str:
        """An inference server to read through ('' = the local model); its API key is never
        kept here (engine/server_config.py: environment or system keyring)."""
        return str(self._q.value("server/url", "") or "")

    @server_url.setter
    def server_url(self, value: str) -> None:
        self._q.setValue("server/url", value.strip())

    @property
    def server_model(self) -> str:
        """The model's name on the server ('' = the first it serves)."""
        return str(self._q.value("server/model", "") or "")

    @server_model.setter
    def server_model(self, value: str) -> None:
        self._q.setValue("server/model", value.strip())

    @property
    def added_models(self) -> list[str]:
        value: Any = self._q.value("model/added", [])
        if isinstance(value, str):
            return [value] if value else []
        return [str(v) for v in (value or [])]

    def add_model(self, path: str) -> None:
        models = self.added_models
        if path not in models:
            self._q.setValue("model/added", [*models, path])

    def read_settings(self, base: ReadSettings | None = None) -> ReadSettings:
        """``base`` (default: the engine's defaults) with the window, KV type, threads and
        whether to assemble kept here; what the app does not set (answer budget, batch) stays ``base``'s."""
        return replace(
            base or ReadSettings(),
            n_ctx=self.n_ctx,
            kv_type=self.kv_type,
            n_threads=self.n_threads,
            assemble=self.assemble,
        )

    def sync(self) -> None:
        self._q.sync()
