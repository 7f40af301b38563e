"""Upgrading a store written before memory (tests/fixtures/store-0.2.0.db, written by the
code of main at 43199a9 with the real SmolLM2: see tests/fixtures/make_store_0_2_0.py.txt)
to m008: every finished run becomes a memory entry, nothing else changes.

The expected values are read from the fixture's own ``runs`` rows, not written out here:
one entry per finished run (ask, ask, think, waves), in the order asked, with its question,
answer, citations, the date it finished and its session's documents; the ask a dead
process left running becomes interrupted, has no entry, and gets one when it is resumed
to the end (on the fake backend: the upgrade is what is tested).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.runs import Status
from engine.runtime.fake import FakeBackend
from engine.store import open_store
from tests.conftest import fake_library, read_old_store

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-0.2.0.db"


def _old(sql: str) -> list[dict[str, Any]]:
    return read_old_store(FIXTURE, sql)


@pytest.fixture
def upgraded(home: Path) -> Path:
    path = home / "longread.db"
    shutil.copy(FIXTURE, path)
    return path


def test_finished_runs_become_memory_entries(upgraded: Path) -> None:
    applied = {r["name"] for r in _old("SELECT name FROM _sqlite_migrations")}
    assert "m007_probe_cells" in applied and "m008_memory" not in applied
    runs = _old("SELECT * FROM runs ORDER BY id")
    done = [r for r in runs if r["status"] == "done"]
    assert [r["kind"] for r in done] == ["ask", "ask", "think", "waves"]
    assert [r["status"] for r in runs if r["status"] != "done"] == ["running"]
    docs = {
        r["session_id"]: [
            d["doc_sha256"]
            for d in _old(
                f"SELECT cd.doc_sha256 FROM sessions s JOIN corpus_documents cd ON cd.corpus_id = s.corpus_id "
                f"WHERE s.id = {int(r['session_id'])} ORDER BY cd.position"
            )
        ]
        for r in runs
    }

    store = open_store(upgraded)
    try:
        assert store.integrity_check() == "ok"
        from engine.memory import MemoryBook

        book = MemoryBook(store)
        entries = book.entries()
        assert [(e.source, e.run_id) for e in entries] == [(r["kind"], r["id"]) for r in done]
        for entry, run in zip(entries, done, strict=True):
            assert (entry.question, entry.answer, entry.created_at) == (
                run["question"],
                run["answer"],
                run["finished_at"],
            )
            assert entry.documents == tuple(docs[run["session_id"]]) and len(entry.documents) == 1
            assert not entry.pinned and entry.answer
        stored_citations = [c for e in entries for c in e.citations]
        assert len(stored_citations) == sum(len(json.loads(r["citations"])) for r in done)
        # Found by the memory search, by a word of its answer.
        word = next(w for w in done[0]["answer"].split() if w.isalpha() and len(w) > 3)
        assert done[0]["id"] in {e.run_id for e in book.search(word)}
        # The rest of the store is as it was: runs, steps, documents.
        assert len(store.query("SELECT id FROM runs")) == len(runs)
        assert store.query("SELECT count(*) AS n FROM steps")[0]["n"] == _old("SELECT count(*) AS n FROM steps")[0]["n"]
    finally:
        store.close()


def test_the_interrupted_ask_is_remembered_once_resumed(upgraded: Path, home: Path, tmp_path: Path) -> None:
    [dead] = [r for r in _old("SELECT * FROM runs") if r["status"] != "done"]
    library = fake_library(home, tmp_path, backend=FakeBackend(["The total awarded is 41,000."]))
    try:
        run = library.get_run(dead["id"])
        assert run is not None and run.status is Status.INTERRUPTED
        assert dead["id"] not in {e.run_id for e in library.memory.entries()}
        library.resume(dead["id"])
        [entry] = [e for e in library.memory.entries() if e.run_id == dead["id"]]
        assert entry.answer == "The total awarded is 41,000." and entry.question == dead["question"]
    finally:
        library.close()
