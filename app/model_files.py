"""The GGUF files the model picker offers, each checked: the bundled model, the files the
user added, the current one, and those found in other apps' folders (LM Studio, GPT4All,
the Hugging Face cache).

``check_model`` reads a file's header for the picker's line (raising ``ModelFileError``
for a file that is not a model); ``list_models`` checks every candidate and keeps the
reason next to one that cannot be used. Both read files, so they run off the main thread
(the window's disk lane for the list, the model lane for a model being chosen). Qt-free
apart from the picker's ``ModelEntry`` value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication

from app.views.model_picker import ModelEntry, summarize_model
from engine.errors import EngineError
from engine.models.discover import DiscoveredModel
from engine.models.gguf import inspect_gguf

Discover = Callable[[], Sequence[DiscoveredModel]]


def check_model(path: Path, source: str) -> ModelEntry:
    """The picker's entry for a model file.

    Raises:
        ModelFileError: not a GGUF model Longread can read (the message names the file).
    """
    return ModelEntry(path, source, summarize_model(inspect_gguf(path)))


def list_models(*, bundled: Path, added: Sequence[Path], current: Path, discover: Discover) -> list[ModelEntry]:
    """Every model to offer, in the picker's order; one that cannot be used says why."""
    candidates: list[tuple[Path, str]] = [(bundled, "bundled"), *((p, "added") for p in added)]
    if current not in [path for path, _ in candidates]:
        candidates.append((current, "added"))
    candidates += [(m.path, m.source) for m in discover()]
    entries = []
    for path, source in candidates:
        try:
            entries.append(check_model(path, source))
        except EngineError as exc:
            entries.append(ModelEntry(path, source, problem=exc.message))
        except OSError as exc:
            entries.append(
                ModelEntry(
                    path,
                    source,
                    problem=QCoreApplication.translate("ModelPicker", "cannot be read ({reason})").format(
                        reason=exc.strerror
                    ),
                )
            )
    return entries
