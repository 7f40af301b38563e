"""The SQLite store: migrations, WAL, atomic documents, runs and orphaned runs, and the upgrade
of a store written by the 0.1.0 release."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from engine.corpus import Corpus, Document, make_pages
from engine.runs import RunKind, Status
from engine.store import Store, open_store


def _doc(text: str = "Hello") -> Document:
    return Document(sha256=f"sha-{text}", name=f"{text}.txt", kind="text", pages=make_pages([text, text + " 2"]))


def test_store_is_wal_and_migrated(home: Path) -> None:
    path = home / "longread.db"
    first = open_store(path)
    first.close()
    again = open_store(path)  # migrations are recorded: opening twice applies nothing twice
    mode = again.db.execute("PRAGMA journal_mode").fetchone()[0]
    applied = [r[0] for r in again.db.execute("SELECT name FROM _sqlite_migrations").fetchall()]
    again.close()
    assert mode == "wal"
    assert applied[0] == "m001_initial"
    assert len(applied) == len(set(applied))


def test_default_store_lives_in_longread_home(home: Path) -> None:
    store = open_store()
    store.close()
    assert (home / "longread.db").is_file()


def test_document_and_pages_round_trip(store: Store) -> None:
    doc = _doc()
    store.add_document(doc)
    store.add_document(doc)  # idempotent
    assert store.count_documents() == 1
    assert store.get_document(doc.sha256) == Document(
        sha256=doc.sha256, name=doc.name, kind="text", pages=doc.pages, path="", size_bytes=0, extractor=""
    )


def test_document_write_is_all_or_nothing(store: Store) -> None:
    # Two pages with the same number violate the primary key midway: nothing may remain.
    bad = Document(sha256="dup", name="dup.txt", kind="text", pages=(make_pages(["a"])[0], make_pages(["b"])[0]))
    try:
        store.add_document(bad)
    except Exception:
        pass
    assert store.count_documents() == 0
    assert store.db.execute("SELECT count(*) FROM pages").fetchone()[0] == 0


def test_run_lifecycle(store: Store) -> None:
    doc = _doc()
    store.add_document(doc)
    corpus_id = store.save_corpus(Corpus((doc,)))
    session = store.create_session(title="Q", corpus_id=corpus_id)
    run_id = store.create_run(
        session, kind="ask", question="What?", model="m.gguf", settings={"n_ctx": 1024}, steps=[{"kind": "answer"}]
    )
    [run] = store.list_runs(session)
    assert (run.id, run.kind, run.question, run.status, run.answer) == (run_id, "ask", "What?", "pending", "")
    assert [(s.position, s.kind, s.status) for s in run.steps] == [(1, "answer", "pending")]
    store.update_step(run_id, 1, status="running")
    store.save_step_text(run_id, 1, "Part")
    assert store.list_runs(session)[0].steps[0].text == "Part"
    store.update_step(run_id, 1, status="done", text="Partly done.", prefill_tokens=10, prefill_s=0.5)
    store.update_run(run_id, status="done", answer="Partly done.")
    run = store.get_run(run_id)
    assert run is not None
    step = run.steps[0]
    assert (run.status, run.answer, step.prefill_tokens, run.settings["n_ctx"]) == ("done", "Partly done.", 10, 1024)
    assert run.status is Status.DONE and step.status is Status.DONE
    assert store.count_questions(session) == 1
    assert store.get_corpus(corpus_id) == Corpus((store.get_document(doc.sha256),))  # type: ignore[arg-type]


def test_run_of_a_dead_process_is_marked_interrupted(home: Path) -> None:
    path = home / "longread.db"
    code = (
        "import os, sys; from pathlib import Path; from engine.store import open_store\n"
        f"s = open_store(Path({str(path)!r}))\n"
        "sid = s.create_session(title='t', corpus_id=None)\n"
        "from engine.procs import current_process\n"
        "pid, started = current_process()\n"
        "r = s.create_run(sid, kind='ask', question='Q?', model='m', settings={}, steps=[{'kind': 'answer'}])\n"
        "s.update_run(r, status='running', pid=pid, pid_started=started)\n"
        "s.update_step(r, 1, status='running', pid=pid, pid_started=started)\n"
        "s.save_step_text(r, 1, 'half an answer')\n"
        "os._exit(9)  # die without finishing the turn\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], env=os.environ.copy())
    assert proc.returncode == 9
    store = open_store(path)
    runs = store.list_runs(store.list_sessions()[0].id)
    assert store.integrity_check() == "ok"
    store.close()
    assert [(r.status, r.steps[0].status, r.steps[0].text) for r in runs] == [
        ("interrupted", "interrupted", "half an answer")
    ]


def test_storage_error_has_a_plain_message(tmp_path: Path) -> None:
    from engine.errors import StorageError
    from engine.store.db import describe_sqlite_error

    message = describe_sqlite_error(sqlite3.OperationalError("database or disk is full"), tmp_path / "x.db")
    assert "disk" in message and "full" in message
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    try:
        open_store(bad)
    except StorageError as exc:
        assert "damaged" in exc.message or "not a database" in exc.message
    else:
        raise AssertionError("a non-database file was opened as a store")


def test_many_threads_can_open_a_new_store_at_once(home: Path) -> None:
    import threading

    path = home / "fresh.db"
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_and_write(i: int) -> None:
        try:
            start.wait()
            store = open_store(path)
            store.create_session(title=f"s{i}", corpus_id=None)
            store.close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_store(path)
    assert sorted(s.title for s in store.list_sessions()) == [f"s{i}" for i in range(6)]
    applied = [r[0] for r in store.db.execute("SELECT name FROM _sqlite_migrations").fetchall()]
    store.close()
    assert len(applied) == len(set(applied))


def test_migrations_are_registered_in_numeric_order() -> None:
    from engine.store.migrations import migrations

    names = [m.name for m in migrations._migrations]
    numbers = [int(n[1:4]) for n in names]
    assert numbers == list(range(1, len(names) + 1)), names


def test_a_reused_pid_is_not_taken_for_the_process_that_ran_a_step(store: Store) -> None:
    # This process is alive, but a row that says it started 1,000 s earlier was written by
    # another process that had the same pid: the sweep marks it interrupted.
    from engine.procs import current_process

    session = store.create_session(title="t", corpus_id=None)
    pid, started = current_process()
    live = store.create_run(session, kind="ask", question="live", model="m", settings={}, steps=[{"kind": "answer"}])
    reused = store.create_run(session, kind="ask", question="old", model="m", settings={}, steps=[{"kind": "answer"}])
    for run_id, when in ((live, started), (reused, started - 1000)):
        store.update_run(run_id, status=Status.RUNNING, pid=pid, pid_started=when)
        store.update_step(run_id, 1, status=Status.RUNNING, pid=pid, pid_started=when)
    again = open_store(store.path)
    try:
        runs = {r.question: r for r in again.list_runs(session)}
    finally:
        again.close()
    assert runs["live"].status is Status.RUNNING and runs["live"].steps[0].status is Status.RUNNING
    assert runs["old"].status is Status.INTERRUPTED and runs["old"].steps[0].status is Status.INTERRUPTED
    assert runs["old"].kind is RunKind.ASK
