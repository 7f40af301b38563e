"""A scripted backend: no weights, no llama.cpp; for the fast tier of tests.

In the spirit of simonw/llm's ``MockModel`` and httpx's ``MockTransport``: the engine
above the runtime cannot tell it from llama.cpp, and a test can script what the model
says and read back what it was asked.

Contract:
- ``FakeBackend(replies=...)`` keeps a queue of scripted replies (``enqueue``); each
  ``generate`` streams the next one piece by piece, or ``DEFAULT_REPLY`` when the queue
  is empty. A reply may be a function of the prompt text. ``prompts`` records, for each
  ``generate``, the context it followed (text and token ids); ``loads`` records each
  ``load_model``.
- Tokenizing is deterministic and invertible: text splits into ``\\S+`` and ``\\s+``
  pieces and each distinct piece gets the next free id, in a vocabulary shared by every
  tokenizer and model of the backend (so counts and snapshots agree between them).
  ``detokenize(tokenize_text(t)) == t`` for every text. The special tokens
  (``SPECIAL_TOKENS``: a small ChatML set) are one id each through
  ``tokenize_template``; through ``tokenize_text`` they are ordinary text.
- ``FakeModel`` implements the whole ``Model`` protocol as ``LoadedModel`` does: prefill
  keeps the longest common prefix and evaluates the rest in batches of ``n_batch``,
  calling ``should_cancel`` before each batch and ``on_progress`` after it (a cancel
  leaves the context holding every finished batch); generate appends each streamed
  piece to the context and checks ``should_cancel`` before each; ``last_logits`` is a
  deterministic function of the context's tokens; ``save_sequence`` /
  ``load_sequence`` write and read the token list, so snapshot code runs unchanged.
- ``token_delay_s`` makes evaluating each token take that long (progress and ETAs look
  real); ``on_batch(done, total)`` runs after each prefill batch, so a test can cancel
  at an exact point.
- No file is read: ``inspect_model`` describes a tiny made-up model at any path.
- One thread at a time per model, like every ``Model``; ``enqueue`` may be called from
  another thread (the queue is a deque).
"""

from __future__ import annotations

import array
import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

import numpy as np

from engine.errors import Cancelled, GenerationError
from engine.models.gguf import ModelInfo
from engine.runtime.backend import (
    CancelFn,
    KvType,
    LoadSettings,
    OneAtATime,
    PrefillStats,
    ProgressFn,
    prefill_in_batches,
    read_range_file,
    write_range_file,
)

BOS: Final = "<|endoftext|>"
IM_START: Final = "<|im_start|>"
IM_END: Final = "<|im_end|>"
SPECIAL_TOKENS: Final = (BOS, IM_START, IM_END)
#: A small ChatML template (the shape SmolLM2's GGUF carries).
CHATML_TEMPLATE: Final = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
DEFAULT_REPLY: Final = "No scripted reply."
FAKE_VERSION: Final = "fake-1"
_MAGIC: Final = b"LRFAKEKV"
_RANGE_MAGIC: Final = b"LRFAKERG"
_PIECES = re.compile(r"\S+|\s+")

Reply = str | Callable[[str], str]


@dataclass(frozen=True)
class RecordedPrompt:
    """The context a ``generate`` followed: its text and its token ids."""

    text: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class RecordedLoad:
    """One ``load_model`` call."""

    path: Path
    settings: LoadSettings


class FakeVocabulary:
    """Pieces of text <-> ids, assigned on first sight; the special tokens come first.

    Args:
        n_vocab: the size of the id space (logits arrays have this length).
        special: the special tokens (ids 0, 1, ...).

    Raises (``encode``):
        GenerationError: more distinct pieces than ``n_vocab``.
    """

    def __init__(self, n_vocab: int, special: Sequence[str] = SPECIAL_TOKENS) -> None:
        if n_vocab <= len(special):
            raise ValueError("n_vocab must leave room beyond the special tokens")
        self.n_vocab = n_vocab
        self.special = tuple(special)
        self._pieces: list[str] = list(self.special)
        self._text_ids: dict[str, int] = {}
        self._special_ids = {s: i for i, s in enumerate(self.special)}
        self._split_special = re.compile("(" + "|".join(re.escape(s) for s in self.special) + ")")
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pieces)

    def special_id(self, token: str) -> int:
        return self._special_ids[token]

    def _text_id(self, piece: str) -> int:
        found = self._text_ids.get(piece)
        if found is not None:
            return found
        with self._lock:
            found = self._text_ids.get(piece)
            if found is None:
                if len(self._pieces) >= self.n_vocab:
                    raise GenerationError(f"The fake vocabulary is full ({self.n_vocab:,} pieces): raise n_vocab.")
                found = len(self._pieces)
                self._pieces.append(piece)
                self._text_ids[piece] = found
            return found

    def encode(self, text: str, *, special: bool) -> list[int]:
        """Ids of ``text``; with ``special``, the special tokens are one id each."""
        if not special:
            return [self._text_id(p) for p in _PIECES.findall(text)]
        ids: list[int] = []
        for part in self._split_special.split(text):
            if part in self._special_ids:
                ids.append(self._special_ids[part])
            elif part:
                ids.extend(self._text_id(p) for p in _PIECES.findall(part))
        return ids

    def decode(self, tokens: Iterable[int]) -> str:
        pieces = self._pieces
        try:
            return "".join(pieces[t] for t in tokens)
        except IndexError as exc:
            raise GenerationError(f"The fake vocabulary has no token {exc}.") from None

    def piece(self, token: int) -> str:
        return self._pieces[token]


class FakeTokenizer:
    """A fake model's vocabulary and chat template (``Tokenizer`` protocol)."""

    def __init__(self, backend: FakeBackend, path: Path) -> None:
        self.path = path
        self._backend = backend
        self._vocab = backend.vocabulary
        self.closed = False

    @property
    def chat_template(self) -> str | None:
        return self._backend.chat_template

    @property
    def n_ctx_train(self) -> int:
        return self._backend.n_ctx_train

    def tokenize_text(self, text: str) -> list[int]:
        """Document or user text: special-token strings stay text, no BOS."""
        return self._vocab.encode(text, special=False)

    def tokenize_template(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Chat-template text: each special token is one id."""
        ids = self._vocab.encode(text, special=True)
        return [self._vocab.special_id(BOS), *ids] if add_bos else ids

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._vocab.decode(tokens)

    def close(self) -> None:
        self.closed = True


class FakeModel(OneAtATime, FakeTokenizer):
    """A fake model with one sequence of context (``Model`` protocol). One thread at a time."""

    max_branches = 4  # written one at a time, but asked for side by side: the engine's path

    def __init__(
        self,
        backend: FakeBackend,
        path: Path,
        *,
        n_ctx: int,
        kv_type: KvType,
        n_threads: int,
        n_batch: int,
    ) -> None:
        super().__init__(backend, path)
        self.kv_type = kv_type
        self.n_threads = n_threads
        self._n_ctx = n_ctx
        self._n_batch = n_batch
        self._context: list[int] = []
        #: Every prefill's stats, in order (what a test checks prefix reuse with).
        self.prefills: list[PrefillStats] = []
        #: Every composition: (parts as (file name, offset), recomputed spans).
        self.compositions: list[tuple[tuple[tuple[str, int], ...], tuple[tuple[int, int], ...]]] = []
        self._composed = False

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    @property
    def n_batch(self) -> int:
        return self._n_batch

    @property
    def n_vocab(self) -> int:
        return self._vocab.n_vocab

    @property
    def flash_attn(self) -> bool:
        return self.kv_type.needs_flash_attn

    @property
    def runtime_version(self) -> str:
        return self._backend.version

    @property
    def n_tokens(self) -> int:
        return len(self._context)

    @property
    def context_tokens(self) -> list[int]:
        return list(self._context)

    def prefill(
        self,
        tokens: Sequence[int],
        *,
        on_progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> PrefillStats:
        """Make the context hold exactly ``tokens``, evaluating only what is not there.

        Raises:
            GenerationError: no tokens, or more than the window holds.
            Cancelled: ``should_cancel`` returned True before a batch.
        """
        reused = 0
        for have, want in zip(self._context, tokens, strict=False):
            if have != want:
                break
            reused += 1
        backend = self._backend

        def keep(n: int) -> None:
            del self._context[n:]

        def evaluate(batch: Sequence[int]) -> None:
            if backend.token_delay_s > 0:
                time.sleep(backend.token_delay_s * len(batch))
            self._context.extend(int(t) for t in batch)
            if backend.on_batch is not None:
                backend.on_batch(len(self._context), len(tokens))

        stats = prefill_in_batches(
            tokens,
            reused=reused,
            n_ctx=self._n_ctx,
            n_batch=self._n_batch,
            keep=keep,
            evaluate=evaluate,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )
        self.prefills.append(stats)
        return stats

    def generate(
        self,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        should_cancel: CancelFn | None = None,
    ) -> Iterator[str]:
        """Stream the next scripted reply, one piece (token) at a time.

        The prompt is recorded when the first piece is asked for. Stops at the reply's
        end, at ``max_tokens`` or when the window is full.

        Raises:
            Cancelled: ``should_cancel`` returned True before a piece.
        """
        context = tuple(self._context)
        prompt = RecordedPrompt(self._vocab.decode(context), context)
        self._backend.prompts.append(prompt)
        reply = self._backend.next_reply(prompt.text)
        for token in self._vocab.encode(reply, special=False)[:max_tokens]:
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            if len(self._context) >= self._n_ctx:
                break
            if self._backend.token_delay_s > 0:
                time.sleep(self._backend.token_delay_s)
            self._context.append(token)
            yield self._vocab.piece(token)

    def last_logits(self) -> np.ndarray:
        """Logits after the last token: a deterministic function of the context (of its
        last ``backend.logits_window`` tokens when set). After a composition,
        ``backend.compose_noise`` is added (a composition gone wrong, for tests)."""
        window = self._backend.logits_window
        seen = self._context[-window:] if window else self._context
        digest = hashlib.sha256(array.array("i", seen).tobytes()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        logits = rng.standard_normal(self._vocab.n_vocab).astype(np.float32)
        if self._composed and self._backend.compose_noise > 0:
            noise = np.random.default_rng(len(self._context)).standard_normal(self._vocab.n_vocab)
            logits = logits + (self._backend.compose_noise * noise).astype(np.float32)
        return logits

    def logits_after_each(self, tokens: Sequence[int]) -> np.ndarray:
        """Append ``tokens`` and return ``last_logits`` after each, in order."""
        rows = []
        for token in tokens:
            self._context.append(int(token))
            rows.append(self.last_logits())
        return np.stack(rows)

    def save_sequence(self, path: Path) -> int:
        """Write the context's tokens to ``path``.

        Returns:
            bytes written.

        Raises:
            GenerationError: the file cannot be written.
        """
        return write_range_file(path, _MAGIC, 0, self._context)

    def load_sequence(self, path: Path, *, max_tokens: int) -> list[int]:
        """Replace the context with the tokens saved in ``path``; on failure it is empty.

        Raises:
            GenerationError: unreadable, not a fake snapshot, more than ``max_tokens``
                tokens or more than the window.
        """
        self.clear()
        _, tokens, _ = read_range_file(path, _MAGIC)
        if not tokens or len(tokens) > max_tokens or len(tokens) > self._n_ctx:
            raise GenerationError(f"Could not load the snapshot {path}: {len(tokens):,} tokens do not fit.")
        self._context = tokens
        return list(tokens)

    def clear(self) -> None:
        self._context = []
        self._composed = False

    @property
    def can_shift(self) -> str | None:
        if self._backend.shift_refusal is not None:
            return self._backend.shift_refusal
        if self.kv_type is not KvType.F16:
            return f"its K cache is quantized ({self.kv_type}): moving it re-quantizes every key"
        return None

    def save_range(self, path: Path, start: int, end: int) -> int:
        """Write context positions ``[start, end)``: their tokens and where they were.

        Raises:
            GenerationError: the context does not hold them, or the file cannot be written.
        """
        if not 0 <= start < end <= len(self._context):
            raise GenerationError(f"The context does not hold positions {start:,} to {end:,}.")
        return write_range_file(path, _RANGE_MAGIC, start, self._context[start:end])

    def compose(
        self,
        parts: Sequence[tuple[Path, int]],
        *,
        tokens: Sequence[int],
        recompute: Sequence[tuple[int, int]],
    ) -> PrefillStats:
        """Make the context hold ``tokens`` from ``save_range`` files moved to new offsets.

        Raises:
            GenerationError: a file unreadable or holding other tokens than ``tokens`` at
                its offset, a position covered by nothing, or ``can_shift`` refuses a
                move; the context is then empty.
        """
        start_t = time.perf_counter()
        covered = [False] * len(tokens)
        self.clear()
        for path, at in parts:
            start, saved, _ = read_range_file(path, _RANGE_MAGIC)
            count = min(len(saved), len(tokens) - at)  # a range going on past ``tokens``: its first cells
            if count <= 0 or list(saved[:count]) != list(tokens[at : at + count]):
                raise GenerationError(f"The snapshot {path.name} holds other tokens than the corpus at {at:,}.")
            if start != at and (why := self.can_shift) is not None:
                raise GenerationError(f"Documents cannot be moved in this model's cache: {why}.")
            covered[at : at + count] = [True] * count
        evaluated = 0
        for a, b in recompute:
            if not 0 <= a <= b <= len(tokens):
                raise GenerationError(f"Positions {a:,} to {b:,} are not in the context.")
            covered[a:b] = [True] * (b - a)
            evaluated += b - a
        if not all(covered):
            raise GenerationError("Some positions of the corpus are in no document snapshot.")
        if self._backend.token_delay_s > 0:
            time.sleep(self._backend.token_delay_s * evaluated)
        self._context = [int(t) for t in tokens]
        self._composed = True
        self.compositions.append((tuple((p.name, at) for p, at in parts), tuple((a, b) for a, b in recompute)))
        return PrefillStats(evaluated=evaluated, reused=len(tokens) - evaluated, seconds=time.perf_counter() - start_t)


class FakeBackend:
    """Scripted replies and recorded prompts behind the ``Backend`` protocol.

    Args:
        replies: the first scripted replies, in order (more with ``enqueue``).
        chat_template: the template models report (default: ChatML; None for the plain
            prompt format).
        n_ctx_train: the trained window models report.
        n_vocab: the size of the id space.
        token_delay_s: seconds each evaluated or generated token takes.
        on_batch: called with (done, total) after each prefill batch.
    """

    name = "fake"
    version = FAKE_VERSION

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        chat_template: str | None = CHATML_TEMPLATE,
        n_ctx_train: int = 8192,
        n_vocab: int = 32768,
        token_delay_s: float = 0.0,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.chat_template = chat_template
        self.n_ctx_train = n_ctx_train
        self.token_delay_s = token_delay_s
        self.on_batch = on_batch
        #: Logits depend on the context's last this many tokens (None: all of it).
        self.logits_window: int | None = None
        #: Noise added to logits after a composition (a broken composition, for tests).
        self.compose_noise = 0.0
        #: A reason every model gives for not moving cached positions (None: they can).
        self.shift_refusal: str | None = None
        self.vocabulary = FakeVocabulary(n_vocab)
        self.replies: deque[Reply] = deque(replies)
        self.prompts: list[RecordedPrompt] = []
        self.loads: list[RecordedLoad] = []
        self.models: list[FakeModel] = []

    def enqueue(self, *replies: Reply) -> None:
        """Add scripted replies; each ``generate`` takes the next one."""
        self.replies.extend(replies)

    def next_reply(self, prompt_text: str) -> str:
        """The reply the next ``generate`` streams (``DEFAULT_REPLY`` when none is left)."""
        try:
            reply = self.replies.popleft()
        except IndexError:
            return DEFAULT_REPLY
        return reply(prompt_text) if callable(reply) else reply

    def inspect_model(self, path: Path) -> ModelInfo:
        """A tiny made-up model at ``path`` (nothing is read): 2 layers, f16 weights of 1 MB."""
        return ModelInfo(
            path=path,
            file_size=1_000_000,
            architecture="fake",
            name="Fake model",
            parameter_count=500_000,
            file_type="F16",
            context_length=self.n_ctx_train,
            n_layers=2,
            n_head=2,
            n_head_kv=(1, 1),
            key_length=16,
            value_length=16,
            embedding_length=32,
            sliding_window=None,
            sliding_window_pattern=None,
            chat_template=self.chat_template,
            vocab_size=self.vocabulary.n_vocab,
            bos_token_id=0,
            eos_token_id=0,
            rope_scaling=None,
            metadata=MappingProxyType({}),
            tensor_bytes=1_000_000,
            feed_forward_length=64,
        )

    def load_tokenizer(self, path: Path) -> FakeTokenizer:
        return FakeTokenizer(self, path)

    def describe_system(self) -> str:
        return "a scripted fake runtime (no weights)"

    def load_model(self, path: Path, settings: LoadSettings) -> FakeModel:
        """A fake model as ``settings`` say (the window, KV type, threads and batch)."""
        self.loads.append(RecordedLoad(path, settings))
        model = FakeModel(
            self,
            path,
            n_ctx=settings.n_ctx,
            kv_type=settings.kv_type,
            n_threads=settings.n_threads,
            n_batch=settings.n_batch,
        )
        self.models.append(model)
        return model
