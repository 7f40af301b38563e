"""Warm documents on an inference server across its restarts (issue 16).

A server keeps the corpus in its prompt cache while it runs (``engine/runtime/server.py``:
each request reuses the longest prefix its slot holds). After the server restarts, that
cache is gone. llama-server can save a slot's cache to a file on its own disk and restore
it (``--slot-save-path``); this module makes that the server's counterpart of a local KV
snapshot (``engine/warm.py``), under the same discipline:

- a slot file's key is the sha256 of the server's URL, the model's name and build there,
  the slot's window and the prefix's tokens: any change misses;
- a restore is checked before it is trusted (``ServerModel.restore_slot``: the server must
  reuse all but the last token and give the same greedy next token as when it was saved),
  so a server that silently ignores a restore (sliding-window and hybrid models, llama.cpp
  issues #26676, #27813, #28194) reads the corpus again, with the reason said;
- a server without a slot-save path is asked once per model; its prompt cache still works.

The rows (``server_slots``) hold no text: the file's name, the token count, the check
token, sizes and dates.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from engine.errors import GenerationError
from engine.runtime.backend import CancelFn, PrefillStats, ProgressFn
from engine.runtime.server import ServerModel, SlotRestoreInvalid, SlotSnapshot
from engine.store import Store
from engine.warm import MIN_SNAPSHOT_TOKENS, WarmStart, common_prefix

FILE_PREFIX = "longread-"


def slot_key(model: ServerModel, tokens: Sequence[int]) -> str:
    """The key of a slot file holding ``tokens`` on ``model``'s server."""
    url, name = model.server
    digest = hashlib.sha256()
    for part in (url, name, model.runtime_version, str(model.n_ctx), str(len(tokens))):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(b",".join(str(t).encode() for t in tokens))
    return digest.hexdigest()


class ServerSlots:
    """Slot files on one server, recorded in a store. One thread at a time.

    Args:
        store: where the rows are kept.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        #: Why this server cannot save slots (asked once), or None while it may.
        self.refused: str | None = None

    def load(
        self,
        model: ServerModel,
        prefix: Sequence[int],
        *,
        on_progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> tuple[WarmStart, PrefillStats]:
        """Make the server's slot hold ``prefix``: already there, restored from its slot
        file, or read through the server and saved as one.

        Returns:
            how the prefix got there, and what the server evaluated for it (as it reported).

        Raises:
            Cancelled, GenerationError, ServerLost: as ``ServerModel.prefill``.
        """
        end = len(prefix)
        held = common_prefix(model.context_tokens, prefix)
        if held >= end - 1:
            return WarmStart(source="context", corpus_tokens=end), PrefillStats(0, min(held, end), 0.0)
        if end < MIN_SNAPSHOT_TOKENS:
            return WarmStart(source="prefill", corpus_tokens=end), PrefillStats(0, held, 0.0)
        key = slot_key(model, prefix)
        row = self.store.get_server_slot(key)
        notice = None
        if row is not None:
            snapshot = SlotSnapshot(str(row["filename"]), tuple(prefix), int(row["next_token"]), 0)
            start = time.perf_counter()
            try:
                report = model.restore_slot(snapshot)
            except GenerationError as exc:  # SlotRestoreInvalid among them
                self.store.delete_server_slot(key)
                why = "it could not be restored"
                if isinstance(exc, SlotRestoreInvalid):
                    why, self.refused = "it was not used", exc.message  # it re-reads restored slots: save no more
                notice = (
                    f"The documents' slot file on the server was dropped: {why} ({exc.message}). Reading them again."
                )
            else:
                took = time.perf_counter() - start
                self.store.put_server_slot({**row, "last_used_at": _now()})
                warm = WarmStart(
                    source="snapshot",
                    corpus_tokens=end,
                    restore_s=took,
                    cold_prefill_s=row["prefill_s"],
                    snapshot_bytes=int(row["size_bytes"]),
                )
                return warm, PrefillStats(report.evaluated, end - report.evaluated, took)
        stats = model.prefill(prefix, on_progress=on_progress, should_cancel=should_cancel)
        warm = WarmStart(source="prefill", corpus_tokens=end, cold_prefill_s=stats.seconds, notice=notice)
        if self.refused is not None or stats.evaluated < MIN_SNAPSHOT_TOKENS:
            return warm, stats  # the server's prompt cache already held most of it
        filename = f"{FILE_PREFIX}{key[:32]}.bin"
        try:
            saved = model.save_slot(filename)
        except GenerationError as exc:
            self.refused = exc.message
            return warm, stats
        now = _now()
        url, name = model.server
        self.store.put_server_slot(
            {
                "key": key,
                "server": url,
                "model": name,
                "filename": filename,
                "n_tokens": end,
                "next_token": saved.next_token,
                "size_bytes": saved.bytes_written,
                "prefill_s": stats.seconds,
                "created_at": now,
                "last_used_at": now,
            }
        )
        return replace(warm, snapshot_bytes=saved.bytes_written, saved=True), stats


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
