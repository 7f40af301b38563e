"""The runtime interface: what the engine above the runtime may ask of a model.

Everything above ``engine/runtime`` (reading, warm snapshots, the planner's calibration,
the facade) talks to a model through these protocols and never imports ``llama_cpp``.
Implementations:

- ``engine.runtime.llama.LlamaBackend``: llama.cpp in this process (the default).
- ``engine.runtime.fake.FakeBackend``: scripted replies and recorded prompts, for the
  fast tier of tests (in the spirit of simonw/llm's ``MockModel``).
- An OpenAI-compatible server backend will be the next one (issue 16).

The contract, whoever implements it:

- ``Backend.load_tokenizer(path)`` gives the vocabulary alone (fast, for exact counts);
  ``Backend.load_model(path, ...)`` gives a ``Model``: a tokenizer plus one sequence of
  context (``n_ctx`` tokens) with a KV cache of ``kv_type``.
- ``Model.prefill(tokens)`` makes the context hold exactly ``tokens``, evaluating only
  what it does not already hold (the longest common prefix is kept), in batches of
  ``n_batch``, calling ``on_progress`` after each and ``should_cancel`` before each:
  ``Cancelled`` leaves the context consistent up to the last finished batch.
- ``Model.generate`` streams text pieces after the context, greedy at temperature 0,
  stopping at end of generation, ``max_tokens`` or a full window; each generated token
  joins the context (``n_tokens`` grows).
- ``last_logits`` (the check logits of warm snapshots), ``save_sequence`` /
  ``load_sequence`` / ``clear`` (KV snapshots on disk). A backend that cannot save or
  restore raises ``GenerationError`` with the reason; the caller reads cold.
- A ``Model`` is not thread-safe: one thread at a time (the GUI gives it one lane).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class PrefillProgress:
    """Progress of a prefill: tokens done of total, speed and time left."""

    done: int
    total: int
    tokens_per_s: float
    eta_s: float
    reused: int = 0


@dataclass(frozen=True)
class PrefillStats:
    """What a prefill did: tokens evaluated now, tokens reused from the context, time."""

    evaluated: int
    reused: int
    seconds: float


ProgressFn = Callable[[PrefillProgress], None]
CancelFn = Callable[[], bool]


@runtime_checkable
class Tokenizer(Protocol):
    """A model's vocabulary and chat template."""

    path: Path

    @property
    def chat_template(self) -> str | None: ...

    @property
    def n_ctx_train(self) -> int: ...

    def tokenize_text(self, text: str) -> list[int]:
        """Document or user text: never special tokens, no BOS."""
        ...

    def tokenize_template(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Chat-template text, where special tokens are meant."""
        ...

    def detokenize(self, tokens: Sequence[int]) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class Model(Tokenizer, Protocol):
    """A tokenizer plus one sequence of context. One thread at a time."""

    kv_type: str
    n_threads: int

    @property
    def n_ctx(self) -> int: ...

    @property
    def n_batch(self) -> int: ...

    @property
    def n_vocab(self) -> int: ...

    @property
    def flash_attn(self) -> bool: ...

    @property
    def n_tokens(self) -> int:
        """How many tokens the context holds now."""
        ...

    @property
    def context_tokens(self) -> list[int]:
        """The tokens the context holds now, in order."""
        ...

    def prefill(
        self,
        tokens: Sequence[int],
        *,
        on_progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> PrefillStats: ...

    def generate(
        self,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        should_cancel: CancelFn | None = None,
    ) -> Iterator[str]: ...

    def last_logits(self) -> np.ndarray: ...

    def save_sequence(self, path: Path) -> int: ...

    def load_sequence(self, path: Path, *, max_tokens: int) -> list[int]: ...

    def clear(self) -> None: ...


class Backend(Protocol):
    """Loads tokenizers and models. ``name`` and ``version`` go into snapshot keys."""

    name: str
    version: str

    def load_tokenizer(self, path: Path) -> Tokenizer: ...

    def load_model(
        self,
        path: Path,
        *,
        n_ctx: int,
        kv_type: str = "f16",
        n_threads: int,
        n_batch: int = 512,
        swa_full: bool | None = None,
    ) -> Model: ...
