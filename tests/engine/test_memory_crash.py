"""SIGKILL while memory entries are written: each entry is whole or absent (issue 15).

A real process writes long notes (their search index takes a while) and finishes asks on
the fake backend (the run's ``done`` and its entry share one transaction), and is killed
with SIGKILL a random moment after it starts a write. After each kill the store passes
``PRAGMA integrity_check``; every note is its whole text, with its documents and its search
rows; every finished run has exactly one entry and no unfinished run has one. The seed is
fixed (``LONGREAD_KILL_SEED`` tries another); the test counts the kills that landed inside
a write (between ``writing`` and ``wrote``) and asserts some did.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.store import open_store
from tests.conftest import text_pages_file
from tests.engine.memory_worker import note_text

ROOT = Path(__file__).parents[2]
CYCLES = 6
SEED = 20_261_202


def test_a_kill_while_an_entry_is_written_leaves_it_whole_or_absent(tmp_path: Path, home: Path) -> None:
    rng = random.Random(int(os.environ.get("LONGREAD_KILL_SEED", SEED)))
    folder = tmp_path / "docs"
    folder.mkdir()
    text_pages_file(folder / "lease.txt", ["The lease runs ten years. " * 40, "The rent is paid monthly. " * 40])
    db = home / "longread.db"
    inside = 0
    for cycle in range(CYCLES):
        first = 100 * cycle
        # Even cycles aim at a note (tens of ms to write and index: the kill lands inside),
        # odd ones at a finished ask (a few ms: the kill lands inside now and then).
        target = first + 2 * rng.randrange(0, 3) + cycle % 2
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.engine.memory_worker", str(db), str(folder), str(first), "40"],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == f"writing {target}":
                break
        time.sleep(rng.uniform(0.0, 0.02))
        os.killpg(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
        inside += f"wrote {target}" not in rest

        store = open_store(db)
        try:
            assert store.integrity_check() == "ok", cycle
            docs = {r["sha256"] for r in store.query("SELECT sha256 FROM documents")}
            for row in store.query("SELECT * FROM memories WHERE source = 'user'"):
                i = int(row["answer"].split()[0].removeprefix("NOTE-"))
                assert row["answer"] == note_text(i), (cycle, i)
                tied = {
                    r["doc_sha256"]
                    for r in store.query("SELECT doc_sha256 FROM memory_documents WHERE memory_id = ?", [row["id"]])
                }
                assert tied == docs, (cycle, i)
                found = store.query("SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?", [f'"END-{i}"'])
                assert [r["rowid"] for r in found] == [row["id"]], (cycle, i)
            runs = store.query(
                "SELECT r.id, r.status, count(m.id) AS n FROM runs r LEFT JOIN memories m ON m.run_id = r.id GROUP BY r.id"
            )
            for run in runs:
                assert run["n"] == (1 if run["status"] == "done" else 0), (cycle, run)
            assert (
                store.query(
                    "SELECT count(*) AS n FROM memories m LEFT JOIN runs r ON r.id = m.run_id WHERE m.source != 'user' AND r.id IS NULL"
                )[0]["n"]
                == 0
            )
        finally:
            store.close()
    # Kills that fell between "writing" and "wrote": the ones that test anything.
    assert inside >= 2, inside
    store = open_store(db)
    try:
        notes = store.query("SELECT count(*) AS n FROM memories WHERE source = 'user'")[0]["n"]
        asks = store.query("SELECT count(*) AS n FROM memories WHERE source = 'ask'")[0]["n"]
        assert notes >= 2 and asks >= 1, (notes, asks)
    finally:
        store.close()
