"""Warm corpora: KV snapshots of a processed corpus saved to disk, so it is never read twice.

The snapshot cache sits above the runtime: it asks a ``Model`` (engine/runtime/backend.py)
to save, load and check its sequence, and works the same with llama.cpp, a fake or a
future server backend.

Contract:
- A snapshot is the KV cache of a corpus prefix (``prompt.tokens[:corpus_end]``) written
  with the model's sequence-state file (``Model.save_sequence``; llama.cpp writes its
  cache straight to disk, no logits copy). The file holds
  every corpus token but the last; restoring evaluates that last token again, which
  both completes the corpus and yields the next-token logits, compared with the ones
  recorded when the snapshot was made.
- The cold path reloads the file it just wrote before evaluating the last token, exactly
  as a restore does. Measured on Gemma 3 (768 tokens): a context restored from a file
  whose bytes equal the original's still gave logits up to 0.96 apart from the context
  that wrote it (llama.cpp's in-memory cache layout is not all in the file). Reloading
  makes cold and warm the same computation: the same greedy answer, token for token.
- A snapshot is found only by its fingerprint (``SnapshotKey.fingerprint``): model file
  sha256, window, K and V types, flash attention, sliding-window mode, the runtime's
  version (``Model.runtime_version``: llama-cpp-python's) and the sha256 of the corpus
  tokens. llama.cpp checks none of this, so a
  snapshot made with other settings or another model is never looked up.
- Before a restore the file's size and crc32 are checked; after it, the tokens, the
  context length and the logits. Any failure raises ``SnapshotInvalid`` after removing
  the file and its row and emptying the context: the caller prefills cold and rebuilds
  it, with the reason as a visible notice. A damaged snapshot never answers.
- Files are written to a temporary name and renamed, so a crash leaves no half file
  under a real name; the row is written after the rename.
- The folder's total size is kept under a budget (``SnapshotCache.budget_bytes``),
  evicting the least recently used first. Default: the smaller of 10 GB and 20% of
  the disk space free for snapshots (free space plus what snapshots already use), so a
  nearly full disk is never filled by a cache. 10 GB holds about 60 corpora of 8k
  tokens on SmolLM2, or one 100k-token corpus on an 8B model with a q8_0 cache.
- Per-document snapshots (issue 17, engine/compose.py composes them) share the folder,
  the table (``kind = 'document'``), the budget and the LRU order. A document's key is
  the same key with ``n_ctx = 0`` (a document's cells do not depend on the window, and
  one document opened inside corpora of other sizes must find its snapshot) and the
  sha256 of the document's laid-out tokens. Its file (``Model.save_range``) holds the
  tokens and their cells at the positions they were read at. Before use its size and
  crc32 are checked, and the tokens by the runtime when it loads them; a damaged one is
  removed and the document read again in place, never used.
- Only the runtime interface is used here: no ``llama_cpp``, no ``engine.runtime.llama``.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import shutil
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError, GenerationError
from engine.runtime.backend import CancelFn, Model, PrefillProgress, PrefillStats, ProgressFn
from engine.store import Store

SNAPSHOT_DIR = "snapshots"
SUFFIX = ".kv"
DEFAULT_BUDGET_CAP = 10_000_000_000
DEFAULT_BUDGET_SHARE = 0.20
BUDGET_SETTING = "budget_bytes"
# Below this a cold prefill is quicker than the bookkeeping; not worth a file.
MIN_SNAPSHOT_TOKENS = 64
CHECK_TOP_K = 8
# The restore path and the cold path compute the last token identically, so logits
# match exactly with the same thread count; other thread counts can move them by a
# rounding error. A wrong cache moves them by whole units.
CHECK_TOLERANCE = 0.1


class SnapshotInvalid(EngineError):
    """A snapshot that cannot be used (missing, damaged, stale); already removed."""


def _now() -> str:
    # Microseconds: LRU order must not tie within one second.
    return datetime.now(UTC).isoformat(timespec="microseconds")


def hash_tokens(tokens: Sequence[int]) -> str:
    """Return the sha256 of a token sequence (int32, native order)."""
    return hashlib.sha256(array.array("i", tokens).tobytes()).hexdigest()


@dataclass(frozen=True)
class SnapshotKey:
    """Everything that makes a snapshot file valid for a context."""

    model_sha256: str
    n_ctx: int
    type_k: str
    type_v: str
    flash_attn: bool
    swa_full: bool
    llama_cpp_version: str
    tokens_sha256: str
    n_tokens: int

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def make_key(
    model: Model, *, model_sha256: str, corpus: Sequence[int], swa_full: bool, document: bool = False
) -> SnapshotKey:
    """Return the key of the snapshot of ``corpus`` (the corpus prefix tokens) in ``model``;
    with ``document``, of one document's tokens (``n_ctx`` 0: any window)."""
    return SnapshotKey(
        model_sha256=model_sha256,
        n_ctx=0 if document else model.n_ctx,
        type_k=str(model.kv_type),
        type_v=str(model.kv_type),
        flash_attn=model.flash_attn,
        swa_full=swa_full,
        llama_cpp_version=model.runtime_version,
        tokens_sha256=hash_tokens(corpus),
        n_tokens=len(corpus),
    )


@dataclass(frozen=True)
class SnapshotInfo:
    """A stored snapshot, as listed to the user."""

    key: str
    path: Path
    model_name: str
    n_ctx: int
    kv_type: str
    n_tokens: int
    size_bytes: int
    prefill_s: float
    created_at: str
    last_used_at: str
    kind: str = "corpus"
    label: str = ""


@dataclass(frozen=True)
class WarmStart:
    """How the corpus got into the context for one turn.

    ``source`` is ``"context"`` (already there: a follow-up), ``"snapshot"`` (restored
    from disk in ``restore_s``; ``cold_prefill_s`` is what reading it took when the
    snapshot was made), ``"composed"`` (assembled from ``documents`` per-document
    snapshots in ``restore_s``, ``reread_tokens`` evaluated again; ``cold_prefill_s`` is
    the estimated cold read: engine/compose.py) or ``"prefill"`` (read now; ``saved``
    says whether a snapshot was written). ``notice`` is a sentence for the user, e.g.
    why a snapshot was rebuilt or a composition fell back to a cold read. ``assembled``:
    the documents in the context were assembled from their snapshots (``"composed"``, or
    ``"context"`` when an earlier question assembled them): close to a cold read, not it.
    """

    source: str
    corpus_tokens: int
    restore_s: float = 0.0
    cold_prefill_s: float | None = None
    snapshot_bytes: int = 0
    saved: bool = False
    notice: str | None = None
    restored_tokens: int = 0  # a shorter prefix restored first (the corpus, before its memory)
    documents: int = 0  # composed: how many documents came from their own snapshots (issue 17)
    reread_tokens: int = 0  # composed: tokens read again in place
    assembled: bool = False  # the documents' cells came from their snapshots: composed now, or before (a follow-up)

    @property
    def restored(self) -> bool:
        return self.source == "snapshot"

    @property
    def composed(self) -> bool:
        return self.source == "composed"

    def describe_composition(self) -> str:
        """The answer line's words, e.g. "assembled from 10 documents' snapshots in
        0.9 s (2,400 tokens read again) instead of 9 min"."""
        from engine.units import format_duration

        docs = f"{self.documents} document{'s' if self.documents != 1 else ''}'"
        took = f"{self.restore_s:.1f}" if self.restore_s >= 0.1 else f"{self.restore_s:.2f}"
        cold = f" instead of about {format_duration(self.cold_prefill_s)}" if self.cold_prefill_s else ""
        return f"assembled from {docs} snapshots in {took} s ({self.reread_tokens:,} tokens read again){cold}"


def crc32_file(path: Path) -> str:
    """Return the crc32 of a file as 8 hex digits (about 2 GB/s: restore stays quick)."""
    crc = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            crc = zlib.crc32(block, crc)
    return f"{crc:08x}"


def logits_check(logits: np.ndarray) -> dict[str, list[Any]]:
    """Return the top logits (ids and values) that a restore must reproduce."""
    top = np.argsort(logits)[::-1][:CHECK_TOP_K]
    return {"ids": [int(i) for i in top], "logits": [round(float(logits[i]), 4) for i in top]}


def logits_match(check: dict[str, list[Any]], logits: np.ndarray) -> bool:
    """True when ``logits`` have the recorded argmax and the recorded top values."""
    ids = check["ids"]
    if not ids or int(np.argmax(logits)) != ids[0]:
        return False
    got = logits[np.asarray(ids, dtype=np.int64)]
    return bool(np.max(np.abs(got - np.asarray(check["logits"]))) <= CHECK_TOLERANCE)


class SnapshotCache:
    """The snapshot folder and its rows in the store. One thread at a time.

    Args:
        store: where rows and the budget setting live.
        folder: the snapshot folder (default: the data folder's ``snapshots``).
    """

    def __init__(self, store: Store, folder: Path | None = None) -> None:
        if folder is None:
            from engine.config import data_dir

            folder = data_dir() / SNAPSHOT_DIR
        self.store = store
        self.folder = folder

    # -- the user's view ---------------------------------------------------------

    def list_snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, most recently used first."""
        return [self._info(r) for r in self.store.list_snapshots()]

    def total_bytes(self) -> int:
        """The size of every snapshot together."""
        return sum(s.size_bytes for s in self.list_snapshots())

    def clear(self) -> int:
        """Delete every snapshot (and stray files in the folder), and the notes waves kept
        for reuse (``Store.clear_wave_notes``): after it, every question reads its pages
        again. Returns bytes freed."""
        self.store.clear_wave_notes()
        freed = 0
        for info in self.list_snapshots():
            freed += info.size_bytes
            self._remove(info.key, info.path)
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.suffix in (SUFFIX, ".tmp") and path.is_file():
                    freed += path.stat().st_size
                    path.unlink(missing_ok=True)
        return freed

    @property
    def budget_bytes(self) -> int:
        """The cap on the folder's total size: the user's setting or the default."""
        value = self.store.get_snapshot_setting(BUDGET_SETTING)
        return int(value) if value else self.default_budget_bytes()

    def set_budget_bytes(self, value: int | None) -> None:
        """Set the cap (``None``: back to the default) and evict down to it.

        Raises:
            ValueError: a negative value (a bug in the caller).
        """
        if value is not None and value < 0:
            raise ValueError("the snapshot budget cannot be negative")
        self.store.put_snapshot_setting(BUDGET_SETTING, None if value is None else str(value))
        self.evict()

    def default_budget_bytes(self) -> int:
        """The smaller of 10 GB and 20% of the space snapshots could use."""
        probe = self.folder if self.folder.exists() else self.folder.parent
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            return DEFAULT_BUDGET_CAP
        return int(min(DEFAULT_BUDGET_CAP, DEFAULT_BUDGET_SHARE * (free + self.total_bytes())))

    def evict(self, *, keep: str | None = None) -> list[SnapshotInfo]:
        """Delete least recently used snapshots until the total fits the budget.

        Args:
            keep: a key never evicted (the snapshot just written; it is removed only
                if it alone exceeds the budget).

        Returns:
            the snapshots deleted.
        """
        budget = self.budget_bytes
        snaps = self.list_snapshots()
        total = sum(s.size_bytes for s in snaps)
        gone = []
        for info in sorted(snaps, key=lambda s: (s.key == keep, s.last_used_at)):  # documents too
            if total <= budget:
                break
            self._remove(info.key, info.path)
            total -= info.size_bytes
            gone.append(info)
        return gone

    # -- restore and save --------------------------------------------------------

    def find(self, key: SnapshotKey) -> SnapshotInfo | None:
        row = self.store.get_snapshot(key.fingerprint)
        return self._info(row) if row else None

    def find_windows(
        self, *, model_sha256: str, kv_type: str, corpus: Sequence[int], runtime_version: str | None = None
    ) -> list[int]:
        """The windows (n_ctx) that hold a snapshot of ``corpus`` for this model and KV
        type, so an automatic window can pick one and restore instead of prefilling.

        Args:
            runtime_version: the runtime that will restore (``Backend.version``); None
                lists every version's windows (a restore still checks the whole key, so
                a stale one is read cold, never used).
        """
        rows = self.store.list_snapshots(tokens_sha256=hash_tokens(corpus))
        return sorted(
            {
                int(r["n_ctx"])
                for r in rows
                if r["model_sha256"] == model_sha256
                and r.get("kind", "corpus") == "corpus"
                and r["type_k"] == kv_type
                and (runtime_version is None or r["llama_cpp_version"] == runtime_version)
                and r["n_tokens"] == len(corpus)
            }
        )

    def restore(self, model: Model, key: SnapshotKey, corpus: Sequence[int]) -> tuple[SnapshotInfo, PrefillStats]:
        """Make ``model``'s context hold ``corpus`` from its snapshot, and prove it.

        Returns:
            the snapshot used and the stats of the one-token check evaluation.

        Raises:
            SnapshotInvalid: no usable snapshot (it has been removed, the context emptied).
        """
        row = self.store.get_snapshot(key.fingerprint)
        if row is None:
            raise SnapshotInvalid("There is no snapshot of this corpus for these settings.")
        info = self._info(row)
        expected = {k: v for k, v in asdict(key).items() if k != "tokens_sha256" and k != "n_tokens"}
        recorded = {k: (bool(row[k]) if isinstance(v, bool) else row[k]) for k, v in expected.items()}
        if recorded != expected or row["tokens_sha256"] != key.tokens_sha256 or row["n_tokens"] != len(corpus):
            self._remove(info.key, info.path)
            raise SnapshotInvalid("The saved corpus snapshot was made with other settings; reading it again.")
        path = info.path
        try:
            size = path.stat().st_size
        except OSError:
            self._remove(info.key, path)
            raise SnapshotInvalid("The saved corpus snapshot is missing; reading the corpus again.") from None
        if size != info.size_bytes or crc32_file(path) != row["checksum"]:
            self._remove(info.key, path)
            raise SnapshotInvalid("The saved corpus snapshot was damaged (checksum mismatch); reading it again.")
        try:
            loaded = model.load_sequence(path, max_tokens=len(corpus) - 1)
        except GenerationError as exc:
            self._remove(info.key, path)
            raise SnapshotInvalid(f"The saved corpus snapshot could not be loaded ({exc}); reading it again.") from exc
        if loaded != list(corpus[:-1]):
            model.clear()
            self._remove(info.key, path)
            raise SnapshotInvalid("The saved corpus snapshot holds other tokens; reading the corpus again.")
        stats = model.prefill(corpus)  # the last corpus token: completes the corpus, gives the logits
        if stats.evaluated != 1 or not logits_match(json.loads(row["check"]), model.last_logits()):
            model.clear()
            self._remove(info.key, path)
            raise SnapshotInvalid("The saved corpus snapshot did not reproduce the model's output; reading it again.")
        self.store.touch_snapshot(info.key, _now())
        return info, stats

    def write_pending(self, model: Model, key: SnapshotKey, *, estimate_bytes: int) -> Path | None:
        """Write the context (the corpus but its last token) to a temporary file and
        reload the context from it (see the module doc: cold == warm).

        Returns:
            the temporary file, or ``None`` when it would not fit the budget or the disk
            (the context is then untouched).

        Raises:
            GenerationError: the runtime could not write or reload it (the temporary file
                is removed; the context may be empty: read the corpus again).
        """
        if model.n_tokens != key.n_tokens - 1:
            raise ValueError("the context must hold the corpus but its last token")
        if estimate_bytes > self.budget_bytes:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        if estimate_bytes > shutil.disk_usage(self.folder).free:
            return None
        tmp = self.folder / f"{key.fingerprint[:32]}.{os.getpid()}.tmp"
        expected = model.context_tokens
        try:
            model.save_sequence(tmp)
            if model.load_sequence(tmp, max_tokens=len(expected)) != expected:
                model.clear()
                raise GenerationError("the snapshot did not reload the tokens it saved")
        except GenerationError:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def commit(
        self,
        tmp: Path,
        key: SnapshotKey,
        *,
        model_name: str,
        logits: np.ndarray | None,
        prefill_s: float,
        kind: str = "corpus",
        label: str = "",
    ) -> SnapshotInfo | None:
        """Give a pending file its real name, record it, and evict down to the budget.

        Returns:
            the snapshot, or ``None`` when it alone exceeds the budget (then deleted).
        """
        path = self.folder / f"{key.fingerprint[:32]}{SUFFIX}"
        size = tmp.stat().st_size
        checksum = crc32_file(tmp)
        os.replace(tmp, path)
        now = _now()
        self.store.put_snapshot(
            {
                "key": key.fingerprint,
                "file": path.name,
                "model_sha256": key.model_sha256,
                "model_name": model_name,
                "n_ctx": key.n_ctx,
                "type_k": key.type_k,
                "type_v": key.type_v,
                "flash_attn": int(key.flash_attn),
                "swa_full": int(key.swa_full),
                "llama_cpp_version": key.llama_cpp_version,
                "tokens_sha256": key.tokens_sha256,
                "n_tokens": key.n_tokens,
                "size_bytes": size,
                "checksum": checksum,
                "check": json.dumps(logits_check(logits) if logits is not None else {}),
                "prefill_s": round(prefill_s, 3),
                "created_at": now,
                "last_used_at": now,
                "kind": kind,
                "label": label,
            }
        )
        gone = self.evict(keep=key.fingerprint)
        if any(g.key == key.fingerprint for g in gone):
            return None
        return self.find(key)

    def discard(self, key: str) -> None:
        """Delete the snapshot ``key``: its file and its row (a memory entry it held was
        edited or forgotten: engine/memory.py)."""
        row = self.store.get_snapshot(key)
        if row is not None:
            self._remove(key, self.folder / row["file"])

    # -- per-document snapshots (issue 17) ---------------------------------------

    def save_document(
        self,
        model: Model,
        key: SnapshotKey,
        start: int,
        end: int,
        *,
        model_name: str,
        label: str,
        prefill_s: float,
    ) -> SnapshotInfo | None:
        """Save context positions ``[start, end)`` (one document) as its snapshot.

        Returns:
            the snapshot, or ``None`` when it would not fit the budget or the disk.

        Raises:
            GenerationError: the runtime could not write it (nothing is left behind).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"{key.fingerprint[:32]}.{os.getpid()}.tmp"
        try:
            model.save_range(tmp, start, end)
        except GenerationError:
            tmp.unlink(missing_ok=True)
            raise
        if tmp.stat().st_size > min(self.budget_bytes, shutil.disk_usage(self.folder).free):
            tmp.unlink(missing_ok=True)
            return None
        return self.commit(
            tmp, key, model_name=model_name, logits=None, prefill_s=prefill_s, kind="document", label=label
        )

    def document_file(self, key: SnapshotKey) -> tuple[Path | None, str | None]:
        """The checked file of a document's snapshot.

        Returns:
            (the file, None), or (None, why) when there is none or it was damaged (then
            removed: the caller reads the document again and saves a new one).
        """
        row = self.store.get_snapshot(key.fingerprint)
        if row is None:
            return None, None
        info = self._info(row)
        if row["tokens_sha256"] != key.tokens_sha256 or row["n_tokens"] != key.n_tokens or info.kind != "document":
            self._remove(info.key, info.path)
            return None, f"The snapshot of {info.label or 'a document'} was made for other tokens; reading it again."
        try:
            size = info.path.stat().st_size
        except OSError:
            self._remove(info.key, info.path)
            return None, f"The snapshot of {info.label or 'a document'} is missing; reading it again."
        if size != info.size_bytes or crc32_file(info.path) != row["checksum"]:
            self._remove(info.key, info.path)
            return (
                None,
                f"The snapshot of {info.label or 'a document'} was damaged (checksum mismatch); reading it again.",
            )
        return info.path, None

    def touch(self, key: SnapshotKey) -> None:
        """Mark a snapshot used now (LRU order)."""
        self.store.touch_snapshot(key.fingerprint, _now())

    def remove(self, key: SnapshotKey) -> None:
        """Delete a snapshot's file and row (one the runtime refused to load)."""
        self.discard(key.fingerprint)

    # -- internals ---------------------------------------------------------------

    def _info(self, row: dict[str, Any]) -> SnapshotInfo:
        return SnapshotInfo(
            key=row["key"],
            path=self.folder / row["file"],
            model_name=row["model_name"],
            n_ctx=row["n_ctx"],
            kv_type=row["type_k"] if row["type_k"] == row["type_v"] else f"{row['type_k']}/{row['type_v']}",
            n_tokens=row["n_tokens"],
            size_bytes=row["size_bytes"],
            prefill_s=row["prefill_s"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            kind=row.get("kind") or "corpus",
            label=row.get("label") or "",
        )

    def _remove(self, key: str, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.store.delete_snapshot(key)


# -- the one way a prefix gets into a context ------------------------------------


def common_prefix(have: Sequence[int], want: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    n = 0
    for a, b in zip(have, want, strict=False):
        if a != b:
            break
        n += 1
    return n


def load_prefix(
    cache: SnapshotCache | None,
    model: Model,
    prefix: Sequence[int],
    *,
    model_sha256: str,
    model_name: str,
    swa_full: bool,
    kv_bytes_per_token: float,
    total: int | None = None,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    save: bool = True,
) -> tuple[WarmStart, PrefillStats]:
    """Make ``model``'s context hold ``prefix`` (a corpus, or a wave's page block):
    already there, restored from its snapshot, or read cold and saved.

    Used by ask (the corpus prefix) and by waves (each wave's page block, issue 13
    item 3): both follow the same key discipline and the same cold == warm path.

    Args:
        cache: the snapshot cache; ``None`` reads cold and saves nothing.
        prefix: the tokens the context must hold.
        model_sha256, model_name, swa_full: go into the key and the row.
        kv_bytes_per_token: the cache's size per token, to check the budget before writing.
        total: the whole prompt's length, so progress counts against it (default: the prefix).
        save: False: neither restore nor save (the context holds cells a cold read did not
            compute, a corpus assembled from document snapshots, issue 17, and a prefix
            snapshot is always what a cold read computes); the caller's prefill reads the rest.

    Returns:
        how the prefix got there, and the stats of what was evaluated for it (the restore
        check's one token, or the cold read).

    Raises:
        Cancelled: ``should_cancel`` said so between two batches of a cold read.
        GenerationError: the runtime failed while reading.
    """
    end = len(prefix)
    held = common_prefix(model.context_tokens, prefix)
    nothing = PrefillStats(evaluated=0, reused=min(held, end), seconds=0.0)
    if held >= end - 1:
        # Already in context (a follow-up): model.prefill reuses it.
        return WarmStart(source="context", corpus_tokens=end), nothing
    if cache is None or not save or end < MIN_SNAPSHOT_TOKENS:
        return WarmStart(source="prefill", corpus_tokens=end), nothing  # the caller's prefill reads it
    key = make_key(model, model_sha256=model_sha256, corpus=prefix, swa_full=swa_full)
    notice = None
    if cache.find(key) is not None:
        start = time.perf_counter()
        try:
            info, check = cache.restore(model, key, prefix)
        except SnapshotInvalid as exc:
            notice = exc.message
        else:
            restore_s = time.perf_counter() - start
            warm = WarmStart(
                source="snapshot",
                corpus_tokens=end,
                restore_s=restore_s,
                cold_prefill_s=info.prefill_s,
                snapshot_bytes=info.size_bytes,
            )
            return warm, PrefillStats(evaluated=check.evaluated, reused=end - check.evaluated, seconds=restore_s)
    # Cold: read all but the last token, save that, then evaluate the last token alone,
    # as a restore does, so both paths compute the same cache.
    whole = total if total is not None else end

    def on_prefix_progress(p: PrefillProgress) -> None:
        if on_progress is not None:
            eta = (whole - p.done) / p.tokens_per_s if p.tokens_per_s > 0 else 0.0
            on_progress(PrefillProgress(p.done, whole, p.tokens_per_s, eta, p.reused))

    head = model.prefill(prefix[:-1], on_progress=on_prefix_progress, should_cancel=should_cancel)
    pending = None
    try:
        pending = cache.write_pending(model, key, estimate_bytes=int(kv_bytes_per_token * end))
    except (GenerationError, OSError) as exc:
        notice = f"The corpus snapshot could not be saved ({exc}); it will be read again next time."
        if len(model.context_tokens) < end - 1:  # the reload failed and emptied the context
            more = model.prefill(prefix[:-1], on_progress=on_prefix_progress, should_cancel=should_cancel)
            head = PrefillStats(head.evaluated + more.evaluated, head.reused, head.seconds + more.seconds)
    last = model.prefill(prefix, should_cancel=should_cancel)
    cold = PrefillStats(
        evaluated=head.evaluated + last.evaluated, reused=head.reused, seconds=head.seconds + last.seconds
    )
    saved = None
    if pending is not None:
        try:
            saved = cache.commit(
                pending, key, model_name=model_name, logits=model.last_logits(), prefill_s=cold.seconds
            )
        except (EngineError, OSError) as exc:
            pending.unlink(missing_ok=True)
            notice = f"The corpus snapshot could not be saved ({exc}); it will be read again next time."
    if saved is None and notice is None:
        notice = "The corpus snapshot would exceed the snapshot disk budget; it was not saved."
    warm = WarmStart(
        source="prefill",
        corpus_tokens=end,
        cold_prefill_s=cold.seconds,
        snapshot_bytes=saved.size_bytes if saved else 0,
        saved=saved is not None,
        notice=notice,
    )
    return warm, cold
