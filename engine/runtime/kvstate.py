"""llama.cpp's sequence-state bytes, read and written in Python: cut a position range out
of a sequence's KV cache (issue 17: a document's snapshot, loaded alone to be composed).

``llama_state_seq_get_data`` writes one sequence of a KV cache as (llama.cpp
``llama_kv_cache::state_write``; the vendored build of llama-cpp-python 0.3.36 adds an
8-byte header, kept as it is)::

    header (8 bytes) | n_stream u32 (1) | cell_count u32
    cell_count x (pos i32, n_seq_id u32 (1), seq_id i32)
    v_trans u32 | n_layer u32
    n_layer x (k_type i32, k_row_size u64, cell_count rows of K)
    not v_trans: n_layer x (v_type i32, v_row_size u64, cell_count rows of V)
    v_trans:     n_layer x (v_type i32, v_el_size u32, n_embd_v u32, n_embd_v x cell_count elements)

K rows are stored after RoPE: moving cells to other positions is llama.cpp's job
(``llama_memory_seq_add``, which rotates K again), never this module's. This module only
cuts cells; it imports no ``llama_cpp`` (engine/runtime/llama.py does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from engine.errors import GenerationError

HEADER_BYTES = 8
_CELL = np.dtype([("pos", "<i4"), ("n_seq", "<u4"), ("seq", "<i4")])


@dataclass(frozen=True)
class SeqState:
    """One sequence's KV cells: positions and, per layer, K and V bytes per cell.

    ``k[layer]`` is (cells, row bytes); ``v[layer]`` is (cells, row bytes) or, when
    ``v_trans``, (embedding, cells x element bytes).
    """

    header: bytes
    pos: np.ndarray
    v_trans: bool
    k_meta: tuple[tuple[int, int], ...]
    k: tuple[np.ndarray, ...]
    v_meta: tuple[tuple[int, ...], ...]
    v: tuple[np.ndarray, ...]

    @property
    def n_cells(self) -> int:
        return int(self.pos.shape[0])

    def _v_el(self, layer: int) -> int:
        return self.v_meta[layer][1]

    def take(self, index: np.ndarray) -> SeqState:
        """The cells at ``index`` (cell numbers), in that order."""
        k = tuple(a[index] for a in self.k)
        if self.v_trans:
            v = []
            for layer, a in enumerate(self.v):
                el = self._v_el(layer)
                per_cell = a.reshape(a.shape[0], self.n_cells, el)
                v.append(per_cell[:, index, :].reshape(a.shape[0], len(index) * el))
            vs = tuple(v)
        else:
            vs = tuple(a[index] for a in self.v)
        return SeqState(self.header, self.pos[index].copy(), self.v_trans, self.k_meta, k, self.v_meta, vs)

    def positions(self, start: int, end: int) -> SeqState:
        """The cells at positions ``[start, end)``, in position order.

        Raises:
            GenerationError: a position in the range is missing or held twice.
        """
        index = np.nonzero((self.pos >= start) & (self.pos < end))[0]
        index = index[np.argsort(self.pos[index], kind="stable")]
        if not np.array_equal(self.pos[index], np.arange(start, end, dtype=self.pos.dtype)):
            raise GenerationError(f"The context does not hold positions {start:,} to {end:,} once each.")
        return self.take(index)

    def to_bytes(self) -> bytes:
        """The bytes ``llama_state_seq_set_data`` reads back."""
        out = [self.header, struct.pack("<II", 1, self.n_cells)]
        cells = np.zeros(self.n_cells, dtype=_CELL)
        cells["pos"] = self.pos
        cells["n_seq"] = 1
        out.append(cells.tobytes())
        out.append(struct.pack("<II", int(self.v_trans), len(self.k)))
        for (k_type, row), a in zip(self.k_meta, self.k, strict=True):
            out.append(struct.pack("<iQ", k_type, row))
            out.append(a.tobytes())
        for meta, a in zip(self.v_meta, self.v, strict=True):
            out.append(struct.pack("<iII", *meta) if self.v_trans else struct.pack("<iQ", *meta))
            out.append(a.tobytes())
        return b"".join(out)


def parse(data: bytes) -> SeqState:
    """Read one sequence's state bytes.

    Raises:
        GenerationError: not the layout above (another llama.cpp, several streams, a
            cell shared by several sequences, or cut short).
    """
    try:
        return _parse(memoryview(data))
    except (struct.error, ValueError, IndexError) as exc:
        raise GenerationError(f"The KV cache's saved state has a layout this version cannot read ({exc}).") from exc


def _parse(buf: memoryview) -> SeqState:
    header = bytes(buf[:HEADER_BYTES])
    off = HEADER_BYTES
    n_stream, n = struct.unpack_from("<II", buf, off)
    off += 8
    if n_stream != 1:
        raise ValueError(f"{n_stream} streams")
    cells = np.frombuffer(buf, dtype=_CELL, count=n, offset=off)
    off += cells.nbytes
    if n and (np.any(cells["n_seq"] != 1)):
        raise ValueError("cells shared by several sequences")
    v_trans, n_layer = struct.unpack_from("<II", buf, off)
    off += 8
    k_meta, k = [], []
    for _ in range(n_layer):
        k_type, row = struct.unpack_from("<iQ", buf, off)
        off += 12
        k.append(np.frombuffer(buf, dtype=np.uint8, count=n * row, offset=off).reshape(n, row))
        off += n * row
        k_meta.append((k_type, row))
    v_meta: list[tuple[int, ...]] = []
    v = []
    for _ in range(n_layer):
        if v_trans:
            v_type, el, embd = struct.unpack_from("<iII", buf, off)
            off += 12
            size = embd * n * el
            v.append(np.frombuffer(buf, dtype=np.uint8, count=size, offset=off).reshape(embd, n * el))
            v_meta.append((v_type, el, embd))
        else:
            v_type, row = struct.unpack_from("<iQ", buf, off)
            off += 12
            size = n * row
            v.append(np.frombuffer(buf, dtype=np.uint8, count=size, offset=off).reshape(n, row))
            v_meta.append((v_type, row))
        off += size
    if off != len(buf):
        raise ValueError(f"{len(buf) - off} bytes left over")
    return SeqState(header, cells["pos"].copy(), bool(v_trans), tuple(k_meta), tuple(k), tuple(v_meta), tuple(v))
