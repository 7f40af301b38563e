"""The ``Store``: documents, pages, corpora, sessions, turns and cached token lists.

Contract:
- A document is written with all its pages in one transaction, or not at all.
- A turn's question is stored (status ``running``) before the model runs; the answer is
  saved as it streams (``save_partial_answer``) and finally marked ``done``,
  ``interrupted``, ``cancelled`` or ``failed``. A turn left ``running`` by a process
  that no longer exists is marked ``interrupted`` the next time the store opens.
- Disk and lock failures surface as ``StorageError`` with a plain message.
"""

from __future__ import annotations

import array
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from engine.corpus import Corpus, Document, Page
from engine.errors import StorageError
from engine.procs import is_alive
from engine.store.migrations import migrations


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int | None) -> bool:
    return is_alive(pid, None)


def describe_sqlite_error(exc: sqlite3.Error, path: Path | str) -> str:
    """Turn a sqlite3 error into a sentence a user can act on."""
    text = str(exc).lower()
    if "full" in text:
        return f"The disk holding {path} is full. Free some space and try again; nothing was lost."
    if "locked" in text or "busy" in text:
        return f"The store {path} is busy in another Longread window. Try again in a moment."
    if "malformed" in text or "not a database" in text:
        return f"The store {path} is damaged ({exc}). Move it aside and Longread will start a new one."
    if "readonly" in text or "unable to open" in text:
        return f"Longread cannot write its store {path}. Check the folder's permissions."
    return f"The store {path} failed: {exc}."


@dataclass(frozen=True)
class SessionRow:
    id: int
    title: str
    corpus_id: str | None
    kind: str
    created_at: str
    updated_at: str
    deleted_at: str | None = None  # m004: set while a deletion can still be undone


@dataclass(frozen=True)
class TurnRow:
    id: int
    session_id: int
    position: int
    question: str
    answer: str
    status: str
    error: str | None
    model: str
    settings: dict[str, Any]
    corpus_tokens: int | None
    prompt_tokens: int | None
    prefill_tokens: int | None
    answer_tokens: int | None
    prefill_s: float | None
    generate_s: float | None
    created_at: str
    finished_at: str | None


@dataclass(frozen=True)
class CalibrationRow:
    """A measured prefill: the seconds each ``batch_size``-token batch took, in order."""

    model_sha256: str
    kv_type: str
    n_threads: int
    batch_size: int
    llama_cpp_version: str
    batch_seconds: tuple[float, ...]
    flash_attn: bool
    measured_at: str = ""


class Store:
    """One connection to the store. Use from one thread only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            conn = sqlite3.connect(str(path), timeout=30.0)
            self.db = Database(conn)
            self._enable_wal(conn)
            # NORMAL is durable across application crashes in WAL mode; only power
            # loss can lose the last commits (https://sqlite.org/wal.html).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StorageError(describe_sqlite_error(exc, path)) from exc
        self._mark_orphaned_turns()
        self._mark_orphaned_reading_rows()

    def close(self) -> None:
        self.db.conn.close()

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL needs an exclusive lock and fails with "busy" without
        # waiting while another connection switches it: retry briefly.
        for attempt in range(50):
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.02)

    def _migrate(self) -> None:
        # sqlite-utils runs each migration in a deferred transaction, which cannot take the
        # write lock once another connection (another thread opening the same new store)
        # has written: SQLITE_BUSY at once, whatever the timeout. Take the write lock first
        # (BEGIN IMMEDIATE waits for it); the migrations then run as savepoints inside, and
        # the pending list is read again under the lock so that only one opener applies them.
        if not migrations.pending(self.db):
            return
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrations.apply(self.db)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _atomic(self) -> Iterator[Database]:
        # Write transactions start IMMEDIATE: a deferred one that reads and then writes
        # cannot upgrade its lock once another connection has committed, and SQLite then
        # fails at once with "busy" instead of waiting (each thread has its own connection).
        conn = self.db.conn
        try:
            if conn.in_transaction:
                with self.db.atomic() as db:  # nested: a savepoint
                    yield db
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(describe_sqlite_error(exc, self.path)) from exc

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self.db.conn.execute(sql, params)
            names = [c[0] for c in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise StorageError(describe_sqlite_error(exc, self.path)) from exc

    # -- documents ---------------------------------------------------------------

    def has_document(self, sha256: str) -> bool:
        return bool(self._query("SELECT 1 FROM documents WHERE sha256 = ?", [sha256]))

    def get_document(self, sha256: str) -> Document | None:
        """Return the stored document with this content hash, pages included."""
        rows = self._query("SELECT * FROM documents WHERE sha256 = ?", [sha256])
        if not rows:
            return None
        row = rows[0]
        pages = self._query(
            "SELECT number, text, ocr FROM pages WHERE doc_sha256 = ? ORDER BY number", [sha256]
        )
        return Document(
            sha256=row["sha256"],
            name=row["name"],
            kind=row["kind"],
            path=row["path"],
            size_bytes=row["size_bytes"],
            extractor=row["extractor"],
            pages=tuple(Page(p["number"], p["text"], bool(p["ocr"])) for p in pages),
        )

    def add_document(self, doc: Document) -> None:
        """Store ``doc`` with all its pages in one transaction (no-op if already stored)."""
        with self._atomic() as db:
            if db.execute("SELECT 1 FROM documents WHERE sha256 = ?", [doc.sha256]).fetchone():
                return
            db.table("documents").insert(
                {
                    "sha256": doc.sha256,
                    "name": doc.name,
                    "kind": doc.kind,
                    "path": doc.path,
                    "size_bytes": doc.size_bytes,
                    "n_pages": doc.n_pages,
                    "n_chars": doc.n_chars,
                    "extractor": doc.extractor,
                    "added_at": _now(),
                }
            )
            db.table("pages").insert_all(
                (
                    {"doc_sha256": doc.sha256, "number": p.number, "text": p.text, "ocr": int(p.ocr)}
                    for p in doc.pages
                ),
                batch_size=500,
            )

    def count_documents(self) -> int:
        return int(self._query("SELECT count(*) AS n FROM documents")[0]["n"])

    # -- token cache -------------------------------------------------------------

    def get_tokens(self, doc_sha256: str, tokenizer: str) -> list[int] | None:
        rows = self._query(
            "SELECT tokens FROM token_cache WHERE doc_sha256 = ? AND tokenizer = ?",
            [doc_sha256, tokenizer],
        )
        if not rows:
            return None
        buf = array.array("i")
        buf.frombytes(rows[0]["tokens"])
        return buf.tolist()

    def put_tokens(self, doc_sha256: str, tokenizer: str, tokens: Sequence[int]) -> None:
        blob = array.array("i", tokens).tobytes()
        with self._atomic() as db:
            db.table("token_cache").upsert(
                {"doc_sha256": doc_sha256, "tokenizer": tokenizer, "n_tokens": len(tokens), "tokens": blob},
                pk=("doc_sha256", "tokenizer"),
            )

    # -- corpora -----------------------------------------------------------------

    def save_corpus(self, corpus: Corpus) -> str:
        """Record the corpus (documents must be stored) and return its id."""
        corpus_id = corpus.fingerprint
        with self._atomic() as db:
            if not db.execute("SELECT 1 FROM corpora WHERE id = ?", [corpus_id]).fetchone():
                db.table("corpora").insert({"id": corpus_id, "created_at": _now()})
                db.table("corpus_documents").insert_all(
                    {"corpus_id": corpus_id, "position": i, "doc_sha256": d.sha256}
                    for i, d in enumerate(corpus.documents)
                )
        return corpus_id

    def get_corpus(self, corpus_id: str) -> Corpus | None:
        rows = self._query(
            "SELECT doc_sha256 FROM corpus_documents WHERE corpus_id = ? ORDER BY position", [corpus_id]
        )
        if not rows:
            return None
        docs = [self.get_document(r["doc_sha256"]) for r in rows]
        return Corpus(tuple(d for d in docs if d is not None))

    # -- sessions and turns ------------------------------------------------------

    def create_session(self, *, title: str, corpus_id: str | None, kind: str = "ask") -> int:
        now = _now()
        with self._atomic() as db:
            table = db.table("sessions")
            table.insert(
                {"title": title, "corpus_id": corpus_id, "kind": kind, "created_at": now, "updated_at": now}
            )
            return int(table.last_pk)  # type: ignore[union-attr,arg-type]

    def get_session(self, session_id: int) -> SessionRow | None:
        rows = self._query("SELECT * FROM sessions WHERE id = ?", [session_id])
        return SessionRow(**rows[0]) if rows else None

    def list_sessions(self) -> list[SessionRow]:
        """Every session not in the trash, most recently used first."""
        rows = self._query("SELECT * FROM sessions WHERE deleted_at IS NULL ORDER BY updated_at DESC, id DESC")
        return [SessionRow(**r) for r in rows]

    def search_sessions(self, text: str) -> list[SessionRow]:
        """Sessions whose title, questions or answers contain every word of ``text``
        (prefix match, FTS5 over turns), most recently used first. Blank text lists all."""
        words = [w.replace('"', '""') for w in text.split()]
        if not words:
            return self.list_sessions()
        match = " ".join(f'"{w}"*' for w in words)
        title_like = ["%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for w in text.split()]
        title_sql = " AND ".join("s.title LIKE ? ESCAPE '\\'" for _ in title_like)
        rows = self._query(
            "SELECT s.* FROM sessions s WHERE s.deleted_at IS NULL AND ("
            "s.id IN (SELECT t.session_id FROM turns_fts JOIN turns t ON t.id = turns_fts.rowid"
            " WHERE turns_fts MATCH ?)"
            f" OR ({title_sql})) ORDER BY s.updated_at DESC, s.id DESC",
            [match, *title_like],
        )
        return [SessionRow(**r) for r in rows]

    def trash_session(self, session_id: int) -> None:
        """Hide a session (undoable with ``restore_session`` until it is purged)."""
        with self._atomic() as db:
            db.execute("UPDATE sessions SET deleted_at = ? WHERE id = ?", [_now(), session_id])

    def restore_session(self, session_id: int) -> None:
        """Bring back a session moved to the trash."""
        with self._atomic() as db:
            db.execute("UPDATE sessions SET deleted_at = NULL WHERE id = ?", [session_id])

    def purge_trashed_sessions(self, *, before: str | None = None) -> int:
        """Delete for good the sessions trashed before ``before`` (ISO time; default all).

        Returns:
            how many sessions were deleted.
        """
        rows = self._query(
            "SELECT id FROM sessions WHERE deleted_at IS NOT NULL AND deleted_at < ?",
            [before or "9999"],
        )
        for row in rows:
            self.delete_session(int(row["id"]))
        return len(rows)

    def rename_session(self, session_id: int, title: str) -> None:
        with self._atomic() as db:
            db.execute("UPDATE sessions SET title = ? WHERE id = ?", [title, session_id])

    def delete_session(self, session_id: int) -> None:
        with self._atomic() as db:
            db.execute("DELETE FROM turns WHERE session_id = ?", [session_id])
            db.execute("DELETE FROM sessions WHERE id = ?", [session_id])

    def start_turn(self, session_id: int, question: str, *, model: str, settings: dict[str, Any]) -> int:
        """Store the question before the model runs; return the turn id."""
        now = _now()
        with self._atomic() as db:
            position = db.execute(
                "SELECT coalesce(max(position), 0) + 1 FROM turns WHERE session_id = ?", [session_id]
            ).fetchone()[0]
            table = db.table("turns")
            table.insert(
                {
                    "session_id": session_id,
                    "position": position,
                    "question": question,
                    "status": "running",
                    "model": model,
                    "settings": json.dumps(settings, sort_keys=True),
                    "pid": os.getpid(),
                    "created_at": now,
                }
            )
            db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", [now, session_id])
            return int(table.last_pk)  # type: ignore[union-attr,arg-type]

    def save_partial_answer(self, turn_id: int, answer: str) -> None:
        """Keep what has streamed so far: a crash loses at most the last few tokens."""
        with self._atomic() as db:
            db.execute("UPDATE turns SET answer = ? WHERE id = ?", [answer, turn_id])

    def finish_turn(self, turn_id: int, *, answer: str, status: str, error: str | None = None, **stats: Any) -> None:
        """Record the final answer, its status and its numbers (token counts, timings)."""
        allowed = {"corpus_tokens", "prompt_tokens", "prefill_tokens", "answer_tokens", "prefill_s", "generate_s"}
        unknown = set(stats) - allowed
        if unknown:
            raise ValueError(f"unknown turn fields: {sorted(unknown)}")
        now = _now()
        with self._atomic() as db:
            db.table("turns").update(
                turn_id,
                {"answer": answer, "status": status, "error": error, "finished_at": now, **stats},
            )
            db.execute(
                "UPDATE sessions SET updated_at = ? WHERE id = (SELECT session_id FROM turns WHERE id = ?)",
                [now, turn_id],
            )

    def count_questions(self, session_id: int) -> int:
        """How many questions a session holds: its turns, deep-thinking runs and reads in waves."""
        row = self.db.execute(
            "SELECT (SELECT count(*) FROM turns WHERE session_id = :s)"
            " + (SELECT count(*) FROM deep_sessions WHERE session_id = :s)"
            " + (SELECT count(*) FROM wave_reads WHERE session_id = :s)",
            {"s": session_id},
        ).fetchone()
        return int(row[0])

    def list_turns(self, session_id: int) -> list[TurnRow]:
        rows = self._query(
            "SELECT * FROM turns WHERE session_id = ? ORDER BY position", [session_id]
        )
        turns = []
        for r in rows:
            r.pop("pid", None)
            r["settings"] = json.loads(r["settings"] or "{}")
            turns.append(TurnRow(**r))
        return turns

    def _mark_orphaned_turns(self) -> None:
        rows = self._query("SELECT id, pid FROM turns WHERE status = 'running'")
        dead = [r["id"] for r in rows if not _pid_alive(r["pid"])]
        if dead:
            with self._atomic() as db:
                db.execute(
                    f"UPDATE turns SET status = 'interrupted' WHERE id IN ({','.join('?' * len(dead))})",
                    dead,
                )

    # -- calibration (issue 5) ----------------------------------------------------

    def put_calibration(self, row: CalibrationRow) -> None:
        """Store (or replace) one prefill-speed measurement."""
        with self._atomic() as db:
            db.table("calibrations").upsert(
                {
                    "model_sha256": row.model_sha256,
                    "kv_type": row.kv_type,
                    "n_threads": row.n_threads,
                    "batch_size": row.batch_size,
                    "llama_cpp_version": row.llama_cpp_version,
                    "batch_seconds": json.dumps(list(row.batch_seconds)),
                    "flash_attn": int(row.flash_attn),
                    "measured_at": row.measured_at or _now(),
                },
                pk=("model_sha256", "kv_type", "n_threads", "batch_size", "llama_cpp_version"),
            )

    def get_calibrations(
        self, model_sha256: str, *, n_threads: int | None = None, llama_cpp_version: str | None = None
    ) -> list[CalibrationRow]:
        """The measurements for a model, newest first, optionally for one thread count
        and llama.cpp version."""
        sql = "SELECT * FROM calibrations WHERE model_sha256 = ?"
        params: list[Any] = [model_sha256]
        if n_threads is not None:
            sql += " AND n_threads = ?"
            params.append(n_threads)
        if llama_cpp_version is not None:
            sql += " AND llama_cpp_version = ?"
            params.append(llama_cpp_version)
        rows = self._query(sql + " ORDER BY measured_at DESC", params)
        return [
            CalibrationRow(
                model_sha256=r["model_sha256"],
                kv_type=r["kv_type"],
                n_threads=r["n_threads"],
                batch_size=r["batch_size"],
                llama_cpp_version=r["llama_cpp_version"],
                batch_seconds=tuple(float(x) for x in json.loads(r["batch_seconds"])),
                flash_attn=bool(r["flash_attn"]),
                measured_at=r["measured_at"],
            )
            for r in rows
        ]

    # -- KV snapshots (issue 4; engine/runtime/snapshot.py owns the files) ----------

    def put_snapshot(self, row: dict[str, Any]) -> None:
        """Record (or replace) a snapshot file's row (columns of ``m002_snapshots``)."""
        with self._atomic() as db:
            db.table("snapshots").upsert(row, pk="key")

    def get_snapshot(self, key: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM snapshots WHERE key = ?", [key])
        return dict(rows[0]) if rows else None

    def list_snapshots(self, *, tokens_sha256: str | None = None) -> list[dict[str, Any]]:
        """Snapshot rows, most recently used first (optionally for one token sequence)."""
        sql, params = "SELECT * FROM snapshots", []
        if tokens_sha256 is not None:
            sql, params = sql + " WHERE tokens_sha256 = ?", [tokens_sha256]
        return [dict(r) for r in self._query(sql + " ORDER BY last_used_at DESC, key", params)]

    def touch_snapshot(self, key: str, when: str) -> None:
        with self._atomic() as db:
            db.execute("UPDATE snapshots SET last_used_at = ? WHERE key = ?", [when, key])

    def delete_snapshot(self, key: str) -> None:
        with self._atomic() as db:
            db.execute("DELETE FROM snapshots WHERE key = ?", [key])

    def get_snapshot_setting(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM snapshot_settings WHERE key = ?", [key])
        return str(rows[0]["value"]) if rows else None

    def put_snapshot_setting(self, key: str, value: str | None) -> None:
        """Store a snapshot setting; ``None`` removes it (back to the default)."""
        with self._atomic() as db:
            if value is None:
                db.execute("DELETE FROM snapshot_settings WHERE key = ?", [key])
            else:
                db.table("snapshot_settings").upsert({"key": key, "value": value}, pk="key")

    # -- waves and deep thinking (issue 6; engine/reading/waves.py and deep.py own the rows) --

    _READING_TABLES = ("wave_reads", "waves", "deep_sessions", "deep_steps")

    def _reading_table(self, table: str) -> str:
        if table not in self._READING_TABLES:
            raise ValueError(f"not a reading table: {table!r}")
        return table

    def insert_reading_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        """Insert rows of ``wave_reads``/``waves``/``deep_sessions``/``deep_steps`` in one
        transaction; return the last row's id (tables with an integer id)."""
        with self._atomic() as db:
            t = db.table(self._reading_table(table))
            for row in rows:
                t.insert(row)
            return int(t.last_rowid or 0)

    def update_reading_rows(self, table: str, where: dict[str, Any], fields: dict[str, Any]) -> None:
        """Set ``fields`` on the rows of a reading table matching every ``where`` column."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        cond = " AND ".join(f"{k} = ?" for k in where)
        with self._atomic() as db:
            db.execute(
                f"UPDATE {self._reading_table(table)} SET {sets} WHERE {cond}", [*fields.values(), *where.values()]
            )

    def list_reading_rows(self, table: str, where: dict[str, Any], *, order_by: str = "rowid") -> list[dict[str, Any]]:
        """Rows of a reading table matching every ``where`` column, in ``order_by`` order."""
        cond = " AND ".join(f"{k} = ?" for k in where) or "1"
        return self._query(
            f"SELECT * FROM {self._reading_table(table)} WHERE {cond} ORDER BY {order_by}", list(where.values())
        )

    def _mark_orphaned_reading_rows(self) -> None:
        # As for turns: a wave or step left running by a dead process was interrupted.
        for table in self._READING_TABLES:
            rows = self._query(f"SELECT rowid AS r, pid FROM {table} WHERE status = 'running'")
            dead = [r["r"] for r in rows if not _pid_alive(r["pid"])]
            if dead:
                with self._atomic() as db:
                    db.execute(
                        f"UPDATE {table} SET status = 'interrupted' WHERE rowid IN ({','.join('?' * len(dead))})",
                        dead,
                    )

    def integrity_check(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0]["integrity_check"])


def open_store(path: Path | None = None) -> Store:
    """Open (and migrate) the store at ``path``, by default the data folder's.

    Raises:
        StorageError: the file cannot be opened, migrated or written.
    """
    if path is None:
        from engine.config import db_path

        path = db_path()
    return Store(path)
