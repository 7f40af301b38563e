"""The ``Store``: documents, pages, corpora, sessions, runs and their steps, cached token
lists, calibrations and snapshot rows.

Contract:
- A document is written with all its pages in one transaction, or not at all.
- A run (engine/runs.py) is written with all its steps ``pending`` in one transaction,
  before the model runs. A step is set ``running`` with the pid and start time of the
  process that runs it; its text is saved as it streams (``save_step_text``) and it is
  finally marked ``done``, ``interrupted``, ``cancelled`` or ``failed``. The one orphan
  sweep, at open: a run or step left ``running`` by a process that no longer exists (or
  whose pid now belongs to a process started at another time) becomes ``interrupted``.
- Disk and lock failures surface as ``StorageError`` with a plain message.
"""

from __future__ import annotations

import array
import json
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
from engine.runs import Run, Status
from engine.store.migrations import migrations


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


@dataclass(frozen=True, kw_only=True)
class ProbeCell:
    """One answered probe cell (engine/probe.py): what was asked, what came back, its score."""

    model_sha256: str
    kv_type: str
    n_ctx: int
    suite: str
    task: str
    length: int
    depth: float
    sample: int
    seed: int
    prompt_tokens: int
    expected: tuple[str, ...]
    output: str
    score: float
    prefill_s: float
    generate_s: float
    runtime_version: str
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
        self._mark_orphaned_runs()

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

    def atomic(self) -> Any:
        """A write transaction (``BEGIN IMMEDIATE``; a savepoint inside another one), for
        modules that keep their own tables (engine/memory.py)."""
        return self._atomic()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read as dicts; sqlite errors become ``StorageError``."""
        return self._query(sql, params)

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
        pages = self._query("SELECT number, text, ocr FROM pages WHERE doc_sha256 = ? ORDER BY number", [sha256])
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
                ({"doc_sha256": doc.sha256, "number": p.number, "text": p.text, "ocr": int(p.ocr)} for p in doc.pages),
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
        rows = self._query("SELECT doc_sha256 FROM corpus_documents WHERE corpus_id = ? ORDER BY position", [corpus_id])
        if not rows:
            return None
        docs = [self.get_document(r["doc_sha256"]) for r in rows]
        return Corpus(tuple(d for d in docs if d is not None))

    # -- sessions and turns ------------------------------------------------------

    def create_session(self, *, title: str, corpus_id: str | None, kind: str = "ask") -> int:
        now = _now()
        with self._atomic() as db:
            table = db.table("sessions")
            table.insert({"title": title, "corpus_id": corpus_id, "kind": kind, "created_at": now, "updated_at": now})
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
        (prefix match, FTS5 over runs), most recently used first. Blank text lists all."""
        words = [w.replace('"', '""') for w in text.split()]
        if not words:
            return self.list_sessions()
        match = " ".join(f'"{w}"*' for w in words)
        title_like = ["%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for w in text.split()]
        title_sql = " AND ".join("s.title LIKE ? ESCAPE '\\'" for _ in title_like)
        rows = self._query(
            "SELECT s.* FROM sessions s WHERE s.deleted_at IS NULL AND ("
            "s.id IN (SELECT r.session_id FROM runs_fts JOIN runs r ON r.id = runs_fts.rowid"
            " WHERE runs_fts MATCH ?)"
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
            db.execute("DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE session_id = ?)", [session_id])
            db.execute("DELETE FROM runs WHERE session_id = ?", [session_id])
            db.execute("DELETE FROM sessions WHERE id = ?", [session_id])

    # -- runs and steps (engine/runs.py) -------------------------------------------

    def create_run(
        self,
        session_id: int,
        *,
        kind: str,
        question: str,
        model: str,
        settings: dict[str, Any],
        steps: Sequence[dict[str, Any]],
        plan: Sequence[Any] = (),
        corpus_tokens: int | None = None,
    ) -> int:
        """Store a run and every step ``pending`` in one transaction, before the model runs.

        Args:
            steps: each step's ``kind`` and optionally ``label`` and ``detail`` (a dict),
                in order; positions are 1-based.

        Returns:
            the run's id.
        """
        now = _now()
        with self._atomic() as db:
            runs = db.table("runs")
            runs.insert(
                {
                    "session_id": session_id,
                    "kind": str(kind),
                    "question": question,
                    "model": model,
                    "settings": json.dumps(settings, sort_keys=True),
                    "plan": json.dumps(list(plan)),
                    "status": str(Status.PENDING),
                    "corpus_tokens": corpus_tokens,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            run_id = int(runs.last_pk)  # type: ignore[arg-type]
            db.table("steps").insert_all(
                {
                    "run_id": run_id,
                    "position": i,
                    "kind": step["kind"],
                    "label": step.get("label", ""),
                    "detail": json.dumps(step.get("detail", {}), sort_keys=True),
                    "status": str(Status.PENDING),
                }
                for i, step in enumerate(steps, start=1)
            )
            db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", [now, session_id])
        return run_id

    def get_run(self, run_id: int) -> Run | None:
        """The run with its steps in order, or None."""
        rows = self._query("SELECT * FROM runs WHERE id = ?", [run_id])
        if not rows:
            return None
        steps = self._query("SELECT * FROM steps WHERE run_id = ? ORDER BY position", [run_id])
        return Run.from_rows(rows[0], steps)

    def list_runs(self, session_id: int) -> list[Run]:
        """Every run of a session, in the order they were asked."""
        ids = self._query("SELECT id FROM runs WHERE session_id = ? ORDER BY id", [session_id])
        return [r for r in (self.get_run(int(row["id"])) for row in ids) if r is not None]

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set columns of a run (``settings``/``citations`` as JSON text) and touch its session."""
        now = _now()
        fields = {k: (str(v) if isinstance(v, Status) else v) for k, v in fields.items()}
        with self._atomic() as db:
            db.table("runs").update(run_id, {**fields, "updated_at": now})
            db.execute(
                "UPDATE sessions SET updated_at = ? WHERE id = (SELECT session_id FROM runs WHERE id = ?)",
                [now, run_id],
            )

    def update_step(self, run_id: int, position: int, **fields: Any) -> None:
        """Set columns of one step (``citations``/``detail`` as JSON text)."""
        fields = {k: (str(v) if isinstance(v, Status) else v) for k, v in fields.items()}
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._atomic() as db:
            db.execute(
                f"UPDATE steps SET {sets} WHERE run_id = ? AND position = ?", [*fields.values(), run_id, position]
            )

    def save_step_text(self, run_id: int, position: int, text: str) -> None:
        """Keep what has streamed so far: a crash loses at most the last few tokens."""
        with self._atomic() as db:
            db.execute("UPDATE steps SET text = ? WHERE run_id = ? AND position = ?", [text, run_id, position])

    def count_questions(self, session_id: int) -> int:
        """How many questions a session holds: its runs, of every kind."""
        return int(self._query("SELECT count(*) AS n FROM runs WHERE session_id = ?", [session_id])[0]["n"])

    def _mark_orphaned_runs(self) -> None:
        # The one orphan sweep: a step or run left running by a dead process was interrupted.
        for table, key in (("steps", "rowid"), ("runs", "id")):
            rows = self._query(
                f"SELECT {key} AS k, pid, pid_started FROM {table} WHERE status = ?", [str(Status.RUNNING)]
            )
            dead = [r["k"] for r in rows if not is_alive(r["pid"], r["pid_started"])]
            if dead:
                with self._atomic() as db:
                    db.execute(
                        f"UPDATE {table} SET status = ? WHERE {key} IN ({','.join('?' * len(dead))})",
                        [str(Status.INTERRUPTED), *dead],
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

    # -- effective-context probes (issue 14) -------------------------------------------

    def put_probe_cell(self, cell: ProbeCell) -> None:
        """Store (or replace) one answered probe cell."""
        with self._atomic() as db:
            db.table("probe_cells").upsert(
                {
                    "model_sha256": cell.model_sha256,
                    "kv_type": cell.kv_type,
                    "n_ctx": cell.n_ctx,
                    "suite": cell.suite,
                    "task": cell.task,
                    "length": cell.length,
                    "depth": cell.depth,
                    "sample": cell.sample,
                    "seed": cell.seed,
                    "prompt_tokens": cell.prompt_tokens,
                    "expected": json.dumps(list(cell.expected)),
                    "output": cell.output,
                    "score": cell.score,
                    "prefill_s": cell.prefill_s,
                    "generate_s": cell.generate_s,
                    "runtime_version": cell.runtime_version,
                    "measured_at": cell.measured_at or _now(),
                },
                pk=("model_sha256", "kv_type", "n_ctx", "suite", "task", "length", "depth", "sample"),
            )

    def get_probe_cells(
        self, model_sha256: str, *, kv_type: str | None = None, n_ctx: int | None = None, suite: str | None = None
    ) -> list[ProbeCell]:
        """A model's stored probe cells, by KV type, length, task, depth and sample."""
        sql = "SELECT * FROM probe_cells WHERE model_sha256 = ?"
        params: list[Any] = [model_sha256]
        for column, value in (("kv_type", kv_type), ("n_ctx", n_ctx), ("suite", suite)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(str(value) if column == "kv_type" else value)
        rows = self._query(sql + " ORDER BY kv_type, length, task, depth, sample", params)
        return [
            ProbeCell(
                model_sha256=r["model_sha256"],
                kv_type=r["kv_type"],
                n_ctx=r["n_ctx"],
                suite=r["suite"],
                task=r["task"],
                length=r["length"],
                depth=float(r["depth"]),
                sample=r["sample"],
                seed=r["seed"],
                prompt_tokens=r["prompt_tokens"],
                expected=tuple(json.loads(r["expected"])),
                output=r["output"],
                score=float(r["score"]),
                prefill_s=float(r["prefill_s"]),
                generate_s=float(r["generate_s"]),
                runtime_version=r["runtime_version"],
                measured_at=r["measured_at"],
            )
            for r in rows
        ]

    # -- KV snapshots (issue 4; engine/warm.py owns the files) ----------

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

    def put_server_slot(self, row: dict[str, Any]) -> None:
        """Record (or replace) a slot file saved on a server (columns of ``m010_server_slots``)."""
        with self._atomic() as db:
            db.table("server_slots").upsert(row, pk="key")

    def get_server_slot(self, key: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM server_slots WHERE key = ?", [key])
        return dict(rows[0]) if rows else None

    def delete_server_slot(self, key: str) -> None:
        with self._atomic() as db:
            db.execute("DELETE FROM server_slots WHERE key = ?", [key])

    def put_wave_note(self, key: str, text: str, *, output_tokens: int, budget: int) -> None:
        """Keep a note a wave wrote for one part (``m011_wave_notes``): complete when it
        ended before its budget of tokens."""
        row = {
            "key": key,
            "text": text,
            "output_tokens": output_tokens,
            "budget": budget,
            "complete": int(output_tokens < budget),
            "created_at": _now(),
        }
        with self._atomic() as db:
            db.table("wave_notes").upsert(row, pk="key")

    def get_wave_note(self, key: str, *, budget: int) -> tuple[str, int] | None:
        """The note kept under ``key`` (its text and tokens) if it holds for ``budget``: it
        ended before its own budget and within this one, or had this very budget."""
        rows = self._query(
            "SELECT text, output_tokens FROM wave_notes WHERE key = ? "
            "AND ((complete AND output_tokens <= ?) OR budget = ?)",
            [key, budget, budget],
        )
        return (str(rows[0]["text"]), int(rows[0]["output_tokens"])) if rows else None

    def clear_wave_notes(self) -> int:
        """Forget every kept wave note; returns how many there were."""
        with self._atomic() as db:
            return db.execute("DELETE FROM wave_notes").rowcount

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
