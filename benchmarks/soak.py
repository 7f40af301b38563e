"""Soak: SIGKILL at random moments across everything that writes, on one data folder (issue 15).

Run (about 3 s a cycle with the fake backend)::

    nice -n 19 .venv/bin/python benchmarks/soak.py --cycles 200 | tee soak.txt

Each cycle starts a worker process on the same data folder that does random work in a
loop: ingest a new document, ask, think deeply (five steps), read in waves, write, edit or
forget a memory entry (a note: runs' entries are kept so that each finished run must have
exactly one). It prints ``start OP`` and ``done OP`` around each; the cycle kills
its whole process group with SIGKILL a random moment later (``--kill-within`` seconds) and
files the kill under the operation it landed in (``between`` when none was running).

After each kill, in this process: ``PRAGMA integrity_check`` is ``ok``; every document is
whole (its pages, their count and characters as recorded); every finished run has every
step done, its answer on its answer step and exactly one memory entry; no unfinished run
has one; every note of the user's is whole (its text carries its own checksum); and every
run not finished is resumed through ``Library.resume`` to done (resumable), which also
leaves its entry.

The model is the scripted fake (``--model fake``, tokens take ``--token-delay`` seconds, so
kills land inside prefill and generation) with real processes, a real SQLite file and
real kills; ``--model smollm2`` uses the bundled model (slower: a few cycles).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPS = ("ingest", "ask", "think", "waves", "memory_add", "memory_edit", "memory_forget")
FILLER = "The harbor office checks the mooring lines every morning and logs the tides. "


def note_text(tag: str) -> str:
    body = f"NOTE {tag} " + " ".join(f"w{tag}x{j}" for j in range(3000))
    return f"{body} CRC-{zlib.crc32(body.encode()):08x}"


def note_whole(text: str) -> bool:
    body, _, crc = text.rpartition(" CRC-")
    return bool(body) and f"{zlib.crc32(body.encode()):08x}" == crc


def make_library(home: Path, model: str, token_delay: float):  # type: ignore[no-untyped-def]
    from engine.config import ReadSettings
    from engine.library import Library

    if model == "fake":
        from engine.runtime.fake import FakeBackend

        path = home / "fake-model.gguf"
        if not path.exists():
            path.write_bytes(b"not weights")
        library = Library(
            home / "longread.db",
            model_path=path,
            backend=FakeBackend(token_delay_s=token_delay),
            settings=ReadSettings(max_answer_tokens=24, n_batch=64, n_ctx=2048),
            use_snapshots=False,
        )
        # The fake's vocabulary is numbered in each process's own order: token lists cached
        # by another process (and KV snapshots, off here) would hold other ids.
        with library.store.atomic() as db:
            db.execute("DELETE FROM token_cache")
        return library
    return Library(home / "longread.db", settings=ReadSettings(max_answer_tokens=24, n_ctx=2048, n_threads=2))


def worker(home: Path, seed: int, model: str, token_delay: float) -> None:
    """Random work until killed; ``start OP`` / ``done OP`` around each operation."""
    from engine.corpus import Corpus
    from engine.errors import EngineError

    rng = random.Random(seed)
    library = make_library(home, model, token_delay)
    docs_dir = home / "docs"
    docs_dir.mkdir(exist_ok=True)
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        op = rng.choice(OPS)
        print(f"start {op}", flush=True)
        docs = sorted(docs_dir.glob("*.txt"))
        if op == "ingest" or not docs:
            path = docs_dir / f"doc-{seed}-{n}.txt"
            pages = [
                f"Document {seed}-{n} page {p}. The code is {rng.randrange(10**5, 10**6)}. " + FILLER * 8
                for p in range(1, 4)
            ]
            path.write_text("".join(pg.ljust(2990)[:2990] + "\n\n" for pg in pages), encoding="utf-8")
            library.add_documents([path])
            op = "ingest"
        else:
            stored, _ = library.add_documents([rng.choice(docs)])
            corpus = Corpus(tuple(stored))
            shas = [d.sha256 for d in stored]
            try:
                if op == "ask":
                    library.ask(corpus, f"What is the code? ({seed}-{n})")
                elif op == "think":
                    library.think(corpus, f"Which code matters most? ({seed}-{n})", step_tokens=16)
                elif op == "waves":
                    library.read_in_waves(corpus, f"Which codes are listed? ({seed}-{n})", note_tokens=16)
                elif op == "memory_add":
                    library.memory.add(note_text(f"{seed}-{n}"), documents=shas)
                else:
                    # Notes only: a run's entry stays, so "one entry per finished run" is checkable.
                    entries = [e for e in library.memory.entries() if e.source == "user"]
                    if entries:
                        target = rng.choice(entries).id
                        if op == "memory_edit":
                            library.memory.edit(target, note_text(f"{seed}-{n}-edit"))
                        else:
                            library.memory.forget(target)
            except EngineError as exc:  # a corpus too big for waves' window, say: not a failure here
                print(f"refused {op}: {exc.message}", flush=True)
        print(f"done {op}", flush=True)


def check(home: Path, model: str, token_delay: float) -> dict[str, int]:
    """The invariants after a kill; resumes every unfinished run. Returns counts."""
    from engine.errors import EngineError

    library = make_library(home, model, 0.0)
    store = library.store
    counts = collections.Counter()
    try:
        assert store.integrity_check() == "ok", "integrity_check"
        for doc in store.query("SELECT sha256, n_pages, n_chars FROM documents"):
            pages = store.query("SELECT text FROM pages WHERE doc_sha256 = ?", [doc["sha256"]])
            assert len(pages) == doc["n_pages"], ("pages", doc)
            assert sum(len(p["text"]) for p in pages) == doc["n_chars"], ("chars", doc)
            counts["documents"] += 1
        for row in store.query("SELECT * FROM memories WHERE source = 'user'"):
            assert note_whole(row["answer"]), ("note", row["id"])
            counts["notes"] += 1
        entries = {
            r["run_id"]: r["n"]
            for r in store.query("SELECT run_id, count(*) AS n FROM memories WHERE run_id IS NOT NULL GROUP BY run_id")
        }
        unfinished = []
        for (run_id,) in store.db.execute("SELECT id FROM runs ORDER BY id").fetchall():
            run = library.get_run(run_id)
            assert run is not None
            if run.status.value == "done":
                assert all(s.done for s in run.steps), ("steps", run_id)
                assert run.answer_step is not None and run.answer_step.text == run.answer, ("answer", run_id)
                assert entries.get(run_id) == 1, ("entry", run_id)
                counts["finished"] += 1
            else:
                assert run_id not in entries, ("entry of unfinished", run_id)
                unfinished.append(run_id)
        for run_id in unfinished:
            try:
                library.resume(run_id)
            except EngineError as exc:
                # Not the store's fault (a chat template over its time budget on a machine at
                # load 20, say): counted and shown, and the run stays for the next cycle.
                counts["resume_refused"] += 1
                print(f"  resume of run {run_id} refused: {exc.message}", flush=True)
                continue
            run = library.get_run(run_id)
            assert run is not None and run.status.value == "done", ("resume", run_id)
            assert store.query("SELECT count(*) AS n FROM memories WHERE run_id = ?", [run_id])[0]["n"] == 1
            counts["resumed"] += 1
    finally:
        library.close()
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--model", choices=["fake", "smollm2"], default="fake")
    parser.add_argument("--token-delay", type=float, default=0.002, help="seconds per fake token")
    parser.add_argument("--kill-within", type=float, default=3.0, help="kill up to this many seconds after start")
    parser.add_argument("--home", type=Path, help="data folder (default: a new temporary one)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.home is None:
        import tempfile

        args.home = Path(tempfile.mkdtemp(prefix="longread-soak-"))
    args.home.mkdir(parents=True, exist_ok=True)
    os.environ["LONGREAD_HOME"] = str(args.home)
    if args.worker is not None:
        worker(args.home, args.worker, args.model, args.token_delay)
        return
    rng = random.Random(args.seed)
    landed: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    totals: dict[str, int] = {}
    started = time.perf_counter()
    print(f"soak: {args.cycles} cycles, model {args.model}, data folder {args.home}, load {os.getloadavg()[0]:.1f}")
    for cycle in range(args.cycles):
        proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(rng.randrange(10**6)),
                "--home",
                str(args.home),
                "--model",
                args.model,
                "--token-delay",
                str(args.token_delay),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        lines: list[str] = []
        buffer = ""
        deadline = None
        while True:
            try:
                buffer += os.read(proc.stdout.fileno(), 65536).decode()
            except BlockingIOError:
                pass
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                lines.append(line)
                if line == "ready" and deadline is None:
                    deadline = time.monotonic() + rng.uniform(0.0, args.kill_within)
            if deadline is not None and time.monotonic() >= deadline:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        proc.stdout.close()
        last = next((ln for ln in reversed(lines) if ln.startswith(("start ", "done "))), "done -")
        where = last.split(" ", 1)[1] if last.startswith("start ") else "between"
        landed[where] += 1
        try:
            counts = check(args.home, args.model, args.token_delay)
            totals = counts
            totals_resumed = totals.get("resumed", 0)
            landed_resumed = f", resumed {totals_resumed}" if totals_resumed else ""
            print(
                f"cycle {cycle + 1}: killed in {where}; ok ({counts.get('documents', 0)} documents, "
                f"{counts.get('finished', 0)} finished runs, {counts.get('notes', 0)} notes{landed_resumed})",
                flush=True,
            )
        except AssertionError as exc:
            failures.append(f"cycle {cycle + 1} ({where}): {exc}")
            print(f"cycle {cycle + 1}: killed in {where}; FAILED {exc}", flush=True)
    print(f"\n{args.cycles} cycles in {time.perf_counter() - started:.0f} s; failures: {len(failures)}")
    print("Kills by where they landed: " + ", ".join(f"{k} {v}" for k, v in sorted(landed.items())))
    print("Final store: " + json.dumps(totals))
    for failure in failures:
        print("  " + failure)


if __name__ == "__main__":
    main()
