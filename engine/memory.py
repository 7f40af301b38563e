"""Long-term memory (issue 15): what earlier sessions found, carried whole into new ones.

Contract:
- Every finished run (ask, deep thinking, waves) leaves one entry: its question, its answer
  with the checked citations, the date it finished and the documents (by sha256) its
  session read. ``RunRecorder.done`` writes the entry in the same transaction that marks the
  run done (engine/reading/stepping.py), so a crash leaves both or neither. The user can
  add entries ("I act for the tenant"), edit, pin (carried into every session) and forget.
- A session carries the entries tied to any of its documents plus the pinned ones, oldest
  first, each dated, as a memory block laid after the corpus and before the question
  (engine/reading/prompts.py), introduced to the model as its own earlier work. When the
  block does not fit the room left (the window, or the model's measured effective context:
  engine/probe.py), ``lay_memory`` keeps the pinned and the newest entries that fit and
  lists every one left out: nothing is dropped without being shown; the caller may pass
  its own pick of ids instead.
- Forget means gone: ``MemoryBook.forget`` deletes the entry and its search-index rows
  (then merges the index, so its words leave the index's pages), removes every KV snapshot
  that held it (files and rows: ``snapshot_memories``), deletes with ``secure_delete`` on
  (freed content zeroed) and truncates the WAL, so the text is in neither the database
  file nor its WAL. (A WAL another connection is reading is truncated later: logged.) An edit
  removes the snapshots that held the old text the same way.
Forgetting an entry made from a run leaves that run in its session (delete the session to
remove it); the entry is never made again from it.
Qt-free; one thread at a time (the store's).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import EngineError, StorageError
from engine.reading.citations import Citation, citations_from_json
from engine.store import Store
from engine.store.db import describe_sqlite_error

log = logging.getLogger("longread.memory")

if TYPE_CHECKING:
    from engine.warm import SnapshotCache

SOURCES = ("ask", "think", "waves", "user")
MEMORY_INTRO = (
    "\n\nYour memory: your own earlier work with this user in past sessions, oldest first, "
    "each dated. Use it when it helps; where it disagrees with the documents, the documents win.\n"
)
_ANSWERED = {
    "ask": "You answered",
    "think": "You answered after thinking in steps",
    "waves": "You answered after reading in waves",
}


class TextTokenizer(Protocol):
    def tokenize_text(self, text: str) -> list[int]: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class MemoryEntry:
    """One entry: a finished run's question and answer, or a note the user wrote."""

    id: int
    source: str  # ask, think, waves (a run) or user
    question: str
    answer: str
    citations: list[Citation]
    documents: tuple[str, ...]  # sha256 of the documents it is about
    pinned: bool
    created_at: str
    updated_at: str
    run_id: int | None = None

    @property
    def date(self) -> str:
        """``2026-12-02``: the day it was established."""
        return self.created_at[:10]

    def render(self) -> str:
        """The entry as the model reads it in the memory block (dated, one paragraph)."""
        if self.source == "user":
            return f"\n[{self.date}] The user told you: {self.answer.strip()}\n"
        checked = [f"{c.document} p.{c.page}" for c in self.citations if c.ok]
        cites = f" (checked citations: {', '.join(dict.fromkeys(checked))})" if checked else ""
        said = _ANSWERED.get(self.source, "You answered")
        return f"\n[{self.date}] The user asked: {self.question.strip()}\n{said}: {self.answer.strip()}{cites}\n"

    def title(self, width: int = 70) -> str:
        """One line for lists: the question, or the note itself."""
        text = " ".join((self.question if self.source != "user" else self.answer).split())
        return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class MemoryOptions:
    """Whether a reader carries memory, and the user's own pick of entries (None: the
    entries tied to the documents and the pinned ones, as many as fit)."""

    enabled: bool = True
    pick: tuple[int, ...] | None = None


@dataclass(frozen=True)
class MemoryLayout:
    """The memory block of one prompt: what went in (oldest first), what was left out and
    why, and what each candidate costs in tokens."""

    included: tuple[MemoryEntry, ...] = ()
    left_out: tuple[MemoryEntry, ...] = ()
    tokens: tuple[tuple[int, ...], ...] = ()  # the intro and each included entry, tokenized as text
    costs: dict[int, int] = field(default_factory=dict)  # entry id -> tokens
    room: int | None = None  # the tokens the block could take (None: not limited)
    reason: str = ""  # why some were left out ("window", "effective context", "picked")

    @property
    def n_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(e.id for e in self.included)

    def describe_left_out(self) -> str:
        """``2 memory entries left out (the window): #3 ..., #5 ...`` or ``""``."""
        if not self.left_out:
            return ""
        n = len(self.left_out)
        names = "; ".join(f"#{e.id} {e.title(40)} ({self.costs.get(e.id, 0):,} tokens)" for e in self.left_out)
        why = f" ({self.reason})" if self.reason else ""
        return f"{n} memory entr{'ies' if n != 1 else 'y'} left out{why}: {names}."


def lay_memory(
    tokenizer: TextTokenizer,
    candidates: Sequence[MemoryEntry],
    *,
    room: int | None,
    pick: Iterable[int] | None = None,
    reason: str = "the window",
) -> MemoryLayout:
    """Tokenize the memory block for ``candidates`` (oldest first) within ``room`` tokens.

    Everything goes in when it fits. Otherwise the pinned entries, then the newest, are kept
    while they fit, and the rest are listed as left out with ``reason``. ``pick`` (entry ids)
    is the user's own choice: only those are candidates, the others are left out.
    """
    if not candidates:
        return MemoryLayout(room=room)
    picked = set(pick) if pick is not None else None
    costs: dict[int, int] = {}
    token_of: dict[int, tuple[int, ...]] = {}
    for entry in candidates:
        token_of[entry.id] = tuple(tokenizer.tokenize_text(entry.render()))
        costs[entry.id] = len(token_of[entry.id])
    intro = tuple(tokenizer.tokenize_text(MEMORY_INTRO))
    pool = [e for e in candidates if picked is None or e.id in picked]
    unpicked = [e for e in candidates if picked is not None and e.id not in picked]
    chosen: list[MemoryEntry] = []
    total = len(intro)
    if room is None or total + sum(costs[e.id] for e in pool) <= room:
        chosen = list(pool)
    else:
        # Pinned first, then the newest; each kept only if it still fits.
        for entry in sorted(pool, key=lambda e: (e.pinned, e.created_at, e.id), reverse=True):
            if total + costs[entry.id] <= room:
                chosen.append(entry)
                total += costs[entry.id]
    keep = {e.id for e in chosen}
    included = tuple(e for e in candidates if e.id in keep)
    left = tuple(e for e in candidates if e.id not in keep)
    why = reason if any(e in pool for e in left) else ("not picked" if unpicked else "")
    tokens = (intro, *(token_of[e.id] for e in included)) if included else ()
    return MemoryLayout(included, left, tokens, costs, room, why)


class MemoryBook:
    """The memory entries in a store. One thread at a time.

    Args:
        store: the store.
        snapshots: the KV snapshot cache whose snapshots hold memory (for forget and edit).
    """

    def __init__(self, store: Store, snapshots: SnapshotCache | None = None) -> None:
        self.store = store
        self.snapshots = snapshots

    # -- reading -----------------------------------------------------------------------

    def entries(self, *, documents: Iterable[str] | None = None, include_pinned: bool = True) -> list[MemoryEntry]:
        """Entries oldest first: all of them, or those tied to any of ``documents`` (plus
        the pinned ones unless ``include_pinned`` is False)."""
        if documents is None:
            rows = self.store.query("SELECT * FROM memories ORDER BY created_at, id")
        else:
            shas = list(dict.fromkeys(documents))
            marks = ",".join("?" * len(shas)) or "NULL"
            pinned = " OR pinned = 1" if include_pinned else ""
            rows = self.store.query(
                "SELECT * FROM memories WHERE id IN (SELECT memory_id FROM memory_documents "
                f"WHERE doc_sha256 IN ({marks})){pinned} ORDER BY created_at, id",
                shas,
            )
        return self._entries(rows)

    def get(self, entry_id: int) -> MemoryEntry:
        """The entry ``entry_id``.

        Raises:
            EngineError: there is no such entry.
        """
        rows = self.store.query("SELECT * FROM memories WHERE id = ?", [entry_id])
        if not rows:
            raise EngineError(f"There is no memory entry {entry_id}. `longread memory list` lists them.")
        return self._entries(rows)[0]

    def by_ids(self, ids: Iterable[int]) -> list[MemoryEntry]:
        """The entries with these ids that still exist, oldest first."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        if not wanted:
            return []
        rows = self.store.query(
            f"SELECT * FROM memories WHERE id IN ({','.join('?' * len(wanted))}) ORDER BY created_at, id", wanted
        )
        return self._entries(rows)

    def search(self, text: str) -> list[MemoryEntry]:
        """Entries whose question or answer holds every word of ``text`` (as a prefix)."""
        words = [w.replace('"', '""') for w in text.split()]
        if not words:
            return self.entries()
        match = " ".join(f'"{w}"*' for w in words)
        rows = self.store.query(
            "SELECT m.* FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid "
            "WHERE memories_fts MATCH ? ORDER BY m.created_at, m.id",
            [match],
        )
        return self._entries(rows)

    def snapshot_keys(self, entry_id: int) -> list[str]:
        """The KV snapshots holding this entry."""
        rows = self.store.query("SELECT snapshot_key FROM snapshot_memories WHERE memory_id = ?", [entry_id])
        return [str(r["snapshot_key"]) for r in rows]

    def _entries(self, rows: list[dict[str, Any]]) -> list[MemoryEntry]:
        if not rows:
            return []
        ids = [int(r["id"]) for r in rows]
        docs: dict[int, list[str]] = {i: [] for i in ids}
        for d in self.store.query(
            f"SELECT memory_id, doc_sha256 FROM memory_documents WHERE memory_id IN ({','.join('?' * len(ids))}) "
            "ORDER BY rowid",
            ids,
        ):
            docs[int(d["memory_id"])].append(str(d["doc_sha256"]))
        return [
            MemoryEntry(
                id=int(r["id"]),
                source=str(r["source"]),
                question=str(r["question"]),
                answer=str(r["answer"]),
                citations=citations_from_json(r["citations"] or "[]"),
                documents=tuple(docs[int(r["id"])]),
                pinned=bool(r["pinned"]),
                created_at=str(r["created_at"]),
                updated_at=str(r["updated_at"]),
                run_id=r["run_id"],
            )
            for r in rows
        ]

    # -- writing -----------------------------------------------------------------------

    def record_run(self, run_id: int) -> int | None:
        """Make the entry of a finished run (once: a run already remembered is left alone).

        Call inside the transaction that marks the run done, so both are written or neither.

        Returns:
            the entry's id, or None when the run is not done or already has one.
        """
        now = _now()
        with self.store.atomic() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO memories (source, run_id, question, answer, citations, pinned, created_at, "
                "updated_at) SELECT kind, id, question, answer, citations, 0, ?, ? FROM runs "
                "WHERE id = ? AND status = 'done'",
                [now, now, run_id],
            )
            if not cursor.rowcount:
                return None
            entry_id = int(cursor.lastrowid or 0)
            db.execute(
                "INSERT OR IGNORE INTO memory_documents (memory_id, doc_sha256) SELECT ?, cd.doc_sha256 "
                "FROM runs r JOIN sessions s ON s.id = r.session_id "
                "JOIN corpus_documents cd ON cd.corpus_id = s.corpus_id WHERE r.id = ? ORDER BY cd.position",
                [entry_id, run_id],
            )
        return entry_id

    def add(self, text: str, *, pinned: bool = False, documents: Iterable[str] = ()) -> int:
        """Write a user's entry ("I act for the tenant"); return its id.

        Args:
            text: the note.
            pinned: carry it into every session.
            documents: sha256 of the documents it is about (carried into their sessions).

        Raises:
            EngineError: the note is empty, or is about no document and is not pinned
                (it would never be carried anywhere).
        """
        text = text.strip()
        if not text:
            raise EngineError("A memory entry needs some text.")
        shas = list(dict.fromkeys(documents))
        if not shas and not pinned:
            raise EngineError(
                "This memory entry is about no document, so no session would carry it: pin it "
                "(carried into every session) or tie it to a session's documents."
            )
        now = _now()
        with self.store.atomic() as db:
            cursor = db.execute(
                "INSERT INTO memories (source, question, answer, pinned, created_at, updated_at) "
                "VALUES ('user', '', ?, ?, ?, ?)",
                [text, int(pinned), now, now],
            )
            entry_id = int(cursor.lastrowid or 0)
            for sha in shas:
                db.execute(
                    "INSERT OR IGNORE INTO memory_documents (memory_id, doc_sha256) VALUES (?, ?)", [entry_id, sha]
                )
        return entry_id

    def pin(self, entry_id: int, pinned: bool = True) -> None:
        """Carry an entry into every session (or only its documents' sessions again).

        Raises:
            EngineError: there is no such entry.
        """
        entry = self.get(entry_id)
        if not pinned and not entry.documents:
            raise EngineError(f"Memory entry {entry_id} is about no document: unpinned, no session would carry it.")
        with self.store.atomic() as db:
            db.execute("UPDATE memories SET pinned = ?, updated_at = ? WHERE id = ?", [int(pinned), _now(), entry_id])

    def edit(self, entry_id: int, text: str) -> None:
        """Replace an entry's text (a run's entry: its answer). The snapshots that held the
        old text are removed, files and all.

        Raises:
            EngineError: there is no such entry, or the text is empty.
        """
        self.get(entry_id)
        text = text.strip()
        if not text:
            raise EngineError("A memory entry needs some text: forget it instead of emptying it.")
        self._drop_snapshots(entry_id)
        self._secure()
        with self.store.atomic() as db:
            db.execute(
                "UPDATE memories SET answer = ?, citations = '[]', updated_at = ? WHERE id = ?",
                [text, _now(), entry_id],
            )
        self.scrub()

    def forget(self, entry_id: int) -> None:
        """Remove an entry for good: its row, its search-index rows, every snapshot that held
        it; then scrub the database so its text is in neither the file nor the WAL.

        Raises:
            EngineError: there is no such entry.
        """
        self.get(entry_id)
        self._drop_snapshots(entry_id)
        self._secure()
        with self.store.atomic() as db:
            db.execute("DELETE FROM snapshot_memories WHERE memory_id = ?", [entry_id])
            db.execute("DELETE FROM memories WHERE id = ?", [entry_id])  # cascades to memory_documents; FTS trigger
        self.scrub()

    def link_snapshot(self, key: str, entry_ids: Sequence[int]) -> None:
        """Record that the snapshot ``key`` holds these entries."""
        with self.store.atomic() as db:
            for entry_id in entry_ids:
                db.execute(
                    "INSERT OR IGNORE INTO snapshot_memories (snapshot_key, memory_id) VALUES (?, ?)", [key, entry_id]
                )

    def scrub(self) -> None:
        """Make removed text unrecoverable (after ``_secure`` made the delete zero what it
        freed): merge the search index (a deleted row's words otherwise stay in its older
        segments; the merge frees them, zeroed too), then copy the WAL into the file and
        truncate it (the WAL still holds the pages as they were written).

        Raises:
            StorageError: the store could not be written.
        """
        with self.store.atomic() as db:
            db.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
        try:
            busy, _, _ = self.store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(describe_sqlite_error(exc, self.store.path)) from exc
        if busy:
            # Another connection (another Longread window) is reading: the WAL keeps its
            # frames until it can be checkpointed; the next scrub or the next open does it.
            log.warning("memory: the WAL could not be truncated now (another reader); it will be later")

    def _secure(self) -> None:
        # secure_delete: SQLite overwrites deleted content and freed pages with zeros
        # (https://sqlite.org/pragma.html#pragma_secure_delete); set on this connection.
        self.store.db.conn.execute("PRAGMA secure_delete=ON")

    def _drop_snapshots(self, entry_id: int) -> None:
        keys = self.snapshot_keys(entry_id)
        for key in keys:
            if self.snapshots is not None:
                self.snapshots.discard(key)
            else:
                # No cache at hand: remove the row; the file is found by its row's name.
                rows = self.store.query("SELECT file FROM snapshots WHERE key = ?", [key])
                if rows:
                    from engine.config import data_dir
                    from engine.warm import SNAPSHOT_DIR

                    (data_dir() / SNAPSHOT_DIR / str(rows[0]["file"])).unlink(missing_ok=True)
                self.store.delete_snapshot(key)
