"""The model holder: one model, loaded lazily at the window a read needs.

Contract:
- ``ModelLane`` loads the model through its ``Backend`` (engine/runtime/backend.py) once,
  at the window a read needs, and keeps it while the window and KV type still fit (a
  borrowed model is used, never closed). Sliding-window models load with ``swa_full``:
  readers roll the context back to the corpus prefix, which a truncated window would
  silently spoil (docs/architecture.md, "Measured facts").
- Every load is checked first: ``ensure`` builds the ``LoadSettings``, has the planner's
  pure check (``engine.planning.check_load``) weigh them against the memory free now,
  and passes the checked settings to ``Backend.load_model``; a load that would not fit
  raises ``PlanRefused`` with the numbers before the runtime sees it.
- Counting tokens needs no weights: ``tokenizer()`` loads the vocabulary alone until a
  model is loaded, then answers from the model. Model facts (``info``) come from the
  backend, read once.
- This module is the one place above ``engine/runtime`` that names llama.cpp's backend
  (``default_backend``), imported on first use.
- A ``RemoteBackend`` (a model on a server, issue 16) has no file and no local memory:
  ``model_sha`` asks the backend what identifies the model, and ``ensure`` skips the
  planner's memory check (the server refuses a window it cannot hold itself).
- One thread at a time, like every ``Model``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.config import ReadSettings
from engine.machine import read_available_memory
from engine.models.bundled import model_sha256
from engine.models.gguf import ModelInfo
from engine.planning import check_load
from engine.runtime.backend import Backend, KvType, LoadSettings, Model, RemoteBackend, Tokenizer, align_ctx
from engine.warm import common_prefix


def default_backend() -> Backend:
    """llama.cpp in this process (imported on first use: counting alone needs no weights)."""
    from engine.runtime.llama import LlamaBackend  # the one importer of the runtime above it

    return LlamaBackend()


class ModelLane:
    """The model a read uses, loaded lazily at the window it needs.

    Args:
        model_path: the GGUF file.
        settings: KV type, threads, batch size, temperature, seed.
        model: an already loaded model to use while it fits (never closed here).
        backend: the runtime (default: llama.cpp in this process).
        available_memory: reads the memory free now, for each load's check (tests
            pass a fixed figure).
    """

    def __init__(
        self,
        model_path: Path,
        settings: ReadSettings,
        *,
        model: Model | None = None,
        backend: Backend | None = None,
        available_memory: Callable[[], int | None] = read_available_memory,
    ) -> None:
        self.backend: Backend = backend if backend is not None else default_backend()
        self._available_memory = available_memory
        self.model_path = model_path
        self.settings = settings
        self._model = model
        self._borrowed = model is not None
        self._tokenizer: Tokenizer | None = None
        self._info: ModelInfo | None = None
        #: The corpus last assembled into the model's context from document snapshots
        #: (issue 17) and where its instructions end: past them its cells are not a cold
        #: read's (``holds_assembled``).
        self.assembled: tuple[int, list[int]] | None = None

    def holds_assembled(self, model: Model) -> bool:
        """Whether ``model``'s context holds cells of the corpus last assembled into it
        past its instructions (theirs are exact: the same tokens, first)."""
        if self.assembled is None:
            return False
        head, tokens = self.assembled
        if common_prefix(model.context_tokens, tokens) > head:
            return True
        self.assembled = None  # read over since, or another model
        return False

    def drop_assembled(self, model: Model) -> None:
        """Empty the context if it holds assembled cells (an ask that must not reuse them:
        read fresh, or the setting not to assemble). Deep thinking and waves need not:
        their prompts open with their own instructions, so they share no document's cells
        with an ask's (a think after an assembled ask reuses 0 tokens)."""
        if self.holds_assembled(model):
            model.clear()
            self.assembled = None

    @property
    def model(self) -> Model | None:
        """The loaded model, if one is."""
        return self._model

    @property
    def info(self) -> ModelInfo:
        """The model file's header (layers, KV heads, sliding window), read once."""
        if self._info is None:
            self._info = self.backend.inspect_model(self.model_path)
        return self._info

    @property
    def model_sha(self) -> str:
        """What identifies the model: its file's sha256, or the server's model's digest."""
        if isinstance(self.backend, RemoteBackend):
            return self.backend.model_sha256(self.model_path)
        return model_sha256(self.model_path)

    @property
    def swa_full(self) -> bool:
        """Whether the model loads with a full-size sliding-window cache (engine/reading/ask.py)."""
        return self.info.n_sliding_layers > 0

    def tokenizer(self) -> Tokenizer:
        """The loaded model if any, else the vocabulary alone (fast)."""
        if self._model is not None:
            return self._model
        if self._tokenizer is None:
            self._tokenizer = self.backend.load_tokenizer(self.model_path)
        return self._tokenizer

    def full_window(self) -> int:
        """The window to read with: the settings' if set, else the model's trained length."""
        if self.settings.n_ctx:
            return align_ctx(self.settings.n_ctx)
        return align_ctx(self.tokenizer().n_ctx_train)

    def ensure(self, n_ctx: int, kv_type: str) -> Model:
        """Return a model with at least ``n_ctx`` tokens of window and this KV type.

        Raises:
            PlanRefused: the load would not fit in the memory free now (the numbers and
                the ways out are in the message); nothing was loaded.
            ModelFileError, ModelError: the backend could not load the model.
        """
        model = self._model
        if model is not None and model.n_ctx >= n_ctx and model.kv_type == kv_type:
            return model
        if model is not None and not self._borrowed:
            model.close()
        self._model = None
        self._borrowed = False
        s = self.settings
        wanted = LoadSettings(
            n_ctx=n_ctx,
            kv_type=KvType(kv_type),
            n_threads=s.threads(),
            n_batch=s.n_batch,
            swa_full=True if self.swa_full else None,
        )
        if isinstance(self.backend, RemoteBackend):
            checked = wanted  # the server's memory, not this machine's: it refuses what it cannot hold
        else:
            checked = check_load(self.info, wanted, available_bytes=self._available_memory())
        self._model = self.backend.load_model(self.model_path, checked)
        if self._tokenizer is not None:
            self._tokenizer.close()
            self._tokenizer = None
        return self._model

    def close(self) -> None:
        """Free what this lane loaded (a borrowed model stays open)."""
        if self._model is not None and not self._borrowed:
            self._model.close()
        if self._tokenizer is not None:
            self._tokenizer.close()
        self._model = self._tokenizer = None
