"""Numbered schema migrations (sqlite-utils ``Migrations``: each runs in a transaction
together with its record, so a crash mid-migration leaves the store as it was).

Never edit a migration that has shipped: add ``m00N_...`` instead. Users upgrade with
their chats in place.
"""

from __future__ import annotations

import json

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("longread")


def _execute_all(db: Database, script: str) -> None:
    """Run ``;``-separated DDL statement by statement.

    ``executescript`` would COMMIT first and break the migration's transaction.
    """
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations()
def m001_initial(db: Database) -> None:
    _execute_all(
        db,
        """
        CREATE TABLE documents (
            sha256 TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            path TEXT NOT NULL DEFAULT '',
            size_bytes INTEGER NOT NULL DEFAULT 0,
            n_pages INTEGER NOT NULL,
            n_chars INTEGER NOT NULL,
            extractor TEXT NOT NULL DEFAULT '',
            added_at TEXT NOT NULL
        );
        CREATE TABLE pages (
            doc_sha256 TEXT NOT NULL REFERENCES documents(sha256) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            text TEXT NOT NULL,
            ocr INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (doc_sha256, number)
        );
        CREATE TABLE corpora (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL
        );
        CREATE TABLE corpus_documents (
            corpus_id TEXT NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            doc_sha256 TEXT NOT NULL REFERENCES documents(sha256),
            PRIMARY KEY (corpus_id, position)
        );
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            corpus_id TEXT REFERENCES corpora(id),
            kind TEXT NOT NULL DEFAULT 'ask',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            question TEXT NOT NULL,
            answer TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            error TEXT,
            model TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}',
            corpus_tokens INTEGER,
            prompt_tokens INTEGER,
            prefill_tokens INTEGER,
            answer_tokens INTEGER,
            prefill_s REAL,
            generate_s REAL,
            pid INTEGER,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX turns_session ON turns(session_id, position);
        CREATE TABLE token_cache (
            doc_sha256 TEXT NOT NULL REFERENCES documents(sha256) ON DELETE CASCADE,
            tokenizer TEXT NOT NULL,
            n_tokens INTEGER NOT NULL,
            tokens BLOB NOT NULL,
            PRIMARY KEY (doc_sha256, tokenizer)
        );
        """,
    )


@migrations()
def m002_snapshots(db: Database) -> None:
    """KV snapshots of processed corpora on disk (issue 4).

    One row per snapshot file in the data folder's ``snapshots/``. ``key`` is the
    fingerprint of everything that makes the file valid (model sha256, window, K and V
    types, flash attention, sliding-window mode, llama-cpp-python version, the corpus
    tokens); the columns repeat those inputs so a row can be checked and shown.
    ``checksum`` (crc32 of the file) catches truncated or damaged files; ``check`` holds
    the top logits after the corpus's last token, compared after every restore.
    ``last_used_at`` orders eviction when the disk budget is exceeded.
    ``snapshot_settings`` holds the user's disk budget.
    """
    _execute_all(
        db,
        """
        CREATE TABLE snapshots (
            key TEXT PRIMARY KEY,
            file TEXT NOT NULL,
            model_sha256 TEXT NOT NULL,
            model_name TEXT NOT NULL,
            n_ctx INTEGER NOT NULL,
            type_k TEXT NOT NULL,
            type_v TEXT NOT NULL,
            flash_attn INTEGER NOT NULL,
            swa_full INTEGER NOT NULL,
            llama_cpp_version TEXT NOT NULL,
            tokens_sha256 TEXT NOT NULL,
            n_tokens INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            checksum TEXT NOT NULL,
            "check" TEXT NOT NULL,
            prefill_s REAL NOT NULL,
            created_at TEXT NOT NULL,
            last_used_at TEXT NOT NULL
        );
        CREATE INDEX snapshots_tokens ON snapshots(tokens_sha256, model_sha256);
        CREATE TABLE snapshot_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )
        """,
    )


@migrations()
def m003_calibration(db: Database) -> None:
    """Prefill speed measured per model, KV cache type and thread count (issue 5).

    The planner turns these into "about 3 min at f16" estimates. ``batch_seconds`` is a
    JSON list: the seconds each ``batch_size``-token batch took, in order, so the
    planner can separate the per-token cost from the cost that grows with position.
    Keyed by llama.cpp's version too: an upgrade can change speeds, so it re-measures.
    """
    _execute_all(
        db,
        """
        CREATE TABLE calibrations (
            model_sha256 TEXT NOT NULL,
            kv_type TEXT NOT NULL,
            n_threads INTEGER NOT NULL,
            batch_size INTEGER NOT NULL,
            llama_cpp_version TEXT NOT NULL,
            batch_seconds TEXT NOT NULL,
            flash_attn INTEGER NOT NULL,
            measured_at TEXT NOT NULL,
            PRIMARY KEY (model_sha256, kv_type, n_threads, batch_size, llama_cpp_version)
        )
        """,
    )


@migrations()
def m004_fts(db: Database) -> None:
    """Full-text search over questions and answers, and sessions deleted with undo.

    ``turns_fts`` is an external-content FTS5 index over ``turns`` kept in step by
    triggers (https://sqlite.org/fts5.html#external_content_tables); the rebuild indexes
    the turns stored before this migration. ``sessions.deleted_at`` lets the GUI delete a
    session, offer undo, and purge it later. Statements run one by one (not through
    ``_execute_all``): trigger bodies contain semicolons.
    """
    statements = [
        "ALTER TABLE sessions ADD COLUMN deleted_at TEXT",
        "CREATE VIRTUAL TABLE turns_fts USING fts5("
        "question, answer, content='turns', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
        """CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns BEGIN
            INSERT INTO turns_fts(rowid, question, answer) VALUES (new.id, new.question, new.answer);
        END""",
        """CREATE TRIGGER turns_fts_delete AFTER DELETE ON turns BEGIN
            INSERT INTO turns_fts(turns_fts, rowid, question, answer)
                VALUES ('delete', old.id, old.question, old.answer);
        END""",
        """CREATE TRIGGER turns_fts_update AFTER UPDATE OF question, answer ON turns BEGIN
            INSERT INTO turns_fts(turns_fts, rowid, question, answer)
                VALUES ('delete', old.id, old.question, old.answer);
            INSERT INTO turns_fts(rowid, question, answer) VALUES (new.id, new.question, new.answer);
        END""",
        "INSERT INTO turns_fts(turns_fts) VALUES ('rebuild')",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m005_waves_deep(db: Database) -> None:
    """Reads in waves and deep-thinking sessions, stored step by step (issue 6).

    ``wave_reads`` holds one read of a corpus in waves: the question, the window and
    settings, and ``plan`` (JSON: for each wave, the page ranges it reads). ``waves``
    holds one row per wave, written ``pending`` with the plan, ``running`` (with the
    process id) before the model reads it and ``done`` with its notes after; a row left
    ``running`` by a dead process becomes ``interrupted`` and is read again on resume,
    while a ``done`` wave is never read again. ``deep_sessions`` and ``deep_steps`` do
    the same for deep thinking (plan, examine, hypotheses, critique, answer). Each step
    keeps its text, token counts, timings and checked citations (JSON).
    """
    _execute_all(
        db,
        """
        CREATE TABLE wave_reads (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            question TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}',
            plan TEXT NOT NULL DEFAULT '[]',
            n_waves INTEGER NOT NULL,
            status TEXT NOT NULL,
            answer TEXT NOT NULL DEFAULT '',
            citations TEXT NOT NULL DEFAULT '[]',
            prompt_tokens INTEGER,
            prefill_tokens INTEGER,
            answer_tokens INTEGER,
            prefill_s REAL,
            generate_s REAL,
            error TEXT,
            pid INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX wave_reads_session ON wave_reads(session_id);
        CREATE TABLE waves (
            read_id INTEGER NOT NULL REFERENCES wave_reads(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            pages TEXT NOT NULL,
            segments TEXT NOT NULL DEFAULT '[]',
            planned_tokens INTEGER NOT NULL DEFAULT 0,
            notes TEXT NOT NULL DEFAULT '',
            citations TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL,
            prompt_tokens INTEGER,
            prefill_tokens INTEGER,
            note_tokens INTEGER,
            prefill_s REAL,
            generate_s REAL,
            error TEXT,
            pid INTEGER,
            started_at TEXT,
            finished_at TEXT,
            PRIMARY KEY (read_id, position)
        );
        CREATE TABLE deep_sessions (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            question TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL,
            error TEXT,
            pid INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX deep_sessions_session ON deep_sessions(session_id);
        CREATE TABLE deep_steps (
            deep_id INTEGER NOT NULL REFERENCES deep_sessions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            citations TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL,
            prompt_tokens INTEGER,
            prefill_tokens INTEGER,
            reused_tokens INTEGER,
            output_tokens INTEGER,
            prefill_s REAL,
            generate_s REAL,
            error TEXT,
            pid INTEGER,
            started_at TEXT,
            finished_at TEXT,
            PRIMARY KEY (deep_id, position)
        )
        """,
    )


# -- m006: one run model (issue 12) -------------------------------------------------

_RUN_STATUS = {"planned": "pending"}  # the old deep/waves "planned" is the run model's "pending"


@migrations()
def m006_runs(db: Database) -> None:
    """Every way of reading is a run of ordered, stored steps (issue 12).

    ``runs`` holds one question asked of a session's corpus: its kind (``ask``, ``think``,
    ``waves``), the question, the settings it ran with, its status (``engine.runs.Status``),
    and its final answer with checked citations (kept on the run for search and listing).
    ``steps`` holds its ordered steps: an ask is one ``answer`` step; deep thinking its five
    (plan, examine, hypotheses, critique, answer); waves one ``wave`` step per wave plus the
    final ``answer``. Each step keeps its text, citations, token counts, timings and the
    process (pid and its start time, so a reused pid is not taken for a live one) that ran it.

    Today's ``turns``, ``wave_reads``/``waves`` and ``deep_sessions``/``deep_steps`` rows move
    in, in the order they were created within each session; every question, answer, step
    text, status and timestamp is kept. The old tables and the turns' FTS index are dropped,
    and ``runs_fts`` indexes questions and answers (the sessions search).
    """
    statements = [
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            question TEXT NOT NULL,
            answer TEXT NOT NULL DEFAULT '',
            citations TEXT NOT NULL DEFAULT '[]',
            model TEXT NOT NULL DEFAULT '',
            settings TEXT NOT NULL DEFAULT '{}',
            plan TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL,
            error TEXT,
            corpus_tokens INTEGER,
            pid INTEGER,
            pid_started REAL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        )""",
        "CREATE INDEX runs_session ON runs(session_id, id)",
        """CREATE TABLE steps (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '{}',
            text TEXT NOT NULL DEFAULT '',
            citations TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL,
            prompt_tokens INTEGER,
            prefill_tokens INTEGER,
            reused_tokens INTEGER,
            output_tokens INTEGER,
            prefill_s REAL,
            generate_s REAL,
            error TEXT,
            pid INTEGER,
            pid_started REAL,
            started_at TEXT,
            finished_at TEXT,
            PRIMARY KEY (run_id, position)
        )""",
    ]
    for statement in statements:
        db.execute(statement)
    _move_old_rows(db)
    for statement in [
        "DROP TRIGGER turns_fts_insert",
        "DROP TRIGGER turns_fts_delete",
        "DROP TRIGGER turns_fts_update",
        "DROP TABLE turns_fts",
        "DROP TABLE turns",
        "DROP TABLE waves",
        "DROP TABLE wave_reads",
        "DROP TABLE deep_steps",
        "DROP TABLE deep_sessions",
        "CREATE VIRTUAL TABLE runs_fts USING fts5("
        "question, answer, content='runs', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
        """CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN
            INSERT INTO runs_fts(rowid, question, answer) VALUES (new.id, new.question, new.answer);
        END""",
        """CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
            INSERT INTO runs_fts(runs_fts, rowid, question, answer)
                VALUES ('delete', old.id, old.question, old.answer);
        END""",
        """CREATE TRIGGER runs_fts_update AFTER UPDATE OF question, answer ON runs BEGIN
            INSERT INTO runs_fts(runs_fts, rowid, question, answer)
                VALUES ('delete', old.id, old.question, old.answer);
            INSERT INTO runs_fts(rowid, question, answer) VALUES (new.id, new.question, new.answer);
        END""",
        "INSERT INTO runs_fts(runs_fts) VALUES ('rebuild')",
    ]:
        db.execute(statement)


@migrations()
def m007_probe_cells(db: Database) -> None:
    """Effective-context probes (issue 14): one row per probe cell a model answered.

    Keyed by the model file's sha256, the KV cache type, the window it was loaded with,
    the suite (``engine.probe.SUITE``: a changed generator re-measures), the task, the
    length in tokens, the depth (-1: spread over the whole context) and the sample. A
    cancelled probe keeps the rows it finished and resumes from them.
    """
    db.execute(
        """CREATE TABLE probe_cells (
            model_sha256 TEXT NOT NULL,
            kv_type TEXT NOT NULL,
            n_ctx INTEGER NOT NULL,
            suite TEXT NOT NULL,
            task TEXT NOT NULL,
            length INTEGER NOT NULL,
            depth REAL NOT NULL,
            sample INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            expected TEXT NOT NULL,
            output TEXT NOT NULL,
            score REAL NOT NULL,
            prefill_s REAL NOT NULL,
            generate_s REAL NOT NULL,
            runtime_version TEXT NOT NULL,
            measured_at TEXT NOT NULL,
            PRIMARY KEY (model_sha256, kv_type, n_ctx, suite, task, length, depth, sample)
        )"""
    )


@migrations()
def m008_memory(db: Database) -> None:
    """Long-term memory (issue 15): what earlier sessions found, carried into new ones.

    ``memories`` holds one entry per finished run (its question, its answer with the
    checked citations, ``source`` the run's kind, ``run_id``) or written by the user
    (``source`` 'user'), with its date and whether it is ``pinned`` (carried into every
    session). ``memory_documents`` ties an entry to the documents it was about, by
    sha256 (a new session on any of them carries it). ``memories_fts`` indexes questions
    and answers (external content, kept in step by triggers: forgetting an entry deletes
    its index rows too). ``snapshot_memories`` records which entries a KV snapshot of
    corpus + memory holds, so an edit or a forget removes exactly those snapshots.

    The finished runs already stored become entries, dated when they finished, tied to
    their session's documents; unfinished ones do not (they become entries when resumed
    to the end).
    """
    statements = [
        """CREATE TABLE memories (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
            question TEXT NOT NULL DEFAULT '',
            answer TEXT NOT NULL,
            citations TEXT NOT NULL DEFAULT '[]',
            pinned INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE UNIQUE INDEX memories_run ON memories(run_id) WHERE run_id IS NOT NULL",
        """CREATE TABLE memory_documents (
            memory_id INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
            doc_sha256 TEXT NOT NULL,
            PRIMARY KEY (memory_id, doc_sha256)
        )""",
        "CREATE INDEX memory_documents_doc ON memory_documents(doc_sha256)",
        """CREATE TABLE snapshot_memories (
            snapshot_key TEXT NOT NULL,
            memory_id INTEGER NOT NULL,
            PRIMARY KEY (snapshot_key, memory_id)
        )""",
        "CREATE INDEX snapshot_memories_memory ON snapshot_memories(memory_id)",
        """CREATE TRIGGER snapshots_memory_delete AFTER DELETE ON snapshots BEGIN
            DELETE FROM snapshot_memories WHERE snapshot_key = old.key;
        END""",
        "CREATE VIRTUAL TABLE memories_fts USING fts5("
        "question, answer, content='memories', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
        """CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts(rowid, question, answer) VALUES (new.id, new.question, new.answer);
        END""",
        """CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, question, answer)
                VALUES ('delete', old.id, old.question, old.answer);
        END""",
        """CREATE TRIGGER memories_fts_update AFTER UPDATE OF question, answer ON memories BEGIN
            INSERT INTO memories_fts(memories_fts, rowid, question, answer)
                VALUES ('delete', old.id, old.question, old.answer);
            INSERT INTO memories_fts(rowid, question, answer) VALUES (new.id, new.question, new.answer);
        END""",
        # The finished runs stored before: one entry each, in the order they were asked.
        """INSERT INTO memories (source, run_id, question, answer, citations, pinned, created_at, updated_at)
            SELECT kind, id, question, answer, citations, 0,
                   COALESCE(finished_at, updated_at, created_at), COALESCE(finished_at, updated_at, created_at)
            FROM runs WHERE status = 'done' ORDER BY id""",
        """INSERT OR IGNORE INTO memory_documents (memory_id, doc_sha256)
            SELECT m.id, cd.doc_sha256 FROM memories m
            JOIN runs r ON r.id = m.run_id
            JOIN sessions s ON s.id = r.session_id
            JOIN corpus_documents cd ON cd.corpus_id = s.corpus_id""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m009_document_snapshots(db: Database) -> None:
    """Per-document KV snapshots (issue 17) live beside corpus snapshots in ``snapshots``.

    ``kind`` is ``corpus`` (the prefix of a whole corpus, as before) or ``document`` (one
    document's laid-out tokens, composed into any corpus that holds it); ``label`` is the
    document's name when its snapshot was made, for listing. Existing rows are corpora.
    """
    _execute_all(
        db,
        """
        ALTER TABLE snapshots ADD COLUMN kind TEXT NOT NULL DEFAULT 'corpus';
        ALTER TABLE snapshots ADD COLUMN label TEXT NOT NULL DEFAULT ''
        """,
    )


@migrations()
def m010_server_slots(db: Database) -> None:
    """Slot files saved on an inference server (issue 16: llama-server ``--slot-save-path``).

    The file lives on the server's disk; the row says which tokens it holds (their sha256
    and count, in ``key`` with the server's model, build and window), the greedy token that
    follows them (the restore check), and when it was made and last used. Nothing of the
    documents' text is stored here.
    """
    _execute_all(
        db,
        """
        CREATE TABLE server_slots (
            key TEXT PRIMARY KEY,
            server TEXT NOT NULL,
            model TEXT NOT NULL,
            filename TEXT NOT NULL,
            n_tokens INTEGER NOT NULL,
            next_token INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL DEFAULT 0,
            prefill_s REAL,
            created_at TEXT NOT NULL,
            last_used_at TEXT NOT NULL
        )
        """,
    )


@migrations()
def m011_wave_notes(db: Database) -> None:
    """Notes a wave wrote for one part of a question (issue 13: a part asked again is not
    written again). ``key`` is the fingerprint of everything the note was written from (the
    model, its settings and build, the prompt's tokens: the page block, the part and the
    words the note began with) and of the rule that ended it; the row keeps what the model
    wrote, the tokens it took, the budget it had and whether it ended before the budget
    (then it holds for any budget at least as large)."""
    _execute_all(
        db,
        """
        CREATE TABLE wave_notes (
            key TEXT PRIMARY KEY,
            text TEXT NOT NULL,
            output_tokens INTEGER NOT NULL,
            budget INTEGER NOT NULL,
            complete INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
    )


def _rows(db: Database, sql: str, params: list[object] | None = None) -> list[dict[str, object]]:
    cursor = db.execute(sql, params or [])
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _move_old_rows(db: Database) -> None:
    """Copy turns, deep runs and reads in waves into ``runs``/``steps``, oldest first."""
    old: list[tuple[str, int, str, dict[str, object]]] = []
    for t in _rows(db, "SELECT * FROM turns"):
        old.append((str(t["created_at"]), 0, "ask", t))
    for d in _rows(db, "SELECT * FROM deep_sessions"):
        old.append((str(d["created_at"]), 1, "think", d))
    for r in _rows(db, "SELECT * FROM wave_reads"):
        old.append((str(r["created_at"]), 2, "waves", r))
    # Within a session a turn's position orders asks; across kinds, creation time does.
    old.sort(key=lambda o: (o[0], o[1], int(o[3].get("position") or 0), int(o[3]["id"])))  # type: ignore[call-overload]
    for created, _, kind, row in old:
        run = {
            "session_id": row["session_id"],
            "kind": kind,
            "question": row["question"],
            "model": row["model"],
            "settings": row["settings"],
            "status": _RUN_STATUS.get(str(row["status"]), row["status"]),
            "error": row["error"],
            "pid": row["pid"],
            "created_at": created,
            "updated_at": row.get("updated_at") or row.get("finished_at") or created,
            "finished_at": row["finished_at"],
        }
        if kind == "ask":
            run.update(answer=row["answer"], corpus_tokens=row["corpus_tokens"])
        elif kind == "waves":
            run.update(answer=row["answer"], citations=row["citations"], plan=row["plan"])
        columns = list(run)
        cursor = db.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [run[c] for c in columns],
        )
        run_id = cursor.lastrowid
        for step in _old_steps(db, kind, row):
            step["run_id"] = run_id
            columns = list(step)
            db.execute(
                f"INSERT INTO steps ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [step[c] for c in columns],
            )
        if kind == "think":
            answer = db.execute(
                "SELECT text, citations FROM steps WHERE run_id = ? AND kind = 'answer' AND status = 'done'", [run_id]
            ).fetchone()
            if answer:
                db.execute("UPDATE runs SET answer = ?, citations = ? WHERE id = ?", [answer[0], answer[1], run_id])


def _old_steps(db: Database, kind: str, row: dict[str, object]) -> list[dict[str, object]]:
    if kind == "ask":
        return [
            {
                "position": 1,
                "kind": "answer",
                "text": row["answer"],
                "status": row["status"],
                "prompt_tokens": row["prompt_tokens"],
                "prefill_tokens": row["prefill_tokens"],
                "output_tokens": row["answer_tokens"],
                "prefill_s": row["prefill_s"],
                "generate_s": row["generate_s"],
                "error": row["error"],
                "pid": row["pid"],
                "started_at": row["created_at"],
                "finished_at": row["finished_at"],
            }
        ]
    if kind == "think":
        steps = _rows(db, "SELECT * FROM deep_steps WHERE deep_id = ? ORDER BY position", [row["id"]])
        for s in steps:
            s.pop("deep_id")
            s["status"] = _RUN_STATUS.get(str(s["status"]), s["status"])
        return steps
    waves = _rows(db, "SELECT * FROM waves WHERE read_id = ? ORDER BY position", [row["id"]])
    steps = []
    for w in waves:
        steps.append(
            {
                "position": w["position"],
                "kind": "wave",
                "label": w["pages"],
                "detail": json.dumps(
                    {"segments": json.loads(str(w["segments"])), "planned_tokens": w["planned_tokens"]}
                ),
                "text": w["notes"],
                "citations": w["citations"],
                "status": _RUN_STATUS.get(str(w["status"]), w["status"]),
                "prompt_tokens": w["prompt_tokens"],
                "prefill_tokens": w["prefill_tokens"],
                "output_tokens": w["note_tokens"],
                "prefill_s": w["prefill_s"],
                "generate_s": w["generate_s"],
                "error": w["error"],
                "pid": w["pid"],
                "started_at": w["started_at"],
                "finished_at": w["finished_at"],
            }
        )
    # The final answer becomes the last step; pending until the read got that far.
    status = str(row["status"])
    steps.append(
        {
            "position": len(waves) + 1,
            "kind": "answer",
            "text": row["answer"],
            "citations": row["citations"],
            "status": "done" if status == "done" else "pending",
            "prompt_tokens": row["prompt_tokens"],
            "prefill_tokens": row["prefill_tokens"],
            "output_tokens": row["answer_tokens"],
            "prefill_s": row["prefill_s"],
            "generate_s": row["generate_s"],
            "finished_at": row["finished_at"] if status == "done" else None,
        }
    )
    return steps
