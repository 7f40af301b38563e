"""Inspect a GGUF model file without loading its weights.

The contract:

- ``inspect_gguf(path)`` reads the GGUF header (key-values and tensor infos) with the
  standard library only and returns a frozen ``ModelInfo``. It never reads tensor data
  and never builds Python lists of the big tokenizer arrays: arrays of more than
  ``SMALL_ARRAY_LIMIT`` entries are skipped (fixed-size elements by one seek, strings by
  walking their lengths in a 1 MiB read buffer); only their lengths are kept, which is
  where ``vocab_size`` comes from. Gemma 3's 262k-token vocabulary is read in
  milliseconds (the ``gguf`` package's reader takes seconds).
- Every rejection is a ``ModelFileError`` whose message names the file and says what is
  wrong in plain words: not a GGUF file, an unsupported GGUF version, a header that runs
  past the end of the file, tensor data that runs past the end of the file ("truncated"),
  or a model without the hyperparameters Longread needs. No length read from the file
  is trusted: every length is checked against the bytes that remain before anything is
  allocated or read.
- A split model (``name-00001-of-00003.gguf``) is described by its first part with the
  tensors of every part added up (each later part's header is read; a missing part is a
  ``ModelFileError``), so the planner counts all its weights. ``inspect_gguf_handle``
  does the same from any seekable stream (the Hub's files, read by HTTP ranges).
- ``ModelInfo`` carries what the planner needs (layers, KV heads per layer, head sizes,
  sliding window, context length, chat template) and computes KV cache sizes with
  llama.cpp's rules (see ``ModelInfo.kv_cache_bytes``).

Sliding-window attention follows llama.cpp (``llama_hparams::set_swa_pattern``): a
layer ``il`` with period ``n`` is a sliding-window layer when ``il % n < n - 1``, so the
last layer of each period attends to the whole context. The period comes from
``{arch}.attention.sliding_window_pattern`` when the file has it (an integer period,
or one boolean per layer), otherwise from llama.cpp's built-in default for the
architecture (gemma2: 2, gemma3: 6, gemma3n: 5, cohere2: 4, gpt-oss: 2). For other
architectures llama.cpp ignores ``{arch}.attention.sliding_window`` and so does the KV
arithmetic here: ``sliding_window`` is still reported, ``sliding_window_pattern`` is
``None``. A window of 0 means no sliding window (as in llama.cpp's gemma3 loader).
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, Final

from engine.errors import ModelFileError

__all__ = ["SMALL_ARRAY_LIMIT", "ModelInfo", "inspect_gguf", "inspect_gguf_handle"]

#: Arrays with at most this many entries are kept as tuples in ``ModelInfo.metadata``.
SMALL_ARRAY_LIMIT: Final = 1024

_MAGIC: Final = b"GGUF"
_SUPPORTED_VERSIONS: Final = (2, 3)
_DEFAULT_ALIGNMENT: Final = 32
_CHUNK: Final = 1 << 20
# Strings longer than this are skipped rather than kept (a damaged length inside a
# large file must not allocate gigabytes; real chat templates are a few KB).
_MAX_KEPT_STRING: Final = 16 << 20
# The GGUF spec limits keys to 65535 bytes; ggml limits tensors to 4 dimensions.
_MAX_KEY_LENGTH: Final = 65535
_MAX_DIMS: Final = 8
_MAX_NESTING: Final = 8

# GGUF metadata value types.
_T_STRING: Final = 8
_T_ARRAY: Final = 9
_SCALARS: Final[dict[int, struct.Struct]] = {
    0: struct.Struct("<B"),
    1: struct.Struct("<b"),
    2: struct.Struct("<H"),
    3: struct.Struct("<h"),
    4: struct.Struct("<I"),
    5: struct.Struct("<i"),
    6: struct.Struct("<f"),
    7: struct.Struct("<?"),
    10: struct.Struct("<Q"),
    11: struct.Struct("<q"),
    12: struct.Struct("<d"),
}
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_HEADER: Final = struct.Struct("<4sIQQ")
# llama.cpp's split parts: "<prefix>-00001-of-00003.gguf".
_SPLIT_NAME: Final = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)

# ggml_type id -> (name, elements per block, bytes per block); from ggml.h and
# gguf-py's GGML_QUANT_SIZES. Unknown ids are reported as "type N" and their
# tensors are left out of the size check.
_QK_K: Final = 256
_GGML_TYPES: Final[dict[int, tuple[str, int, int]]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", _QK_K, 2 + 2 + _QK_K // 16 + _QK_K // 4),
    11: ("Q3_K", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + 12),
    12: ("Q4_K", _QK_K, 2 + 2 + _QK_K // 2 + 12),
    13: ("Q5_K", _QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 8 + 12),
    14: ("Q6_K", _QK_K, 2 + _QK_K // 2 + _QK_K // 4 + _QK_K // 16),
    15: ("Q8_K", _QK_K, 4 + _QK_K + _QK_K // 8),
    16: ("IQ2_XXS", _QK_K, 2 + _QK_K // 4),
    17: ("IQ2_XS", _QK_K, 2 + _QK_K // 4 + _QK_K // 32),
    18: ("IQ3_XXS", _QK_K, 2 + _QK_K // 4 + _QK_K // 8),
    19: ("IQ1_S", _QK_K, 2 + _QK_K // 8 + _QK_K // 16),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + _QK_K // 32 + 4),
    22: ("IQ2_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 16),
    23: ("IQ4_XS", _QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 64),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", _QK_K, _QK_K // 8 + _QK_K // 16 + _QK_K // 32),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", _QK_K, 2 + 4 * 13),
    35: ("TQ2_0", _QK_K, 2 + 64),
    39: ("MXFP4", 32, 17),
}

# ggml types that ggml-cpu's "extra buffer" repacks at load (ggml-cpu/repack.cpp):
# Q4_0, Q4_K, IQ4_NL and Q8_0 weights of 2-D matrices (never the token embedding,
# which is read by row).
_REPACKED_TYPES: Final = frozenset({2, 8, 12, 20})

# llama_ftype (llama.h) -> the quantization name people use for the file.
_FTYPE_GUESSED: Final = 1024
_FILE_TYPES: Final[dict[int, str]] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "Q4_1_SOME_F16",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}

# Architectures whose llama.cpp loader turns on standard sliding-window attention with
# a fixed period when the file has a window but no explicit pattern (llama-model.cpp).
_DEFAULT_SWA_PERIOD: Final[dict[str, int]] = {
    "gemma2": 2,
    "gemma3": 6,
    "gemma3n": 5,
    "cohere2": 4,
    "gpt-oss": 2,
}

# KV cache element types -> bytes per element (block bytes / block elements).
_KV_TYPE_BYTES: Final[dict[str, float]] = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
    "iq4_nl": 18 / 32,
}


@dataclass(frozen=True)
class ModelInfo:
    """What a GGUF file says about its model; built by ``inspect_gguf``.

    ``n_head_kv`` has one entry per layer. ``sliding_window_pattern`` has one entry per
    layer (True = sliding-window layer) or is ``None`` when no layer uses a sliding
    window in llama.cpp. ``metadata`` holds every scalar key-value and every array of at
    most ``SMALL_ARRAY_LIMIT`` entries (as a tuple); bigger arrays are left out.
    """

    path: Path
    file_size: int
    architecture: str
    name: str
    parameter_count: int
    file_type: str
    context_length: int
    n_layers: int
    n_head: int
    n_head_kv: tuple[int, ...]
    key_length: int
    value_length: int
    embedding_length: int
    sliding_window: int | None
    sliding_window_pattern: tuple[bool, ...] | None
    chat_template: str | None = field(repr=False)
    vocab_size: int
    bos_token_id: int | None
    eos_token_id: int | None
    rope_scaling: str | None
    metadata: Mapping[str, object] = field(repr=False, compare=False)
    #: Bytes of tensor data (what the mmapped weights make resident once used).
    tensor_bytes: int = 0
    #: Bytes of matrices llama.cpp's CPU backend may copy into a repacked layout at load
    #: (Q4_0, Q4_K, IQ4_NL, Q8_0 on AVX2/NEON): an upper bound on that extra copy.
    repackable_bytes: int = 0
    feed_forward_length: int = 0

    @property
    def has_chat_template(self) -> bool:
        """True when the file carries a non-empty ``tokenizer.chat_template``."""
        return bool(self.chat_template and self.chat_template.strip())

    @property
    def n_sliding_layers(self) -> int:
        """How many layers attend only to the last ``sliding_window`` positions."""
        if self.sliding_window_pattern is None or not self.sliding_window:
            return 0
        return sum(self.sliding_window_pattern)

    def kv_bytes_per_token(self, type_k: str = "f16", type_v: str = "f16", *, n_ctx: int | None = None) -> float:
        """KV cache bytes per token of context.

        Per layer and cell: ``n_head_kv[i] * (key_length * bytes_k + value_length *
        bytes_v)`` with f32 4 bytes per element, f16 2, q8_0 34/32, q4_0 18/32.

        Args:
            type_k: KV cache type of the keys ("f16", "q8_0", "q4_0", ...).
            type_v: KV cache type of the values.
            n_ctx: without it, the full-cache figure (every layer holds every token).
                With it, ``kv_cache_bytes(n_ctx) / n_ctx``: the average over a window of
                ``n_ctx`` tokens, where sliding-window layers hold only llama.cpp's
                smaller SWA cache. One rule for both methods, so they never disagree.

        Returns:
            Bytes per token (a float: quantized types pack 32 elements into 18 or 34
            bytes).

        Raises:
            ValueError: an unknown cache type or a non-positive ``n_ctx`` (a bug in
                the caller, not a user error).
        """
        if n_ctx is not None:
            if n_ctx <= 0:
                raise ValueError(f"n_ctx must be positive, got {n_ctx}")
            return self.kv_cache_bytes(n_ctx, type_k, type_v) / n_ctx
        return float(sum(self._layer_cell_bytes(type_k, type_v)))

    def kv_cache_bytes(
        self,
        n_ctx: int,
        type_k: str = "f16",
        type_v: str = "f16",
        *,
        swa_full: bool = False,
        n_ubatch: int = 512,
        n_seq_max: int = 1,
        pad: int = 256,
    ) -> int:
        """Total KV cache bytes for a context window of ``n_ctx`` cells.

        Full-attention layers hold ``n_ctx`` cells. Sliding-window layers hold
        llama.cpp's SWA cache (``llama_kv_cache_iswa``):
        ``min(n_ctx, GGML_PAD(n_swa * n_seq_max + n_ubatch, pad))`` cells, or
        ``n_ctx`` with ``swa_full=True``. llama.cpp's padding has changed between
        versions (256 with flash attention, 32 without, 1 in recent builds); 256 is the
        largest, so the default never underestimates. ``n_ctx`` is used as given:
        llama.cpp rounds it up to a multiple of 256, so callers should pass a rounded
        value.

        Args:
            n_ctx: cells in the full-attention cache (the context window).
            type_k: KV cache type of the keys.
            type_v: KV cache type of the values.
            swa_full: sliding-window layers keep the whole window too (llama.cpp's
                ``swa_full``, needed to roll back into the corpus).
            n_ubatch: llama.cpp's physical batch size (default 512).
            n_seq_max: parallel sequences (1 for Longread).
            pad: llama.cpp's cache padding.

        Returns:
            Bytes, rounded to a whole number.

        Raises:
            ValueError: an unknown cache type or a non-positive argument.
        """
        if n_ctx <= 0 or n_ubatch <= 0 or n_seq_max <= 0 or pad <= 0:
            raise ValueError("n_ctx, n_ubatch, n_seq_max and pad must be positive")
        cell_bytes = self._layer_cell_bytes(type_k, type_v)
        swa_cells = n_ctx
        pattern = self.sliding_window_pattern
        if not swa_full and pattern is not None and self.sliding_window:
            wanted = self.sliding_window * n_seq_max + n_ubatch
            swa_cells = min(n_ctx, -(-wanted // pad) * pad)
        total = 0.0
        for il, per_cell in enumerate(cell_bytes):
            sliding = pattern is not None and il < len(pattern) and pattern[il]
            total += per_cell * (swa_cells if sliding else n_ctx)
        return math.ceil(total)

    def kv_state_bytes(self, n_tokens: int, type_k: str = "f16", type_v: str = "f16") -> int:
        """The KV data a llama.cpp sequence-state file holds for ``n_tokens`` tokens.

        Full-attention layers save every token; sliding-window layers save only the
        last ``sliding_window`` tokens, the ones a next token can still attend to, even
        when the cache in memory keeps more (``swa_full``). The file adds about 16
        bytes a token of token ids and cell positions. Measured: Gemma 3 270M at
        32,511 tokens, f16: 108.3 MB on disk, 107.7 MB here; without the sliding-window
        rule it would be 599 MB (benchmarks/reopen.py).

        Raises:
            ValueError: an unknown cache type or a negative ``n_tokens``.
        """
        if n_tokens < 0:
            raise ValueError(f"n_tokens must not be negative, got {n_tokens}")
        pattern = self.sliding_window_pattern
        window = min(n_tokens, self.sliding_window) if pattern is not None and self.sliding_window else n_tokens
        total = 0.0
        for il, per_cell in enumerate(self._layer_cell_bytes(type_k, type_v)):
            sliding = pattern is not None and il < len(pattern) and pattern[il]
            total += per_cell * (window if sliding else n_tokens)
        return math.ceil(total)

    def _layer_cell_bytes(self, type_k: str, type_v: str) -> list[float]:
        """Bytes one KV cell takes in each layer."""
        bytes_k = _find_kv_type_bytes(type_k)
        bytes_v = _find_kv_type_bytes(type_v)
        per_head = self.key_length * bytes_k + self.value_length * bytes_v
        return [heads * per_head for heads in self.n_head_kv]


def inspect_gguf(path: str | os.PathLike[str]) -> ModelInfo:
    """Read a GGUF file's header and describe the model, without loading weights.

    A split model (``name-00001-of-00003.gguf``, as llama.cpp's gguf-split writes it) is
    described by its first part with the weights of every part: each later part's
    header (its tensor infos) is read from the same folder, and a missing part is an
    error, since llama.cpp cannot load the model without it.

    Args:
        path: the ``.gguf`` file (the first part of a split model).

    Returns:
        The model's ``ModelInfo``.

    Raises:
        ModelFileError: the file cannot be read, is not GGUF, has an unsupported
            version, is truncated or damaged, or lacks the hyperparameters of a
            language model (an adapter or a vision projector, for example).
    """
    file_path = Path(path)
    name = file_path.name
    try:
        with open(file_path, "rb") as handle:
            file_size = os.fstat(handle.fileno()).st_size
            reader = _Reader(handle, file_size, name)
            header = _read_header(reader)
        file_size += _add_split_parts(header, file_path, _open_local_part)
    except IsADirectoryError as exc:
        raise ModelFileError(f"{name} is a folder, not a GGUF model file.", detail=str(file_path)) from exc
    except FileNotFoundError as exc:
        raise ModelFileError(
            f"{name} was not found: it may have been moved or deleted.",
            detail=str(file_path),
        ) from exc
    except PermissionError as exc:
        raise ModelFileError(f"{name} cannot be opened: permission denied.", detail=str(file_path)) from exc
    except OSError as exc:
        raise ModelFileError(f"{name} could not be read: {exc.strerror or exc}.", detail=str(file_path)) from exc
    return _build_info(file_path, file_size, header)


def inspect_gguf_handle(
    handle: BinaryIO,
    *,
    file_size: int,
    path: Path,
    open_part: Callable[[str], tuple[BinaryIO, int]] | None = None,
) -> ModelInfo:
    """Describe a GGUF whose bytes come from ``handle`` (seekable; a remote file read by
    ranges, for example), as ``inspect_gguf`` does for a file on disk.

    Args:
        handle: the first (or only) part, readable and seekable.
        file_size: its size in bytes.
        path: the name it goes by (messages use its name; ``ModelInfo.path``).
        open_part: for a split model, opens a later part by file name and returns its
            handle and size (the caller closes nothing: handles are read and dropped).

    Returns:
        The model's ``ModelInfo``; a split model's weights are summed over its parts
        when ``open_part`` is given, else they are the first part's.

    Raises:
        ModelFileError: as ``inspect_gguf``.
    """
    header = _read_header(_Reader(handle, file_size, path.name))
    if open_part is not None:
        file_size += _add_split_parts(header, path, lambda part: open_part(part.name))
    return _build_info(path, file_size, header)


def _open_local_part(part: Path) -> tuple[BinaryIO, int]:
    try:
        handle = open(part, "rb")
    except FileNotFoundError as exc:
        raise ModelFileError(
            f"{part.name} is missing: a model split into parts needs every part in the same folder. "
            "Download the missing part again.",
            detail=str(part),
        ) from exc
    return handle, os.fstat(handle.fileno()).st_size


def _add_split_parts(header: _Header, first: Path, open_part: Callable[[Path], tuple[BinaryIO, int]]) -> int:
    """Add the later parts' tensors of a split model to ``header``; return their bytes.

    llama.cpp's split files carry ``split.count`` in every part and are named
    ``<prefix>-%05d-of-%05d.gguf``; llama.cpp loads them from the first part's name.
    """
    count = _find_int(header.metadata.get("split.count"))
    if count is None or count <= 1:
        return 0
    match = _SPLIT_NAME.search(first.name)
    if match is None or int(match.group(1)) != 1 or int(match.group(2)) != count:
        raise ModelFileError(
            f"{first.name} is part of a model split into {count} files but is not named as the first "
            "part (name-00001-of-0000N.gguf), so llama.cpp cannot find the others."
        )
    prefix = first.name[: match.start()]
    extra = 0
    for index in range(2, count + 1):
        part = first.with_name(f"{prefix}-{index:05d}-of-{count:05d}.gguf")
        handle, size = open_part(part)
        with handle:
            part_header = _read_header(_Reader(handle, size, part.name))
        header.parameter_count += part_header.parameter_count
        header.elements_by_type.update(part_header.elements_by_type)
        header.tensor_bytes += part_header.tensor_bytes
        header.repackable_bytes += part_header.repackable_bytes
        extra += size
    return extra


# --- reading -------------------------------------------------------------------------


class _Reader:
    """Sequential reads over a file through a buffer, with every length bounds-checked.

    ``_buf`` holds the bytes of the file from offset ``_buf_start``; ``_pos`` indexes
    into it. Skips within the buffer move ``_pos``; longer skips drop the buffer and
    the next read seeks.
    """

    def __init__(self, handle: BinaryIO, file_size: int, name: str) -> None:
        self._file = handle
        self.file_size = file_size
        self.name = name
        self._buf = b""
        self._buf_start = 0
        self._pos = 0

    @property
    def offset(self) -> int:
        """The file offset of the next byte to read."""
        return self._buf_start + self._pos

    @property
    def remaining(self) -> int:
        """Bytes left in the file after the current offset."""
        return self.file_size - self.offset

    def make_truncated_error(self) -> ModelFileError:
        """The error for a header that runs past the end of the file."""
        return ModelFileError(
            f"{self.name} is truncated: the file ends at byte {self.file_size:,} but its "
            "header needs more. Download it again.",
        )

    def make_damaged_error(self, what: str) -> ModelFileError:
        """The error for a header that cannot be a valid GGUF header."""
        return ModelFileError(
            f"{self.name} is damaged: {what}. Download it again.",
        )

    def _fill(self, n: int) -> None:
        """Make at least ``n`` bytes available at ``_pos`` or raise truncated."""
        start = self.offset
        if n > self.file_size - start:
            raise self.make_truncated_error()
        keep = self._buf[self._pos :]
        self._file.seek(start + len(keep))
        more = self._file.read(max(n - len(keep), _CHUNK))
        self._buf = keep + more
        self._buf_start = start
        self._pos = 0
        if len(self._buf) < n:  # the file shrank while we read it
            raise self.make_truncated_error()

    def read_bytes(self, n: int) -> bytes:
        """Read ``n`` bytes."""
        if self._pos + n > len(self._buf):
            self._fill(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def unpack(self, fmt: struct.Struct) -> tuple[object, ...]:
        """Read one struct."""
        if self._pos + fmt.size > len(self._buf):
            self._fill(fmt.size)
        values = fmt.unpack_from(self._buf, self._pos)
        self._pos += fmt.size
        return values

    def read_u32(self) -> int:
        """Read a little-endian uint32."""
        if self._pos + 4 > len(self._buf):
            self._fill(4)
        (value,) = _U32.unpack_from(self._buf, self._pos)
        self._pos += 4
        return int(value)

    def read_u64s(self, count: int) -> tuple[int, ...]:
        """Read ``count`` little-endian uint64s."""
        fmt = struct.Struct(f"<{count}Q")
        if self._pos + fmt.size > len(self._buf):
            self._fill(fmt.size)
        values: tuple[int, ...] = fmt.unpack_from(self._buf, self._pos)
        self._pos += fmt.size
        return values

    def read_u64(self) -> int:
        """Read a little-endian uint64."""
        if self._pos + 8 > len(self._buf):
            self._fill(8)
        (value,) = _U64.unpack_from(self._buf, self._pos)
        self._pos += 8
        return int(value)

    def read_string(self, *, limit: int = _MAX_KEPT_STRING) -> str | None:
        """Read a GGUF string; skip it and return None when longer than ``limit``."""
        length = self.read_u64()
        if length > self.remaining:
            raise self.make_truncated_error()
        if length > limit:
            self.skip(length)
            return None
        return self.read_bytes(length).decode("utf-8", errors="replace")

    def skip(self, n: int) -> None:
        """Skip ``n`` bytes, which must lie inside the file."""
        if n > self.remaining:
            raise self.make_truncated_error()
        if self._pos + n <= len(self._buf):
            self._pos += n
        else:
            self._buf_start = self.offset + n
            self._buf = b""
            self._pos = 0

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` consecutive GGUF strings, walking their lengths in the buffer.

        This is the hot loop of inspection (262k tokens for Gemma 3): locals only, one
        ``unpack_from`` per string, a refill once per megabyte.
        """
        unpack_from = _U64.unpack_from
        buf = self._buf
        pos = self._pos
        end = len(buf)
        for _ in range(count):
            if pos + 8 > end:
                self._pos = pos
                self._fill(8)
                buf, pos, end = self._buf, self._pos, len(self._buf)
            length = unpack_from(buf, pos)[0]
            pos += 8
            if pos + length > end:
                self._pos = pos
                self.skip(length)  # bounds-checked against the file, may drop the buffer
                buf, pos, end = self._buf, self._pos, len(self._buf)
            else:
                pos += length
        self._pos = pos


@dataclass
class _Header:
    """The raw parts of a GGUF header."""

    metadata: dict[str, object]
    array_lengths: dict[str, int]
    parameter_count: int
    elements_by_type: Counter[int]
    tensor_bytes: int = 0
    repackable_bytes: int = 0


def _read_header(reader: _Reader) -> _Header:
    """Read and check the whole header: key-values, tensor infos, data extent."""
    name = reader.name
    if reader.file_size == 0:
        raise ModelFileError(f"{name} is empty (0 bytes): it is not a GGUF model file.")
    if reader.file_size < 4:
        raise _make_not_gguf_error(name)
    magic = reader.read_bytes(4)
    if magic != _MAGIC:
        raise _make_wrong_magic_error(name, magic)
    if reader.file_size < _HEADER.size:
        raise reader.make_truncated_error()
    version = reader.read_u32()
    if version not in _SUPPORTED_VERSIONS:
        raise _make_version_error(name, version)
    tensor_count = reader.read_u64()
    kv_count = reader.read_u64()

    # Each key-value needs at least 8 (key length) + 4 (type) + 1 (value) bytes.
    if kv_count * 13 > reader.remaining:
        raise ModelFileError(
            f"{name} is damaged or truncated: its header claims {kv_count:,} metadata "
            f"entries but the file has only {reader.file_size:,} bytes. Download it again."
        )
    metadata: dict[str, object] = {}
    array_lengths: dict[str, int] = {}
    for _ in range(kv_count):
        key = reader.read_string(limit=_MAX_KEY_LENGTH)
        if key is None:
            raise reader.make_damaged_error("a metadata key is longer than 65535 bytes")
        value_type = reader.read_u32()
        value = _read_value(reader, key, value_type, array_lengths, depth=0)
        if value is not _SKIPPED:
            metadata[key] = value

    alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise reader.make_damaged_error(f"its tensor alignment ({alignment!r}) is not a power of two")

    # Each tensor info needs at least 8 (name length) + 4 + 4 + 8 bytes.
    if tensor_count * 24 > reader.remaining:
        raise ModelFileError(
            f"{name} is damaged or truncated: its header claims {tensor_count:,} tensors "
            f"but the file has only {reader.file_size:,} bytes. Download it again."
        )
    parameter_count = 0
    elements_by_type: Counter[int] = Counter()
    tensors_end = 0
    tensor_bytes = 0
    repackable_bytes = 0
    for _ in range(tensor_count):
        tensor_name = reader.read_string(limit=_MAX_KEY_LENGTH) or ""
        n_dims = reader.read_u32()
        if n_dims > _MAX_DIMS:
            raise reader.make_damaged_error(f"a tensor claims {n_dims} dimensions")
        dims = reader.read_u64s(n_dims)
        ggml_type = reader.read_u32()
        offset = reader.read_u64()
        n_elements = math.prod(dims)
        parameter_count += n_elements
        if n_dims >= 2:
            elements_by_type[ggml_type] += n_elements
        known = _GGML_TYPES.get(ggml_type)
        n_bytes = n_elements // known[1] * known[2] if known else 0
        tensors_end = max(tensors_end, offset + n_bytes)
        tensor_bytes += n_bytes
        if n_dims == 2 and ggml_type in _REPACKED_TYPES and not tensor_name.startswith("token_embd"):
            repackable_bytes += n_bytes

    data_start = -(-reader.offset // alignment) * alignment
    data_end = data_start + tensors_end if tensor_count else reader.offset
    if data_end > reader.file_size:
        raise ModelFileError(
            f"{name} is truncated: the file ends at byte {reader.file_size:,} but its "
            f"tensor data runs to byte {data_end:,}. Download it again."
        )
    return _Header(
        metadata=metadata,
        array_lengths=array_lengths,
        parameter_count=parameter_count,
        elements_by_type=elements_by_type,
        tensor_bytes=tensor_bytes,
        repackable_bytes=repackable_bytes,
    )


class _Skipped:
    """Marker for a value that was skipped rather than kept."""


_SKIPPED: Final = _Skipped()


def _read_value(
    reader: _Reader,
    key: str,
    value_type: int,
    array_lengths: dict[str, int],
    *,
    depth: int,
) -> object:
    """Read one metadata value; big arrays and huge strings come back as ``_SKIPPED``."""
    scalar = _SCALARS.get(value_type)
    if scalar is not None:
        return reader.unpack(scalar)[0]
    if value_type == _T_STRING:
        text = reader.read_string()
        return _SKIPPED if text is None else text
    if value_type != _T_ARRAY:
        raise reader.make_damaged_error(f"metadata key {key!r} has an unknown value type ({value_type})")
    if depth >= _MAX_NESTING:
        raise reader.make_damaged_error(f"metadata key {key!r} nests arrays too deeply")
    elem_type = reader.read_u32()
    count = reader.read_u64()
    if depth == 0:
        array_lengths[key] = count
    elem = _SCALARS.get(elem_type)
    if elem is not None:
        if count * elem.size > reader.remaining:
            raise reader.make_truncated_error()
        if count > SMALL_ARRAY_LIMIT:
            reader.skip(count * elem.size)
            return _SKIPPED
        values = reader.unpack(struct.Struct(f"<{count}{elem.format[1:]}"))
        return tuple(values)
    if elem_type not in (_T_STRING, _T_ARRAY):
        raise reader.make_damaged_error(f"metadata key {key!r} holds an array of unknown type ({elem_type})")
    # Strings take at least 8 bytes (their length), arrays at least 12.
    minimum = 8 if elem_type == _T_STRING else 12
    if count * minimum > reader.remaining:
        raise reader.make_truncated_error()
    if elem_type == _T_STRING and count > SMALL_ARRAY_LIMIT:
        reader.skip_strings(count)
        return _SKIPPED
    items = [_read_value(reader, key, elem_type, array_lengths, depth=depth + 1) for _ in range(count)]
    if count > SMALL_ARRAY_LIMIT or any(item is _SKIPPED for item in items):
        return _SKIPPED
    return tuple(items)


def _make_not_gguf_error(name: str) -> ModelFileError:
    """The error for a file that is not GGUF at all."""
    return ModelFileError(f"{name} is not a GGUF model file (it does not start with the GGUF signature).")


def _make_wrong_magic_error(name: str, magic: bytes) -> ModelFileError:
    """Say what the file is when its first bytes are a known pre-GGUF format."""
    # llama.cpp's formats before GGUF wrote their magic as a little-endian uint32.
    legacy = {b"lmgg": "GGML", b"fmgg": "GGMF", b"tjgg": "GGJT"}
    if magic in legacy:
        return ModelFileError(
            f"{name} is an old {legacy[magic]} model file from before GGUF; "
            "llama.cpp no longer reads it. Download a GGUF version of the model."
        )
    return _make_not_gguf_error(name)


def _make_version_error(name: str, version: int) -> ModelFileError:
    """The error for a GGUF version this reader does not support."""
    if version == 1:
        return ModelFileError(
            f"{name} uses GGUF version 1, which llama.cpp no longer reads. Download a newer conversion of the model."
        )
    swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
    if swapped in _SUPPORTED_VERSIONS:
        return ModelFileError(f"{name} is a big-endian GGUF file; Longread reads little-endian GGUF only.")
    return ModelFileError(
        f"{name} uses GGUF version {version}, which Longread does not support (it reads versions 2 and 3)."
    )


# --- interpreting ----------------------------------------------------------------------


def _build_info(path: Path, file_size: int, header: _Header) -> ModelInfo:
    """Turn the raw header into a ``ModelInfo``, checking the keys Longread needs."""
    meta = header.metadata
    name = path.name
    if meta.get("general.type") == "adapter":
        raise ModelFileError(f"{name} is a LoRA adapter, not a model: choose the model file.")
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelFileError(
            f"{name} does not say which model architecture it holds "
            "(general.architecture is missing), so it cannot be used."
        )
    if arch == "clip":
        raise ModelFileError(f"{name} is a vision projector (mmproj) file, not a language model.")

    def require_int(suffix: str, what: str) -> int:
        value = _find_int(meta.get(f"{arch}.{suffix}"))
        if value is None or value <= 0:
            raise ModelFileError(
                f"{name} does not record its {what} ({arch}.{suffix}); it is not a complete language model file."
            )
        return value

    n_layers = require_int("block_count", "number of layers")
    embedding_length = require_int("embedding_length", "embedding size")
    context_length = require_int("context_length", "context length")

    head_count = _expand_per_layer(meta.get(f"{arch}.attention.head_count"), n_layers)
    if head_count is None:
        head_count = (0,) * n_layers
    n_head = max(head_count, default=0)
    n_head_kv = _expand_per_layer(meta.get(f"{arch}.attention.head_count_kv"), n_layers)
    if n_head_kv is None:  # llama.cpp: n_head_kv defaults to n_head, layer by layer
        n_head_kv = head_count
    key_length = _find_int(meta.get(f"{arch}.attention.key_length"))
    if key_length is None:
        key_length = embedding_length // n_head if n_head else 0
    value_length = _find_int(meta.get(f"{arch}.attention.value_length"))
    if value_length is None:
        value_length = key_length

    window = _find_int(meta.get(f"{arch}.attention.sliding_window"))
    sliding_window = window if window else None
    pattern = _find_swa_pattern(meta.get(f"{arch}.attention.sliding_window_pattern"), arch, n_layers)
    if sliding_window is None:
        pattern = None

    general_name = meta.get("general.name")
    template = meta.get("tokenizer.chat_template")
    rope_scaling = meta.get(f"{arch}.rope.scaling.type")
    vocab_size = header.array_lengths.get("tokenizer.ggml.tokens")
    if vocab_size is None:
        vocab_size = _find_int(meta.get(f"{arch}.vocab_size")) or 0

    return ModelInfo(
        path=path,
        file_size=file_size,
        architecture=arch,
        name=general_name if isinstance(general_name, str) and general_name else path.stem,
        parameter_count=header.parameter_count,
        file_type=_find_file_type_name(meta.get("general.file_type"), header),
        context_length=context_length,
        n_layers=n_layers,
        n_head=n_head,
        n_head_kv=n_head_kv,
        key_length=key_length,
        value_length=value_length,
        embedding_length=embedding_length,
        sliding_window=sliding_window,
        sliding_window_pattern=pattern,
        chat_template=template if isinstance(template, str) else None,
        vocab_size=vocab_size,
        bos_token_id=_find_int(meta.get("tokenizer.ggml.bos_token_id")),
        eos_token_id=_find_int(meta.get("tokenizer.ggml.eos_token_id")),
        rope_scaling=rope_scaling if isinstance(rope_scaling, str) else None,
        metadata=MappingProxyType(meta),
        tensor_bytes=header.tensor_bytes,
        repackable_bytes=header.repackable_bytes,
        feed_forward_length=max(_expand_per_layer(meta.get(f"{arch}.feed_forward_length"), n_layers) or (0,)),
    )


def _find_int(value: object) -> int | None:
    """An integer metadata value, or None (bools and floats are not integers here)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _expand_per_layer(value: object, n_layers: int) -> tuple[int, ...] | None:
    """A scalar or per-layer array as one int per layer (None when absent or unusable).

    Like llama.cpp's ``get_key_or_arr``: a scalar applies to every layer; an array
    gives one value per layer (extra entries, e.g. for MTP layers, are ignored).
    """
    scalar = _find_int(value)
    if scalar is not None:
        return (scalar,) * n_layers
    if isinstance(value, tuple) and len(value) >= n_layers:
        items = [_find_int(v) for v in value[:n_layers]]
        if all(v is not None for v in items):
            return tuple(v for v in items if v is not None)
    return None


def _find_swa_pattern(value: object, arch: str, n_layers: int) -> tuple[bool, ...] | None:
    """Per-layer sliding-window flags, following llama.cpp (see the module docstring)."""
    period = _find_int(value)
    if period is None and isinstance(value, tuple) and len(value) >= n_layers:
        flags = value[:n_layers]
        if all(isinstance(f, (bool, int)) for f in flags):
            return tuple(bool(f) for f in flags)
    if period is None:
        period = _DEFAULT_SWA_PERIOD.get(arch)
    if period is None or period < 0:
        return None
    # llama_hparams::set_swa_pattern: period 0 = every layer slides; il % n < n - 1.
    return tuple(period == 0 or il % period < period - 1 for il in range(n_layers))


def _find_file_type_name(value: object, header: _Header) -> str:
    """The quantization name from general.file_type, else the dominant tensor type."""
    ftype = _find_int(value)
    if ftype is not None:
        name = _FILE_TYPES.get(ftype & ~_FTYPE_GUESSED)
        if name is not None:
            return name
    if header.elements_by_type:
        ggml_type = header.elements_by_type.most_common(1)[0][0]
        known = _GGML_TYPES.get(ggml_type)
        return known[0] if known else f"type {ggml_type}"
    return "unknown"


def _find_kv_type_bytes(cache_type: str) -> float:
    """Bytes per element of a KV cache type name ("f16", "q8_0", ...)."""
    try:
        return _KV_TYPE_BYTES[cache_type.lower()]
    except KeyError:
        known = ", ".join(_KV_TYPE_BYTES)
        raise ValueError(f"unknown KV cache type {cache_type!r} (known: {known})") from None
