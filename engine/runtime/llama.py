"""The local llama.cpp runtime: load, tokenize, prefill, generate. The only importer of
``llama_cpp``.

Contract:
- ``load_tokenizer`` loads only the vocabulary (fast) for exact token counts.
- ``load_model(path, settings)`` loads weights and a context as ``LoadSettings`` say:
  ``n_ctx`` tokens, the K and V cache type (flash attention on when the V cache is
  quantized, which llama.cpp requires, off for f16, which is faster on CPUs: docs/architecture.md),
  threads for both prefill and generation. It does not check memory: the planner did
  (``engine.planning.check_load`` in ``ModelLane.ensure``); this module imports
  nothing above the runtime interface.
- ``LoadedModel.prefill`` evaluates a token list in batches, reusing the longest prefix
  already in the context, reporting progress after each batch and honouring a cancel
  between batches: a cancel takes effect within one batch and leaves the cache
  consistent up to the last finished batch.
- ``LoadedModel.generate`` streams text piece by piece, greedy when temperature is 0.
- A ``LoadedModel`` is not thread-safe: one thread at a time (the GUI gives it one lane).
- llama.cpp's log goes to the ``longread.llama`` logger, never straight to the terminal.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import dataclasses
import io
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import llama_cpp
import numpy as np

from engine.errors import Cancelled, GenerationError, ModelError, ModelFileError
from engine.models.gguf import ModelInfo, inspect_gguf
from engine.runtime import kvstate
from engine.runtime.backend import (
    Branches,
    CancelFn,
    EndFn,
    KvType,
    LoadSettings,
    PrefillStats,
    ProgressFn,
    branches_one_by_one,
    prefill_in_batches,
    read_range_file,
    write_range_file,
)

log = logging.getLogger("longread.llama")
_RANGE_MAGIC = b"LRKVRNG1"
#: The sequence ``LoadedModel.compose`` loads saved cells into before handing them to 0.
_STAGING_SEQ = 1
#: Continuations written side by side (``generate_branches``: a wave's notes, one per part
#: of the question, engine/reading/notes.py's MAX_QUESTION_PARTS), each in its own
#: sequence; compose's staging sequence is one of them (it is empty between compositions).
MAX_BRANCHES = 4

_GGML_TYPES = {
    KvType.F16: llama_cpp.GGML_TYPE_F16,
    KvType.Q8_0: llama_cpp.GGML_TYPE_Q8_0,
    KvType.Q4_0: llama_cpp.GGML_TYPE_Q4_0,
}
LLAMA_CPP_VERSION = llama_cpp.__version__
ROPE_SCALING_TYPES = {
    None: llama_cpp.LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED,
    "linear": llama_cpp.LLAMA_ROPE_SCALING_TYPE_LINEAR,
    "yarn": llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN,
}


@llama_cpp.llama_log_callback  # type: ignore[misc,untyped-decorator]
def _log_callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    try:
        log.debug(text.decode("utf-8", "replace").rstrip("\n"))
    except Exception:  # a logging failure must never reach C
        pass


# Keep the callback referenced for the life of the process: llama.cpp holds a raw pointer.
llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def describe_cpu() -> str:
    """Return llama.cpp's CPU feature line (``AVX2 = 1 | ...``): what its build uses.

    A build for the builder's own CPU lists AVX-512 and dies on most others (issue 8).
    """
    return bytes(llama_cpp.llama_print_system_info()).decode("utf-8", "replace").strip()


@contextlib.contextmanager
def _staging_sequence() -> Iterator[None]:
    # Contexts get more sequences in one unified cache (compose's staging sequence, and
    # generate_branches' continuations: the window stays whole, and handing cells from
    # one sequence to another copies nothing). llama-cpp-python's Llama() takes neither setting, so the defaults it
    # starts from are changed while it is built, on this (the loading) thread.
    defaults = llama_cpp.llama_cpp.llama_context_default_params

    def with_staging() -> llama_cpp.llama_context_params:
        params: llama_cpp.llama_context_params = defaults()
        params.n_seq_max = max(_STAGING_SEQ + 1, MAX_BRANCHES)
        params.kv_unified = True
        return params

    llama_cpp.llama_cpp.llama_context_default_params = with_staging
    try:
        yield
    finally:
        llama_cpp.llama_cpp.llama_context_default_params = defaults


class _LogWriter(io.TextIOBase):
    def write(self, s: str) -> int:
        if s.strip():
            log.debug(s.rstrip("\n"))
        return len(s)


@contextlib.contextmanager
def _quiet_python_prints() -> Iterator[None]:
    # llama-cpp-python prints system info and metadata to sys.stderr when verbose; we keep
    # verbose=True because verbose=False redirects the whole process's file descriptors.
    with contextlib.redirect_stderr(_LogWriter()):
        yield


def _check_file(path: Path) -> None:
    # llama.cpp can abort the whole process on a malformed or truncated file (issue 5):
    # read and bounds-check the header ourselves first. Raises ModelFileError.
    inspect_gguf(path)


class Tokenizer:
    """A model's vocabulary, loaded without its weights."""

    def __init__(self, llm: llama_cpp.Llama, path: Path) -> None:
        self._llm = llm
        self.path = path

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._llm.metadata)

    @property
    def chat_template(self) -> str | None:
        return self._llm.metadata.get("tokenizer.chat_template")

    @property
    def n_ctx_train(self) -> int:
        # A vocab-only load reads no hyperparameters (llama.cpp reports 0): use the GGUF's key.
        trained = int(self._llm._model.n_ctx_train())
        if trained <= 0:
            meta = self._llm.metadata
            trained = int(meta.get(f"{meta.get('general.architecture', '')}.context_length", 0))
        return trained

    def tokenize_text(self, text: str) -> list[int]:
        """Tokenize document or user text: never as special tokens, no BOS."""
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def tokenize_template(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Tokenize chat-template text, where special tokens are meant."""
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return bytes(self._llm.detokenize(list(tokens))).decode("utf-8", "replace")

    def close(self) -> None:
        self._llm.close()


def load_tokenizer(path: Path) -> Tokenizer:
    """Load only the vocabulary of the GGUF at ``path``.

    Raises:
        ModelFileError: the file is missing, not a GGUF, or llama.cpp cannot read it.
    """
    _check_file(path)
    try:
        with _quiet_python_prints():
            llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=True)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"llama.cpp could not read {path.name}: {exc}.") from exc
    return Tokenizer(llm, path)


class LoadedModel(Tokenizer):
    """Weights plus a context. One thread at a time."""

    def __init__(
        self, llm: llama_cpp.Llama, path: Path, *, kv_type: KvType, n_threads: int, staging: bool = False
    ) -> None:
        super().__init__(llm, path)
        self.kv_type = kv_type
        self.n_threads = n_threads
        #: The context has compose's staging sequence (``load_model``: models without
        #: sliding-window layers); ``save_range`` and ``compose`` need it.
        self.staging = staging
        self._vocab = llm._model.vocab
        self._n_vocab = llm.n_vocab()
        #: False moves document cells to new positions without rotating their keys (the
        #: naive restore at an offset): a broken composition, for benchmarks/compose.py's
        #: check that the quality gate catches one. Never False in the engine.
        self.rotate_moved_keys = True

    @property
    def n_ctx(self) -> int:
        return int(self._llm.n_ctx())

    @property
    def n_batch(self) -> int:
        return int(self._llm.n_batch)

    @property
    def flash_attn(self) -> bool:
        return self.kv_type.needs_flash_attn

    @property
    def context_tokens(self) -> list[int]:
        """The tokens the context holds now, in order."""
        return [int(t) for t in self._llm.input_ids[: self._llm.n_tokens]]

    @property
    def n_tokens(self) -> int:
        """How many tokens the context holds now."""
        return int(self._llm.n_tokens)

    @property
    def n_vocab(self) -> int:
        return int(self._n_vocab)

    @property
    def runtime_version(self) -> str:
        return LLAMA_CPP_VERSION

    @property
    def llama(self) -> llama_cpp.Llama:
        """The underlying ``Llama``, for benchmarks that time bare llama.cpp against ours.
        Nothing in ``engine/`` may use it: it is not part of the runtime interface."""
        return self._llm

    def reset(self) -> None:
        """Forget the context's tokens (the KV cells are overwritten by the next eval)."""
        self._llm.reset()  # type: ignore[no-untyped-call]

    def prefill(
        self,
        tokens: Sequence[int],
        *,
        on_progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> PrefillStats:
        """Make the context hold exactly ``tokens``, evaluating only what is not there.

        Raises:
            ContextOverflow is the caller's job; here ``GenerationError`` if the tokens
            exceed the window or llama.cpp fails, ``Cancelled`` if cancelled.
        """
        llm = self._llm

        def keep(n: int) -> None:
            llm.n_tokens = n

        def evaluate(batch: Sequence[int]) -> None:
            try:
                llm.eval(batch)
            except RuntimeError as exc:
                raise GenerationError(f"llama.cpp failed while reading the corpus: {exc}.") from exc

        return prefill_in_batches(
            tokens,
            reused=self._common_prefix(tokens),
            n_ctx=self.n_ctx,
            n_batch=self.n_batch,
            keep=keep,
            evaluate=evaluate,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )

    def _common_prefix(self, tokens: Sequence[int]) -> int:
        n = self._llm.n_tokens
        if n == 0:
            return 0
        have = self._llm.input_ids[:n]
        want = np.asarray(tokens[:n], dtype=have.dtype)
        m = min(len(have), len(want))
        diff = np.nonzero(have[:m] != want[:m])[0]
        return int(diff[0]) if diff.size else m

    def generate(
        self,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        should_cancel: CancelFn | None = None,
    ) -> Iterator[str]:
        """Stream the answer that follows the context, piece by piece.

        Stops at an end-of-generation token, at ``max_tokens``, or when the window is
        full. Greedy when ``temperature`` is 0.

        Raises:
            Cancelled: ``should_cancel`` returned True between two tokens.
            GenerationError: llama.cpp failed.
        """
        llm = self._llm
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if temperature > 0:
            llm.set_seed(seed)
        for _ in range(max_tokens):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            if llm.n_tokens >= self.n_ctx:
                break
            token = self._next_token(temperature)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                break
            piece = decoder.decode(self._piece(token))
            try:
                llm.eval([token])
            except RuntimeError as exc:
                raise GenerationError(f"llama.cpp failed while answering: {exc}.") from exc
            if piece:
                yield piece
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def _piece(self, token: int) -> bytes:
        # llama-cpp-python's token_to_piece returns its whole 32-byte buffer, NULs included.
        size = 64
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
            if n >= 0:
                return buf.raw[:n]
            size = -n

    def _next_token(self, temperature: float) -> int:
        if temperature <= 0:
            logits = np.ctypeslib.as_array(self._llm._ctx.get_logits_ith(-1), shape=(self._n_vocab,))
            return int(np.argmax(logits))
        return int(self._llm.sample(temp=temperature, top_k=40, top_p=0.95, min_p=0.05))

    def last_logits(self) -> np.ndarray:
        """A copy of the logits after the last evaluated token."""
        return np.ctypeslib.as_array(self._llm._ctx.get_logits_ith(-1), shape=(self._n_vocab,)).copy()

    # -- KV snapshots (issue 4; engine/warm.py decides when and checks them) --

    def save_sequence(self, path: Path) -> int:
        """Write the context's KV cache and its tokens to ``path`` (llama.cpp's
        sequence-state file: the cache straight to disk, no logits copy).

        Returns:
            bytes written.

        Raises:
            GenerationError: llama.cpp could not write the file (disk full, no access).
        """
        n = self._llm.n_tokens
        tokens = (llama_cpp.llama_token * max(1, n))(*self.context_tokens)
        written = llama_cpp.llama_state_seq_save_file(self._llm._ctx.ctx, str(path).encode(), 0, tokens, n)
        if written == 0:
            raise GenerationError(f"llama.cpp could not write the snapshot {path}.")
        return int(written)

    def sequence_state(self) -> kvstate.SeqState:
        """The context's KV cells as llama.cpp writes them (sequence 0): each position's K
        and V per layer, to compare two contexts cell by cell
        (benchmarks/compose_deviation.py).

        Raises:
            GenerationError: llama.cpp could not copy the cache.
        """
        return kvstate.parse(self._seq_bytes(0))

    def load_sequence(self, path: Path, *, max_tokens: int) -> list[int]:
        """Replace the context with the KV cache and tokens saved in ``path``.

        Checks nothing about the model or settings (the caller's job); on failure the
        context is left empty, never half-loaded.

        Returns:
            the tokens the context now holds.

        Raises:
            GenerationError: the file is unreadable, holds more than ``max_tokens``
                tokens, or does not fit this context.
        """
        self.clear()
        tokens = (llama_cpp.llama_token * max(1, max_tokens))()
        count = ctypes.c_size_t(0)
        read = llama_cpp.llama_state_seq_load_file(
            self._llm._ctx.ctx, str(path).encode(), 0, tokens, max_tokens, ctypes.byref(count)
        )
        if read == 0 or count.value == 0:
            self.clear()
            raise GenerationError(f"llama.cpp could not load the snapshot {path}.")
        loaded = list(tokens[: count.value])
        self._llm.input_ids[: len(loaded)] = loaded
        self._llm.n_tokens = len(loaded)
        return loaded

    # -- KV ranges: per-document snapshots composed in any order (issue 17) --

    @property
    def can_shift(self) -> str | None:
        """Why this context's cached positions cannot be moved, or None when they can.

        A sliding-window model keeps some layers' cells only for the last window, and a
        quantized K is dequantized, rotated and quantized again by a shift (lossy)."""
        if llama_cpp.llama_model_n_swa(self._llm._model.model) > 0:
            return "it uses sliding-window attention (its window's layers keep only recent cells)"
        mem = llama_cpp.llama_get_memory(self._llm._ctx.ctx)
        if not llama_cpp.llama_memory_can_shift(mem):
            return "llama.cpp cannot move this model's cached positions"
        if self.kv_type is not KvType.F16:
            return f"its K cache is quantized ({self.kv_type}): moving it re-quantizes every key"
        return None

    def save_range(self, path: Path, start: int, end: int) -> int:
        """Write the KV cells of context positions ``[start, end)`` and their tokens.

        Only those cells are copied out: they are shared with the staging sequence
        (``llama_memory_seq_cp`` marks them, copying nothing), which is written alone.

        Returns:
            bytes written.

        Raises:
            GenerationError: the context does not hold that range, or the file cannot be written.
        """
        if not 0 <= start < end <= self._llm.n_tokens:
            raise GenerationError(f"The context does not hold positions {start:,} to {end:,}.")
        self._need_staging()
        mem = llama_cpp.llama_get_memory(self._llm._ctx.ctx)
        llama_cpp.llama_memory_seq_cp(mem, 0, _STAGING_SEQ, start, end)
        try:
            part = kvstate.parse(self._seq_bytes(_STAGING_SEQ)).positions(start, end)
        finally:
            llama_cpp.llama_memory_seq_rm(mem, _STAGING_SEQ, -1, -1)
        return write_range_file(path, _RANGE_MAGIC, start, self.context_tokens[start:end], part.to_bytes())

    def compose(
        self,
        parts: Sequence[tuple[Path, int]],
        *,
        tokens: Sequence[int],
        recompute: Sequence[tuple[int, int]],
    ) -> PrefillStats:
        """Replace the context with saved ranges, each moved to start at its offset, and
        evaluate ``recompute`` again in place, so the context holds ``tokens``.

        First every saved range's cells are loaded into the staging sequence 1
        (``llama_state_seq_set_data`` empties the sequence it loads, so never into 0),
        moved (``llama_memory_seq_add``) and handed to sequence 0 (``llama_memory_seq_cp``
        in the unified cache ``load_model`` makes only marks the cells): each cell is
        read once, and llama.cpp rotates every moved K in one pass over the cache, at the
        next evaluation. Then each recomputed span, in position order, is evaluated in
        the staging sequence holding positions ``[0, start)`` of sequence 0 (llama.cpp
        accepts a batch only right after a sequence's last position, and the span must
        not see what follows it) and handed to sequence 0.

        Args:
            parts: (file from ``save_range``, the position its first token goes to); a
                range that goes on past ``tokens`` gives only the cells inside them.
            tokens: what the whole context holds once composed.
            recompute: spans ``(start, end)`` evaluated again; every position no part
                covers must be in one.

        Returns:
            what was evaluated (the recomputed tokens) and reused (the rest).

        Raises:
            GenerationError: a file is unreadable or holds other tokens than ``tokens``
                at its offset, a position is covered by nothing, positions cannot be
                moved here (``can_shift``), or llama.cpp failed; the context is then empty.
        """
        self._need_staging()
        started = time.perf_counter()
        n = len(tokens)
        source = np.full(n, -1)  # which range holds each position
        ranges: list[tuple[int, kvstate.SeqState]] = []  # (shift to its place, cells as saved)
        fresh = np.zeros(n, dtype=bool)
        try:
            for path, at in parts:
                start, saved, state = _read_range(path)
                count = min(len(saved), n - at)  # a range may go on past ``tokens``: its first cells are used
                if at < 0 or count <= 0 or list(tokens[at : at + count]) != saved[:count]:
                    raise GenerationError(f"The snapshot {path.name} holds other tokens than the corpus at {at:,}.")
                why = self.can_shift
                if at != start and self.rotate_moved_keys and why is not None:
                    raise GenerationError(f"Documents cannot be moved in this model's cache: {why}.")
                source[at : at + count] = len(ranges)
                ranges.append((at - start, state))
            for a, b in recompute:
                if not 0 <= a <= b <= n:
                    raise GenerationError(f"Positions {a:,} to {b:,} are not in the context.")
                fresh[a:b] = True
            if np.any((source < 0) & ~fresh):
                raise GenerationError("Some positions of the corpus are in no document snapshot.")
            self.clear()
            self._llm.input_ids[:n] = list(tokens)
            runs = _runs(fresh, source)
            for a, b in runs:  # every saved cell first: their K is rotated once, at the first evaluation
                if not fresh[a]:
                    shift, state = ranges[source[a]]
                    self._append_cells(state.positions(a - shift, b - shift), shift)
            mem = llama_cpp.llama_get_memory(self._llm._ctx.ctx)
            for a, b in runs:
                if fresh[a]:  # evaluated in the staging sequence, which holds positions [0, a) only
                    llama_cpp.llama_memory_seq_cp(mem, 0, _STAGING_SEQ, 0, a)
                    items = [(int(tokens[p]), p) for p in range(a, b)]
                    for i in range(0, len(items), self.n_batch):
                        self._decode(items[i : i + self.n_batch], seq=_STAGING_SEQ)
                    llama_cpp.llama_memory_seq_cp(mem, _STAGING_SEQ, 0, a, b)
                    llama_cpp.llama_memory_seq_rm(mem, _STAGING_SEQ, -1, -1)
        except GenerationError:
            self.clear()
            raise
        self._llm.n_tokens = n
        evaluated = int(fresh.sum())
        return PrefillStats(evaluated=evaluated, reused=n - evaluated, seconds=time.perf_counter() - started)

    def logits_after_each(self, tokens: Sequence[int]) -> np.ndarray:
        """Append ``tokens`` to the context in one batch and return the logits after each
        (rows in order): the composition's quality gate (engine/compose.py) and
        benchmarks/compose.py's scoring.

        Raises:
            GenerationError: more than a batch or the window holds, or llama.cpp failed.
        """
        n = self._llm.n_tokens
        if not tokens or len(tokens) > self.n_batch or n + len(tokens) > self.n_ctx:
            raise GenerationError("The tokens to score must fit one batch and the window.")
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self._llm._ctx.ctx), 0, n, -1)
        self._decode([(int(t), n + i) for i, t in enumerate(tokens)], all_logits=True)
        rows = [
            np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, i), shape=(self._n_vocab,)).copy()
            for i in range(len(tokens))
        ]
        self._llm.input_ids[n : n + len(tokens)] = list(tokens)
        self._llm.n_tokens = n + len(tokens)
        return np.stack(rows)

    @property
    def max_branches(self) -> int:
        return MAX_BRANCHES if self.staging else 1

    def generate_branches(
        self,
        tails: Sequence[Sequence[int]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        ends: Sequence[EndFn | None] = (),
        should_cancel: CancelFn | None = None,
    ) -> Branches:
        """Continue the context with each of ``tails`` side by side: sequence k > 0 shares
        the context's cells with sequence 0 (``llama_memory_seq_cp`` marks them, copying
        nothing), every tail is read in one batch, and each step writes one token of every
        continuation still going in one batch, so the weights are read once a step for
        all of them. Greedy only; sampled, or too many, too long, or with no sequences to
        spare (sliding-window models), they are written one after the other
        (``branches_one_by_one``). The context is left as it was.

        Raises:
            Cancelled: ``should_cancel`` returned True between two steps.
            GenerationError: llama.cpp failed.
        """
        n0 = self._llm.n_tokens
        spare = self.n_ctx - n0 - sum(len(t) + max_tokens for t in tails)
        if (
            not tails
            or n0 == 0
            or temperature > 0
            or len(tails) > self.max_branches
            or sum(len(t) for t in tails) > self.n_batch
            or min(len(t) for t in tails) == 0
            or spare < 0
        ):
            return branches_one_by_one(
                self,
                tails,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
                ends=ends,
                should_cancel=should_cancel,
            )
        ctx = self._llm._ctx.ctx
        mem = llama_cpp.llama_get_memory(ctx)
        seqs = range(len(tails))
        started = time.perf_counter()
        texts = [""] * len(tails)
        outs = [0] * len(tails)
        decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in seqs]
        try:
            llama_cpp.llama_memory_seq_rm(mem, 0, n0, -1)
            for k in seqs[1:]:
                llama_cpp.llama_memory_seq_rm(mem, k, -1, -1)
                llama_cpp.llama_memory_seq_cp(mem, 0, k, 0, n0)
            items = [(int(t), n0 + i, k) for k in seqs for i, t in enumerate(tails[k])]
            last = {k: sum(len(t) for t in tails[: k + 1]) - 1 for k in seqs}  # each tail's last token
            self._decode_seqs(items, logits=set(last.values()), what="writing notes side by side")
            prefill_s = time.perf_counter() - started
            started = time.perf_counter()
            pos = [n0 + len(t) for t in tails]
            going = list(seqs)
            done: set[int] = set()  # cut by ``end``
            for _ in range(max_tokens):
                if should_cancel is not None and should_cancel():
                    raise Cancelled()
                step: list[tuple[int, int, int]] = []
                for k in going:
                    row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, last[k]), shape=(self._n_vocab,))
                    token = int(np.argmax(row))
                    if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                        continue
                    texts[k] += decoders[k].decode(self._piece(token))
                    outs[k] += 1
                    end = ends[k] if k < len(ends) else None
                    if end is not None and (cut := end(texts[k])) is not None:
                        texts[k] = texts[k][:cut]
                        done.add(k)
                        continue
                    step.append((token, pos[k], k))
                    pos[k] += 1
                going = [k for _, _, k in step]
                if not step:
                    break
                self._decode_seqs(step, logits=set(range(len(step))), what="writing notes side by side")
                last = {k: i for i, (_, _, k) in enumerate(step)}
            texts = [
                t if k in done else t + d.decode(b"", final=True)
                for k, (t, d) in enumerate(zip(texts, decoders, strict=True))
            ]
        finally:
            for k in seqs[1:]:
                llama_cpp.llama_memory_seq_rm(mem, k, -1, -1)
            llama_cpp.llama_memory_seq_rm(mem, 0, n0, -1)
            self._llm.n_tokens = n0
        evaluated = sum(len(t) for t in tails)
        return Branches(texts, outs, PrefillStats(evaluated, n0 * len(tails), prefill_s), time.perf_counter() - started)

    def _decode_seqs(self, items: Sequence[tuple[int, int, int]], *, logits: set[int], what: str) -> None:
        # One batch of (token, position, sequence), logits kept at the indexes in ``logits``.
        batch = llama_cpp.llama_batch_init(len(items), 0, 1)
        try:
            for i, (token, pos, seq) in enumerate(items):
                batch.token[i] = token
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = i in logits
            batch.n_tokens = len(items)
            rc = llama_cpp.llama_decode(self._llm._ctx.ctx, batch)
        finally:
            llama_cpp.llama_batch_free(batch)
        if rc != 0:
            raise GenerationError(f"llama.cpp failed while {what} (code {rc}).")

    def _need_staging(self) -> None:
        if not self.staging:
            raise GenerationError(
                "Parts of this model's cache cannot be saved or placed: it uses sliding-window attention."
            )

    def _append_cells(self, cells: kvstate.SeqState, shift: int) -> None:
        # Add saved cells to sequence 0, moved by ``shift`` positions.
        mem = llama_cpp.llama_get_memory(self._llm._ctx.ctx)
        if not self.rotate_moved_keys:  # the naive move: new positions, keys left as they were
            cells = dataclasses.replace(cells, pos=cells.pos + shift)
            shift = 0
        self._set_seq_bytes(cells.to_bytes(), _STAGING_SEQ)
        if shift:
            llama_cpp.llama_memory_seq_add(mem, _STAGING_SEQ, -1, -1, shift)
        llama_cpp.llama_memory_seq_cp(mem, _STAGING_SEQ, 0, -1, -1)
        llama_cpp.llama_memory_seq_rm(mem, _STAGING_SEQ, -1, -1)

    def _decode(self, items: Sequence[tuple[int, int]], *, all_logits: bool = False, seq: int = 0) -> None:
        logits = set(range(len(items))) if all_logits else {len(items) - 1}
        self._decode_seqs([(t, p, seq) for t, p in items], logits=logits, what="placing documents in the context")

    def _seq_bytes(self, seq: int) -> bytes:
        ctx = self._llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, seq)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, seq)
        if written == 0:
            raise GenerationError("llama.cpp could not copy the context's KV cache.")
        return bytes(buf)[:written]

    def _set_seq_bytes(self, data: bytes, seq: int) -> None:
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(self._llm._ctx.ctx, buf, len(data), seq) == 0:
            raise GenerationError("llama.cpp could not load the composed KV cache.")

    def clear(self) -> None:
        """Empty the context: tokens and every KV cell."""
        self._llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]
        self._llm.reset()  # type: ignore[no-untyped-call]


def _runs(fresh: np.ndarray, source: np.ndarray) -> list[tuple[int, int]]:
    """Maximal spans ``[a, b)`` that are all evaluated again, or all from one saved range."""
    runs: list[tuple[int, int]] = []
    a = 0
    for b in range(1, len(fresh) + 1):
        if b == len(fresh) or fresh[b] != fresh[a] or (not fresh[b] and source[b] != source[a]):
            runs.append((a, b))
            a = b
    return runs


def _read_range(path: Path) -> tuple[int, list[int], kvstate.SeqState]:
    """A ``save_range`` file: its first position, tokens and cells.

    Raises:
        GenerationError: unreadable or not such a file.
    """
    start, tokens, cells = read_range_file(path, _RANGE_MAGIC)
    n = len(tokens)
    state = kvstate.parse(cells)
    if state.n_cells != n or not np.array_equal(state.pos, np.arange(start, start + n)):
        raise GenerationError(f"The snapshot {path.name} does not hold the cells its header names.")
    return start, tokens, state


def load_model(path: Path, settings: LoadSettings, *, n_gpu_layers: int = -1) -> LoadedModel:
    """Load the GGUF at ``path`` as ``settings`` say.

    Args:
        path: the GGUF file.
        settings: window, KV type, threads, batch (also the cancel granularity),
            sliding-window mode and RoPE scaling, checked by the planner.
        n_gpu_layers: layers to offload on a GPU build (-1: all); ignored on CPU builds.

    Raises:
        ModelFileError: not a GGUF or unreadable.
        ModelError: llama.cpp could not load it (for example, out of memory).
    """
    info = inspect_gguf(path)  # read and bounds-checked before llama.cpp sees it (_check_file)
    if settings.planned_bytes is not None:
        log.debug("loading %s: the planner expects %d bytes", path.name, settings.planned_bytes)
    kv = _GGML_TYPES[settings.kv_type]
    # Sliding-window models never compose (``can_shift``), and a second sequence would
    # double their window's cache: they get none.
    staging = info.sliding_window_pattern is None
    try:
        with _quiet_python_prints(), _staging_sequence() if staging else contextlib.nullcontext():
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=settings.n_ctx,
                n_batch=settings.n_batch,
                n_ubatch=settings.n_batch,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads,
                type_k=kv,
                type_v=kv,
                flash_attn=settings.kv_type.needs_flash_attn,
                swa_full=settings.swa_full,
                rope_scaling_type=ROPE_SCALING_TYPES[settings.rope_scaling],
                rope_freq_scale=settings.rope_freq_scale,
                yarn_orig_ctx=settings.yarn_orig_ctx,
                n_gpu_layers=n_gpu_layers,
                verbose=True,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelError(
            f"llama.cpp could not load {path.name} with a {settings.n_ctx:,}-token window ({exc}). "
            "Try a smaller window or another model file."
        ) from exc
    return LoadedModel(llm, path, kv_type=settings.kv_type, n_threads=settings.n_threads, staging=staging)


class LlamaBackend:
    """llama.cpp in this process: the default ``Backend`` (engine/runtime/backend.py)."""

    name = "llama.cpp"
    version = LLAMA_CPP_VERSION

    def describe_system(self) -> str:
        return describe_cpu()

    def inspect_model(self, path: Path) -> ModelInfo:
        return inspect_gguf(path)

    def load_tokenizer(self, path: Path) -> Tokenizer:
        return load_tokenizer(path)

    def load_model(self, path: Path, settings: LoadSettings) -> LoadedModel:
        return load_model(path, settings)
