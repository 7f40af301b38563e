"""Split a real GGUF into parts the way llama.cpp's gguf-split does, for the tests.

Part 1 keeps every key-value of the original plus ``split.no`` (u16), ``split.count`` (u16)
and ``split.tensors.count`` (i32); later parts carry only those three. Each part holds
a run of whole tensors, their data copied byte for byte (offsets rebased, alignment kept),
and is named ``<prefix>-0000K-of-0000N.gguf``: llama.cpp loads the model from part 1.
"""

from __future__ import annotations

import struct
from pathlib import Path

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _skip_value(data: bytes, pos: int, value_type: int) -> int:
    if value_type == 8:
        (length,) = struct.unpack_from("<Q", data, pos)
        return pos + 8 + length
    if value_type == 9:
        elem_type, count = struct.unpack_from("<IQ", data, pos)
        pos += 12
        if elem_type in _SCALAR_SIZES:
            return pos + count * _SCALAR_SIZES[elem_type]
        for _ in range(count):
            pos = _skip_value(data, pos, elem_type)
        return pos
    return pos + _SCALAR_SIZES[value_type]


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _split_kvs(index: int, count: int, n_tensors: int) -> bytes:
    return (
        _string("split.no")
        + struct.pack("<IH", 2, index)
        + _string("split.count")
        + struct.pack("<IH", 2, count)
        + _string("split.tensors.count")
        + struct.pack("<Ii", 5, n_tensors)
    )


def split_gguf(source: Path, folder: Path, prefix: str, n_parts: int) -> list[Path]:
    """Write ``source`` as ``n_parts`` files in ``folder``; return their paths in order."""
    data = source.read_bytes()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", data, 0)
    assert magic == b"GGUF"
    pos = 24
    kv_start = pos
    alignment = 32
    for _ in range(n_kv):
        (key_len,) = struct.unpack_from("<Q", data, pos)
        key = data[pos + 8 : pos + 8 + key_len].decode()
        pos += 8 + key_len
        (value_type,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", data, pos)
        pos = _skip_value(data, pos, value_type)
    kv_raw = data[kv_start:pos]
    tensors = []  # (name bytes incl. length, dims+type bytes, offset)
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<Q", data, pos)
        name = data[pos : pos + 8 + name_len]
        pos += 8 + name_len
        (n_dims,) = struct.unpack_from("<I", data, pos)
        shape = data[pos : pos + 4 + 8 * n_dims + 4]
        pos += 4 + 8 * n_dims + 4
        (offset,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        tensors.append((name, shape, offset))
    data_start = -(-pos // alignment) * alignment
    ordered = sorted(tensors, key=lambda t: t[2])
    ends = [t[2] for t in ordered[1:]] + [len(data) - data_start]
    blobs = [
        (name, shape, data[data_start + off : data_start + end])
        for (name, shape, off), end in zip(ordered, ends, strict=True)
    ]
    per_part = -(-len(blobs) // n_parts)
    paths = []
    for index in range(n_parts):
        chunk = blobs[index * per_part : (index + 1) * per_part]
        kvs = (kv_raw if index == 0 else b"") + _split_kvs(index, n_parts, n_tensors)
        head = struct.pack("<4sIQQ", b"GGUF", version, len(chunk), (n_kv if index == 0 else 0) + 3) + kvs
        offset = 0
        infos = b""
        for name, shape, blob in chunk:
            infos += name + shape + struct.pack("<Q", offset)
            offset += len(blob)
        body = head + infos
        body += b"\0" * (-len(body) % alignment)
        path = folder / f"{prefix}-{index + 1:05d}-of-{n_parts:05d}.gguf"
        with path.open("wb") as fh:
            fh.write(body)
            for _, _, blob in chunk:
                fh.write(blob)
        paths.append(path)
    return paths
