"""Find the GGUF models a user already has, in the folders other local-LLM apps use.

Contract:
- ``model_folders(home=..., env=..., platform=...)`` lists the folders to look in, in
  order: Longread's own (``<data folder>/models``, where ``longread models get`` puts
  downloads: ``$LONGREAD_HOME/models``, or the platform's data folder when no ``home`` is
  given), LM Studio (``~/.lmstudio/models``, ``~/.cache/lm-studio/models``), GPT4All
  (``~/.local/share/nomic.ai/GPT4All``, ``~/Library/Application Support/nomic.ai/GPT4All``
  on macOS, ``%LOCALAPPDATA%\\nomic.ai\\GPT4All`` on Windows) and the Hugging Face hub
  cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``).
- ``discover_models(...)`` walks those folders (following the symlinks the Hugging Face
  cache is made of) and returns each GGUF language model once, by resolved path. Vision
  projectors (``mmproj``) and the later parts of split models (``-00002-of-00003``) are
  left out: they are not models a user can choose on their own.
- Nothing here opens a model: describing one (architecture, trained context) is
  ``engine.models.gguf.inspect_gguf``'s job. Unreadable folders are skipped silently:
  a permission problem in someone else's cache is not the user's error.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# Split GGUF files: "model-00001-of-00003.gguf". Only the first part is a model to pick.
_SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
# How deep to walk below a model folder (LM Studio: publisher/model/file.gguf; HF:
# models--org--name/snapshots/<rev>/sub/file.gguf).
_MAX_DEPTH = 6


@dataclass(frozen=True)
class ModelFolder:
    """A folder where an app keeps GGUF models, and which app it belongs to."""

    source: str
    path: Path


@dataclass(frozen=True)
class DiscoveredModel:
    """A GGUF file found on disk: where, which app it came from, and its size."""

    path: Path
    source: str
    size_bytes: int

    @property
    def name(self) -> str:
        return self.path.name


def model_folders(
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> list[ModelFolder]:
    """Return the folders where LM Studio, GPT4All and the Hugging Face cache keep models.

    Args:
        home: the user's home folder (default: ``Path.home()``).
        env: environment variables (default: ``os.environ``).
        platform: ``sys.platform`` value (default: this machine's).

    Returns:
        the candidate folders, existing or not, without duplicates.
    """
    own = _own_models_folder(home=home, env=env if env is not None else os.environ)
    home = home if home is not None else Path.home()
    env = env if env is not None else os.environ
    platform = platform or sys.platform
    folders = [ModelFolder("Longread", own)] if own is not None else []
    folders += [
        ModelFolder("LM Studio", home / ".lmstudio" / "models"),
        ModelFolder("LM Studio", home / ".cache" / "lm-studio" / "models"),
    ]
    if platform == "darwin":
        folders.append(ModelFolder("GPT4All", home / "Library" / "Application Support" / "nomic.ai" / "GPT4All"))
    elif platform.startswith("win"):
        local = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
        folders.append(ModelFolder("GPT4All", local / "nomic.ai" / "GPT4All"))
    else:
        data_home = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        folders.append(ModelFolder("GPT4All", data_home / "nomic.ai" / "GPT4All"))
    if env.get("HF_HUB_CACHE"):
        hub = Path(env["HF_HUB_CACHE"])
    elif env.get("HF_HOME"):
        hub = Path(env["HF_HOME"]) / "hub"
    else:
        cache_home = Path(env.get("XDG_CACHE_HOME") or home / ".cache")
        hub = cache_home / "huggingface" / "hub"
    folders.append(ModelFolder("Hugging Face", hub))
    unique: list[ModelFolder] = []
    for folder in folders:
        if all(folder.path != seen.path for seen in unique):
            unique.append(folder)
    return unique


def _own_models_folder(*, home: Path | None, env: Mapping[str, str]) -> Path | None:
    """Longread's downloads (engine.models.hub.models_dir), without creating the folder.
    A caller that names ``home`` (a test) gets it only through ``LONGREAD_HOME``."""
    if env.get("LONGREAD_HOME"):
        return Path(env["LONGREAD_HOME"]).expanduser() / "models"
    if home is not None:
        return None
    import platformdirs

    from engine.config import APP_NAME

    return Path(platformdirs.user_data_dir(APP_NAME)) / "models"


def discover_models(
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
) -> list[DiscoveredModel]:
    """Find the GGUF models in the usual folders (see ``model_folders``).

    Args:
        home: the user's home folder (default: ``Path.home()``).
        env: environment variables (default: ``os.environ``).
        platform: ``sys.platform`` value (default: this machine's).

    Returns:
        one entry per distinct model file (by resolved path), folder by folder, each
        folder's files in name order.
    """
    found: list[DiscoveredModel] = []
    seen: set[Path] = set()
    for folder in model_folders(home=home, env=env, platform=platform):
        for path in _walk_gguf(folder.path, depth=0):
            try:
                resolved = path.resolve(strict=True)
                size = resolved.stat().st_size
            except OSError:
                continue  # a dangling symlink in a half-downloaded cache
            if resolved in seen or size == 0:
                continue
            seen.add(resolved)
            found.append(DiscoveredModel(path=path, source=folder.source, size_bytes=size))
    return found


def is_model_file(path: Path) -> bool:
    """Whether ``path`` names a GGUF that is a model on its own (not a projector or a later part)."""
    name = path.name.lower()
    if not name.endswith(".gguf") or name.startswith("."):
        return False
    if "mmproj" in name:
        return False
    split = _SPLIT_PART.search(name)
    return split is None or int(split.group(1)) == 1


def _walk_gguf(folder: Path, *, depth: int) -> Iterator[Path]:
    """Yield model files under ``folder`` in name order, following symlinks to files."""
    if depth > _MAX_DEPTH:
        return
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name.lower())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name == "blobs":
            # HF's blobs/ holds the same files as snapshots/, under hash names.
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                yield from _walk_gguf(entry, depth=depth + 1)
            elif is_model_file(entry) and entry.is_file():
                yield entry
        except OSError:
            continue
