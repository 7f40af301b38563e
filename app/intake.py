"""What a drop or the file dialog brings in: model files, and the documents to read.

``split_models`` separates ``.gguf`` files (each becomes the model) from the rest;
``collect_documents`` turns each dropped file or folder into the document files to read,
or into the message its own row shows when it gives none. It reads folder listings, so it
runs off the main thread (the window's disk lane). Qt-free but for translating its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QCoreApplication

from engine.errors import IngestError
from engine.ingest import collect_files


@dataclass(frozen=True)
class Dropped:
    """One dropped path: the document files found in it, or why there are none."""

    path: Path
    files: list[Path] = field(default_factory=list)
    error: str = ""  # for the path's own row in the corpus panel
    skipped: int = 0  # files in a folder that are not documents Longread reads


def split_models(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The ``.gguf`` files among ``paths`` and the other paths, each in the order given."""
    models = [p for p in paths if p.suffix.lower() == ".gguf"]
    return models, [p for p in paths if p.suffix.lower() != ".gguf"]


def collect_documents(paths: Sequence[Path]) -> list[Dropped]:
    """Each path's document files (a folder's in reading order), or its error."""
    out: list[Dropped] = []
    for path in paths:
        try:
            found = collect_files([path])
        except IngestError as exc:
            out.append(Dropped(path, error=exc.message))
            continue
        if not found.files and path.is_dir():
            message = QCoreApplication.translate(
                "intake", "{name}: no documents Longread reads in this folder."
            ).format(name=path.name)
            out.append(Dropped(path, error=message, skipped=len(found.skipped)))
            continue
        out.append(Dropped(path, list(found.files), skipped=len(found.skipped)))
    return out
