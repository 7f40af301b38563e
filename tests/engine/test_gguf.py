"""GGUF inspection: real models give their known shapes; bad files give plain errors.

The real files come from the ``smollm2_path`` and ``gemma_path`` fixtures (the bundled
SmolLM2-135M-Instruct Q4_1 and Gemma 3 270M Q4_K_M). Edge cases use small GGUF files
written here by ``write_gguf``.
"""

from __future__ import annotations

import math
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.errors import ModelFileError
from engine.models.gguf import SMALL_ARRAY_LIMIT, ModelInfo, inspect_gguf

# --- a minimal GGUF writer for synthetic files -------------------------------------------

U32, I32, F32, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10


def pack_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def pack_value(value_type: int, value: object) -> bytes:
    if value_type == STRING:
        assert isinstance(value, str)
        return pack_string(value)
    if value_type == ARRAY:
        assert isinstance(value, tuple)
        elem_type, items = value
        return struct.pack("<IQ", elem_type, len(items)) + b"".join(pack_value(elem_type, item) for item in items)
    fmt = {U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q"}[value_type]
    return struct.pack(fmt, value)


def write_gguf(
    path: Path,
    kvs: list[tuple[str, int, object]],
    tensors: Sequence[tuple[str, tuple[int, ...], int]] = (),
    *,
    version: int = 3,
    data: bool = True,
) -> Path:
    """Write a GGUF file: key-values (key, type, value) and F32 tensors (name, dims)."""
    body = struct.pack("<4sIQQ", b"GGUF", version, len(tensors), len(kvs))
    for key, value_type, value in kvs:
        body += pack_string(key) + struct.pack("<I", value_type) + pack_value(value_type, value)
    offset = 0
    for name, dims, ggml_type in tensors:
        body += pack_string(name) + struct.pack(f"<I{len(dims)}QIQ", len(dims), *dims, ggml_type, offset)
        n = 1
        for d in dims:
            n *= d
        size = n * 4  # F32
        offset += -(-size // 32) * 32
    body += b"\0" * (-len(body) % 32)
    if data:
        body += b"\0" * offset
    path.write_bytes(body)
    return path


def llama_kvs(**overrides: tuple[int, object]) -> list[tuple[str, int, object]]:
    """Key-values of a tiny valid llama-architecture model."""
    kvs: dict[str, tuple[int, object]] = {
        "general.architecture": (STRING, "llama"),
        "general.name": (STRING, "Tiny"),
        "llama.block_count": (U32, 4),
        "llama.context_length": (U32, 2048),
        "llama.embedding_length": (U32, 256),
        "llama.attention.head_count": (U32, 8),
        "llama.attention.head_count_kv": (U32, 2),
        "general.file_type": (U32, 7),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, [f"t{i}" for i in range(3000)])),
        "tokenizer.ggml.scores": (ARRAY, (F32, [0.0] * 3000)),
        "tokenizer.ggml.bos_token_id": (U32, 1),
        "tokenizer.ggml.eos_token_id": (U32, 2),
    }
    kvs.update(overrides)
    return [(key, t, v) for key, (t, v) in kvs.items()]


TINY_TENSORS = [("token_embd.weight", (256, 3000), 0), ("output_norm.weight", (256,), 0)]


def copy_prefix(source: Path, target: Path, n_bytes: int) -> Path:
    with source.open("rb") as src, target.open("wb") as dst:
        dst.write(src.read(n_bytes))
    return target


# --- real models ---------------------------------------------------------------------------


def test_smollm2_shape(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)

    assert info.architecture == "llama"
    assert info.n_layers == 30
    assert info.n_head == 9
    assert info.n_head_kv == (3,) * 30
    assert info.key_length == info.value_length == 64
    assert info.embedding_length == 576
    assert info.context_length == 8192
    assert info.file_type == "Q4_1"
    assert info.vocab_size == 49152
    assert info.has_chat_template
    assert "<|im_start|>" in (info.chat_template or "")
    assert info.sliding_window is None
    assert info.sliding_window_pattern is None
    assert info.n_sliding_layers == 0
    assert 130_000_000 < info.parameter_count < 140_000_000
    assert info.bos_token_id == 1
    assert info.eos_token_id == 2
    assert info.file_size == smollm2_path.stat().st_size
    assert info.name


def test_gemma_shape(gemma_path: Path) -> None:
    info = inspect_gguf(gemma_path)

    assert info.architecture == "gemma3"
    assert info.n_layers == 18
    assert info.n_head_kv == (1,) * 18
    assert info.key_length == info.value_length == 256
    assert info.sliding_window == 512
    assert info.context_length == 32768
    assert info.file_type == "Q4_K_M"
    assert info.vocab_size == 262144
    assert not info.has_chat_template  # the base model, not instruction-tuned
    # llama.cpp's gemma3 pattern: every 6th layer (il % 6 == 5) attends to everything.
    assert info.sliding_window_pattern == tuple(il % 6 != 5 for il in range(18))
    assert info.n_sliding_layers == 15
    assert 260_000_000 < info.parameter_count < 280_000_000


def test_metadata_keeps_small_values_and_skips_big_arrays(gemma_path: Path) -> None:
    info = inspect_gguf(gemma_path)

    assert info.metadata["general.architecture"] == "gemma3"
    assert info.metadata["gemma3.attention.sliding_window"] == 512
    assert "tokenizer.ggml.tokens" not in info.metadata
    assert "tokenizer.ggml.scores" not in info.metadata
    for value in info.metadata.values():
        assert not isinstance(value, tuple) or len(value) <= SMALL_ARRAY_LIMIT


def test_smollm2_kv_bytes_per_token(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)

    # 2 (K and V) x 30 layers x 3 KV heads x 64 head dim x 2 bytes
    assert info.kv_bytes_per_token() == 2 * 30 * 3 * 64 * 2 == 23040
    assert info.kv_bytes_per_token("q8_0", "q8_0") == 23040 / 2 * 34 / 32
    assert info.kv_bytes_per_token("q4_0", "q4_0") == 23040 / 2 * 18 / 32
    assert info.kv_bytes_per_token("f16", "q8_0") == 30 * 3 * 64 * (2 + 34 / 32)
    # No sliding layers: the average over a window is the full figure.
    assert info.kv_bytes_per_token(n_ctx=4096) == 23040
    assert info.kv_cache_bytes(8192) == 23040 * 8192
    assert info.kv_cache_bytes(8192, swa_full=True) == 23040 * 8192


def test_gemma_kv_cache_counts_sliding_layers_at_their_window(gemma_path: Path) -> None:
    info = inspect_gguf(gemma_path)
    per_layer_cell = 1 * (256 * 2 + 256 * 2)  # one KV head of 256, f16

    assert info.kv_bytes_per_token() == 18 * per_layer_cell
    # llama.cpp's SWA cache: min(n_ctx, pad(512 + n_ubatch 512, 256)) = 1024 cells.
    expected = 3 * per_layer_cell * 32768 + 15 * per_layer_cell * 1024
    assert info.kv_cache_bytes(32768) == expected
    assert info.kv_bytes_per_token(n_ctx=32768) == expected / 32768
    assert info.kv_cache_bytes(32768, swa_full=True) == 18 * per_layer_cell * 32768
    # A window smaller than the SWA cache: every layer holds n_ctx cells.
    assert info.kv_cache_bytes(768) == 18 * per_layer_cell * 768
    # A saved sequence keeps only the last 512 tokens of the sliding-window layers.
    assert info.kv_state_bytes(32511) == 3 * per_layer_cell * 32511 + 15 * per_layer_cell * 512
    assert info.kv_state_bytes(300) == 18 * per_layer_cell * 300
    assert info.kv_state_bytes(32511, "q8_0", "q8_0") == math.ceil(info.kv_state_bytes(32511) * 34 / 64)


def test_unknown_kv_type_is_a_value_error(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    with pytest.raises(ValueError, match="q3_z"):
        info.kv_bytes_per_token("q3_z")


def test_model_info_is_frozen(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    with pytest.raises(AttributeError):
        info.n_layers = 1  # type: ignore[misc]
    assert isinstance(info, ModelInfo)


# --- files that are not usable models -------------------------------------------------------


def test_text_file_renamed_gguf_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("These are my notes, not a model.\n" * 10)

    with pytest.raises(ModelFileError, match=r"notes\.gguf is not a GGUF model file"):
        inspect_gguf(path)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")

    with pytest.raises(ModelFileError, match=r"empty.gguf is empty"):
        inspect_gguf(path)


def test_tiny_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "two.gguf"
    path.write_bytes(b"GG")

    with pytest.raises(ModelFileError, match="not a GGUF model file"):
        inspect_gguf(path)


@pytest.mark.parametrize("size", [1 << 20, None], ids=["1MB", "half"])
def test_truncated_smollm2_is_rejected(smollm2_path: Path, tmp_path: Path, size: int | None) -> None:
    n_bytes = size if size is not None else smollm2_path.stat().st_size // 2
    path = copy_prefix(smollm2_path, tmp_path / "model.gguf", n_bytes)

    with pytest.raises(ModelFileError, match="truncated") as caught:
        inspect_gguf(path)
    assert "model.gguf" in str(caught.value)
    assert f"{n_bytes:,}" in str(caught.value)


def test_file_one_byte_short_is_truncated(smollm2_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    shutil.copyfile(smollm2_path, path)
    with path.open("r+b") as handle:
        handle.truncate(smollm2_path.stat().st_size - 1)

    with pytest.raises(ModelFileError, match=r"truncated: .* tensor data"):
        inspect_gguf(path)


def test_header_only_prefix_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "short.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00")

    with pytest.raises(ModelFileError, match=r"short.gguf is truncated"):
        inspect_gguf(path)


def test_missing_file_and_folder_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"gone.gguf was not found"):
        inspect_gguf(tmp_path / "gone.gguf")
    folder = tmp_path / "folder.gguf"
    folder.mkdir()
    with pytest.raises(ModelFileError, match=r"folder.gguf"):
        inspect_gguf(folder)


@pytest.mark.parametrize(
    ("version", "message"),
    [(1, "version 1"), (4, "version 4"), (0x03000000, "big-endian")],
)
def test_unsupported_versions_are_rejected(tmp_path: Path, version: int, message: str) -> None:
    path = write_gguf(tmp_path / "v.gguf", llama_kvs(), TINY_TENSORS, version=version)

    with pytest.raises(ModelFileError, match=message):
        inspect_gguf(path)


def test_legacy_ggjt_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    path.write_bytes(struct.pack("<I", 0x67676A74) + b"\0" * 100)

    with pytest.raises(ModelFileError, match="old GGJT model"):
        inspect_gguf(path)


# --- synthetic files: parsing rules and guards ------------------------------------------------


def test_synthetic_model_parses(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf", llama_kvs(), TINY_TENSORS)
    info = inspect_gguf(path)

    assert info.name == "Tiny"
    assert info.vocab_size == 3000
    assert info.n_head_kv == (2, 2, 2, 2)
    assert info.key_length == info.value_length == 256 // 8
    assert info.parameter_count == 256 * 3000 + 256
    assert info.file_type == "Q8_0"
    assert info.bos_token_id == 1
    assert info.eos_token_id == 2
    assert not info.has_chat_template
    assert "tokenizer.ggml.tokens" not in info.metadata
    assert info.tensor_bytes == (256 * 3000 + 256) * 4  # F32
    assert info.repackable_bytes == 0


def test_tensor_bytes_and_repackable_matrices(smollm2_path: Path, gemma_path: Path) -> None:
    smol, gemma = inspect_gguf(smollm2_path), inspect_gguf(gemma_path)

    for info in (smol, gemma):
        header = info.file_size - info.tensor_bytes
        assert 0 < header < 8 << 20  # key-values and tensor infos: the vocabulary, not weights
    # SmolLM2 is Q4_1 with a Q8_0 embedding (read by row): nothing for ggml-cpu to repack.
    assert smol.repackable_bytes == 0
    # Gemma's Q4_K layer matrices can be repacked; its big embedding cannot.
    assert 0 < gemma.repackable_bytes < gemma.tensor_bytes // 4
    assert (smol.feed_forward_length, gemma.feed_forward_length) == (1536, 2048)


def test_name_falls_back_to_stem_and_file_type_to_tensor_types(tmp_path: Path) -> None:
    kvs = [kv for kv in llama_kvs() if kv[0] not in ("general.name", "general.file_type")]
    info = inspect_gguf(write_gguf(tmp_path / "my-model.gguf", kvs, TINY_TENSORS))

    assert info.name == "my-model"
    assert info.file_type == "F32"


def test_small_arrays_are_kept_and_per_layer_heads_read(tmp_path: Path) -> None:
    kvs = llama_kvs(
        **{
            "llama.attention.head_count_kv": (ARRAY, (I32, [2, 0, 4, 2])),
            "llama.attention.head_count": (ARRAY, (I32, [8, 8, 16, 8])),
            "general.tags": (ARRAY, (STRING, ["a", "b"])),
        }
    )
    info = inspect_gguf(write_gguf(tmp_path / "t.gguf", kvs, TINY_TENSORS))

    assert info.n_head_kv == (2, 0, 4, 2)
    assert info.n_head == 16
    assert info.metadata["general.tags"] == ("a", "b")
    assert info.kv_bytes_per_token() == (2 + 0 + 4 + 2) * (16 * 2 * 2)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ((U32, 3), (True, True, False, True)),
        ((ARRAY, (BOOL, [True, False, False, True])), (True, False, False, True)),
        ((U32, 0), (True, True, True, True)),
    ],
)
def test_explicit_sliding_window_pattern(
    tmp_path: Path, pattern: tuple[int, object], expected: tuple[bool, ...]
) -> None:
    kvs = llama_kvs(
        **{
            "llama.attention.sliding_window": (U32, 128),
            "llama.attention.sliding_window_pattern": pattern,
        }
    )
    info = inspect_gguf(write_gguf(tmp_path / "t.gguf", kvs, TINY_TENSORS))

    assert info.sliding_window == 128
    assert info.sliding_window_pattern == expected
    assert info.n_sliding_layers == sum(expected)


def test_window_without_pattern_on_llama_is_ignored(tmp_path: Path) -> None:
    kvs = llama_kvs(**{"llama.attention.sliding_window": (U32, 4096)})
    info = inspect_gguf(write_gguf(tmp_path / "t.gguf", kvs, TINY_TENSORS))

    assert info.sliding_window == 4096
    assert info.sliding_window_pattern is None
    assert info.kv_cache_bytes(8192) == info.kv_bytes_per_token() * 8192


def test_absurd_string_length_is_rejected_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    header = struct.pack("<4sIQQ", b"GGUF", 3, 0, 1)
    path.write_bytes(header + struct.pack("<Q", 1 << 60) + b"general.name")

    with pytest.raises(ModelFileError, match=r"bad.gguf is truncated"):
        inspect_gguf(path)


def test_absurd_counts_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(struct.pack("<4sIQQ", b"GGUF", 3, 0, 1 << 62) + b"\0" * 64)
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        inspect_gguf(path)

    array_kv = pack_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, 1 << 50)
    path.write_bytes(struct.pack("<4sIQQ", b"GGUF", 3, 0, 1) + array_kv + b"\0" * 64)
    with pytest.raises(ModelFileError, match="truncated"):
        inspect_gguf(path)


def test_unknown_value_type_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    kv = pack_string("general.name") + struct.pack("<I", 99) + b"\0" * 16
    path.write_bytes(struct.pack("<4sIQQ", b"GGUF", 3, 0, 1) + kv)

    with pytest.raises(ModelFileError, match=r"damaged: .*unknown value type"):
        inspect_gguf(path)


def test_missing_tensor_data_is_truncated(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "t.gguf", llama_kvs(), TINY_TENSORS, data=False)

    with pytest.raises(ModelFileError, match=r"t.gguf is truncated: .* tensor data"):
        inspect_gguf(path)


def test_missing_hyperparameters_are_rejected(tmp_path: Path) -> None:
    kvs = [kv for kv in llama_kvs() if kv[0] != "llama.block_count"]
    with pytest.raises(ModelFileError, match=r"number of layers \(llama.block_count\)"):
        inspect_gguf(write_gguf(tmp_path / "a.gguf", kvs, TINY_TENSORS))

    kvs = [kv for kv in llama_kvs() if kv[0] != "general.architecture"]
    with pytest.raises(ModelFileError, match=r"general.architecture is missing"):
        inspect_gguf(write_gguf(tmp_path / "b.gguf", kvs, TINY_TENSORS))


def test_adapter_and_projector_are_named(tmp_path: Path) -> None:
    kvs = llama_kvs(**{"general.type": (STRING, "adapter")})
    with pytest.raises(ModelFileError, match="LoRA adapter"):
        inspect_gguf(write_gguf(tmp_path / "lora.gguf", kvs, TINY_TENSORS))

    kvs = llama_kvs(**{"general.architecture": (STRING, "clip")})
    with pytest.raises(ModelFileError, match="mmproj"):
        inspect_gguf(write_gguf(tmp_path / "mmproj.gguf", kvs, TINY_TENSORS))
