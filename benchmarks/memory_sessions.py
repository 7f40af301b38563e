"""Memory benchmark (issue 15): does a second session know what the first one established?

Run (about 3 minutes a seed on 2 idle cores)::

    nice -n 19 .venv/bin/python benchmarks/memory_sessions.py --seeds 1 2 3 | tee memory.txt

Per seed, a synthetic filing (about 1,000 SmolLM2 tokens) holds five codes and five dates,
each tied to a different thing, and names a tenant and a landlord. Every session is its
own process (``--phase``) over one data folder, with the bundled SmolLM2 and greedy
decoding:

1. ``first``: asks which code opens the north vault and on which date the notice was
   served (the answers become memory entries), and the user writes "I act for the tenant".
2. ``second``, memory on and off: asks "Which code did we find last time?", "Which date
   did we establish last time?" and "Given my role, which party do I act for?". Only the
   memory says which of the five codes and dates, and the role is in no document. Found:
   the right code, the right date (day and month together, and the year), "tenant" named
   before any "landlord".
3. Start of a second session (``Library.warm``: the model loaded, the corpus and memory in
   its context), each in a fresh process with the first session's entries as its memory:
   ``cold`` (no snapshots), ``corpus`` (the corpus snapshot restored, the memory block read)
   and ``corpus+memory`` (the second warm prefix restored whole).

Found rates are correctness results (greedy decoding) and hold on any machine; the
seconds are not benchmarks when other work shares the machine: the report says how they
were taken.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

THINGS = ["north vault", "south gate", "archive room", "pump house", "crane cabin"]
EVENTS = [
    "the notice was served",
    "the lease was signed",
    "the rent was last raised",
    "the survey was made",
    "the keys were returned",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
FILLER = (
    "The harbor office checks the mooring lines every morning and logs the tides in the ledger. "
    "Repairs to the quay are shared as the schedule to the lease describes. "
)
FIRST_QUESTIONS = ["Which code opens the north vault?", "On which date was the notice served?"]
ROLE_NOTE = "I act for the tenant in this dispute."
SECOND_QUESTIONS = [
    ("code", "Which code did we find last time?"),
    ("date", "Which date did we establish last time?"),
    ("role", "Given my role, which party do I act for: the tenant or the landlord?"),
]


def make_filing(seed: int) -> tuple[str, dict[str, str]]:
    """The filing's text and what the first session establishes (code, date)."""
    rng = random.Random(seed)
    codes = [f"{rng.choice('KMRTVZ')}{rng.choice('ABDFHQ')}-{rng.randrange(1000, 9999)}" for _ in THINGS]
    dates = [f"{rng.randrange(2, 28)} {rng.choice(MONTHS)} {rng.randrange(2015, 2024)}" for _ in EVENTS]
    lines = [
        "Filing in the harbor lease dispute between Marlow Shipping Ltd (tenant) and the Port Authority (landlord)."
    ]
    for thing, code in zip(THINGS, codes, strict=True):
        lines.append(f"The access code of the {thing} is {code}. " + FILLER)
    for event, date in zip(EVENTS, dates, strict=True):
        lines.append(f"The record shows that {event} on {date}. " + FILLER)
    return "\n\n".join(lines) + "\n", {"code": codes[0], "date": dates[0]}


def found(kind: str, answer: str, truth: dict[str, str]) -> bool:
    text = answer.lower()
    if kind == "role":
        # "You act for the tenant, not the landlord": the party named first is the answer.
        return "tenant" in text and ("landlord" not in text or text.index("tenant") < text.index("landlord"))
    value = truth[kind].lower()
    if kind == "date":
        day, month, year = value.split()
        return (f"{day} {month}" in text or f"{month} {day}" in text) and year in text
    return value in text


def child(args: argparse.Namespace) -> None:
    """One session, in its own process: prints one JSON line."""
    from engine.config import ReadSettings
    from engine.corpus import Corpus
    from engine.library import Library

    settings = ReadSettings(max_answer_tokens=40, n_threads=args.threads)
    library = Library(Path(args.db), settings=settings, use_snapshots=args.snapshots)
    try:
        docs, _ = library.add_documents([Path(args.doc)])
        corpus = Corpus(tuple(docs))
        out: dict[str, object] = {}
        if args.phase == "first":
            out["answers"] = [library.ask(corpus, q).answer for q in FIRST_QUESTIONS]
            library.memory.add(ROLE_NOTE, documents=[d.sha256 for d in docs])
            out["memory_ids"] = [e.id for e in library.memory.entries()]
        elif args.phase == "second":
            library.use_memory(args.memory == "on", pick=json.loads(args.pick) if args.pick else None)
            out["answers"] = [library.ask(corpus, q).answer for _, q in SECOND_QUESTIONS]
        else:  # start: opening the second session in a fresh process (Library.warm: model, corpus, memory)
            library.use_memory(True, pick=json.loads(args.pick))
            library.tokenizer()  # the vocabulary: not part of what is compared
            start = time.perf_counter()
            warm = library.warm(corpus)
            out["start_s"] = time.perf_counter() - start
            out["source"] = warm.source
            out["restored_tokens"] = warm.corpus_tokens if warm.restored else warm.restored_tokens
            out["prefix_tokens"] = warm.corpus_tokens
            out["memory_tokens"] = library.memory_for(corpus).n_tokens
        print(json.dumps(out), flush=True)
    finally:
        library.close()


def run_child(home: Path, *args: str) -> dict[str, object]:
    env = {**os.environ, "LONGREAD_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"session failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", default="", help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help=argparse.SUPPRESS)
    parser.add_argument("--doc", default="", help=argparse.SUPPRESS)
    parser.add_argument("--memory", default="on", help=argparse.SUPPRESS)
    parser.add_argument("--pick", default="", help=argparse.SUPPRESS)
    parser.add_argument("--snapshots", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.snapshots = bool(args.snapshots)
        child(args)
        return
    print(f"memory_sessions: SmolLM2 (bundled), greedy, {args.threads} threads, seeds {args.seeds}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (timings are not benchmarks while other work runs)")
    totals = {("on", k): 0 for k, _ in SECOND_QUESTIONS} | {("off", k): 0 for k, _ in SECOND_QUESTIONS}
    starts: dict[str, list[float]] = {"cold": [], "corpus": [], "corpus+memory": []}
    for seed in args.seeds:
        base = Path(tempfile.mkdtemp(prefix=f"memory-sessions-{seed}-"))
        try:
            text, truth = make_filing(seed)
            doc = base / "filing.txt"
            doc.write_text(text, encoding="utf-8")
            home = base / "home"
            home.mkdir()
            common = ["--db", str(home / "longread.db"), "--doc", str(doc), "--threads", str(args.threads)]
            first = run_child(home, "--phase", "first", *common)
            pick = json.dumps(first["memory_ids"])
            print(f"\nseed {seed}: code {truth['code']}, date {truth['date']}")
            for q, a in zip(FIRST_QUESTIONS, first["answers"], strict=True):  # type: ignore[call-overload]
                print(f"  first  | {q} -> {a!r}")
            for memory in ("on", "off"):
                second = run_child(home, "--phase", "second", "--memory", memory, "--pick", pick, *common)
                for (kind, q), a in zip(SECOND_QUESTIONS, second["answers"], strict=True):  # type: ignore[call-overload]
                    ok = found(kind, str(a), truth)
                    totals[(memory, kind)] += ok
                    print(f"  {memory:<3} {'found' if ok else 'miss '} | {q} -> {a!r}")
            # Starts: cold (no snapshots), then the corpus snapshot (from the first session) with
            # the memory read, then the corpus + memory snapshot the previous start saved.
            for label, extra in (("cold", ["--snapshots", "0"]), ("corpus", []), ("corpus+memory", [])):
                if label == "corpus":
                    # Only the corpus's own snapshot: drop those that hold memory.
                    _drop_memory_snapshots(home)
                start = run_child(home, "--phase", "start", "--pick", pick, *extra, *common)
                starts[label].append(float(start["start_s"]))  # type: ignore[arg-type]
                print(
                    f"  start {label:<13} {float(start['start_s']):6.2f} s "  # type: ignore[arg-type]
                    f"(prefix {start['prefix_tokens']} tokens, {start['memory_tokens']} of memory; "
                    f"restored {start['restored_tokens']}; via {start['source']})"
                )
        finally:
            shutil.rmtree(base, ignore_errors=True)
    n = len(args.seeds)
    print("\nFound rate over seeds (greedy):")
    for kind, _ in SECOND_QUESTIONS:
        print(f"  {kind:<5} memory on {totals[('on', kind)]}/{n}   off {totals[('off', kind)]}/{n}")
    print("Second session's start (model load + corpus + memory), median seconds (shared machine: not a benchmark):")
    for label, values in starts.items():
        values = sorted(values)
        print(f"  {label:<13} {values[len(values) // 2]:.2f} s  (all: {', '.join(f'{v:.2f}' for v in values)})")


def _drop_memory_snapshots(home: Path) -> None:
    from engine.memory import MemoryBook
    from engine.store import open_store
    from engine.warm import SnapshotCache

    store = open_store(home / "longread.db")
    try:
        cache = SnapshotCache(store, home / "snapshots")
        keys = {r["snapshot_key"] for r in store.query("SELECT snapshot_key FROM snapshot_memories")}
        for key in keys:
            cache.discard(key)
        assert not MemoryBook(store).store.query("SELECT 1 FROM snapshot_memories")
    finally:
        store.close()


if __name__ == "__main__":
    main()
