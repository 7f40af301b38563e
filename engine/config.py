"""Paths and settings.

The data folder comes from platformdirs (``~/.local/share/longread`` on Linux) unless
``LONGREAD_HOME`` names another one. Everything Longread writes lives under it: the
SQLite store, KV snapshots, logs. Nothing is written next to the program.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from engine.errors import ConfigError
from engine.runtime.backend import KvType

APP_NAME = "longread"
DB_FILENAME = "longread.db"


def data_dir() -> Path:
    """Return the data folder, created if missing.

    Raises:
        ConfigError: the folder cannot be created or written.
    """
    override = os.environ.get("LONGREAD_HOME")
    path = Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Cannot create the data folder {path}: {exc.strerror}.") from exc
    return path


def db_path() -> Path:
    """Return the path of the SQLite store inside the data folder."""
    return data_dir() / DB_FILENAME


def default_threads() -> int:
    """Threads for llama.cpp: every core (llama-cpp-python's own default is half)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ReadSettings:
    """How a corpus is loaded into a model.

    ``n_ctx`` of 0 means "the smallest window that fits" (rounded up to 256).
    ``kv_type`` becomes a ``KvType`` (a string such as ``"q8_0"`` is accepted).
    ``wave_tokens``: the most tokens one wave of a read in waves takes; None (default)
    uses the model's measured reading span (``engine.probe.reading_span``) when it was
    probed at this KV type, else the whole window; 0 is always the whole window.
    ``assemble``: a corpus with no snapshot of its own is assembled from its documents'
    snapshots (engine/compose.py); False reads it fresh. An assembled corpus answers
    close to a fresh read, not always the same (docs/compose.md).

    Raises:
        ValueError: an unknown KV cache type (a bug in the caller).
    """

    n_ctx: int = 0
    kv_type: KvType = KvType.F16
    n_threads: int = 0
    n_batch: int = 512
    max_answer_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    wave_tokens: int | None = None
    assemble: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "kv_type", KvType(self.kv_type))

    def threads(self) -> int:
        """Return the thread count to use (0 means every core)."""
        return self.n_threads or default_threads()
