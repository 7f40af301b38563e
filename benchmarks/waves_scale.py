"""Waves at scale (issue 13, "Benchmark"): found rates and costs of ask, carry waves and
map waves on corpora of 1x..32x the window, and a projection to a million tokens.

Run (hours on two cores at the full grid; a small configuration in minutes)::

    nice -n 19 .venv/bin/python benchmarks/waves_scale.py --window 8192 --sizes 1,2,4,8,16,32 --corpora 3
    nice -n 19 .venv/bin/python benchmarks/waves_scale.py --window 2048 --sizes 1,2,4 --corpora 2

Corpora: real English prose shipped offline with Python: the language reference's topics
(``pydoc_data.topics``) and standard-library docstrings (``engine.probe.load_prose``), plus
the docstrings of every module in the standard library's own folder, read with ``ast``
(nothing is imported or run), and the repository's sample filing. Sentences are shuffled per
corpus (seeded) and laid out in pages of about ``--page-tokens`` tokens; a corpus larger
than the prose available repeats sentences (said in the output).

Three facts are planted per corpus at random depths (seeded): a code ("The archive access
code is K7-482913."), a date ("The harbor treaty was signed on 14 March 1987.") and a name
("The chief archivist is Miriam Okonkwo."). Four questions: the code alone, then all three
(its first part is the first question: the waves keep that part's notes and write the other
two), then the name alone (its notes were kept by the second: found rates of a part asked
alone), then a new question of three parts none of which was asked before ("What is the
vault combination, on what date was the harbor opened, and who is the harbor master?",
nothing planted): what a next question costs when no part of it was asked before.

Per size and way of reading:
- **ask** (only where the corpus fits the window): the whole corpus in one prompt;
- **carry** and **map** waves (engine/reading/waves.py), each with an empty snapshot
  folder: the first question reads every wave cold and saves its page block; the second
  question (all three facts) restores every block (warm waves) and reads only the notes,
  the question and the instructions.
Memory (engine/memory.py) is off for every reader: a first answer, right or wrong, would
otherwise reach the next question's final pass. ``--wave-tokens`` sets how long a wave is
(the product's default is the model's measured reading span; 2,048 for SmolLM2).
Costs: the wall time of each call, and the tokens evaluated and written (from the stored
steps; other jobs on the machine change the times, not the tokens). Found: the code (exact string), the date (day, month and year in the answer), the name
(the surname in the answer); greedy decoding, so found rates are reproducible. Times are
wall clock of each call; the projection to 1M tokens scales the measured per-wave times by
the number of waves a million tokens would take at the same pages per wave (plus the
measured final pass), and the snapshot bytes by tokens. Times taken while other jobs share
the machine are not a benchmark: say how they were taken.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
import re
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import ReadSettings  # noqa: E402
from engine.corpus import Corpus, Document, layout_document, make_pages  # noqa: E402
from engine.errors import ContextOverflowError  # noqa: E402
from engine.memory import MemoryOptions  # noqa: E402
from engine.models.bundled import bundled_model_path  # noqa: E402
from engine.probe import load_prose  # noqa: E402
from engine.reading.ask import Reader  # noqa: E402
from engine.reading.waves import WaveMode, WaveReader, WaveResult  # noqa: E402
from engine.runtime.llama import load_tokenizer  # noqa: E402
from engine.store import Store, open_store  # noqa: E402
from engine.warm import SnapshotCache  # noqa: E402

Q_ONE = "What is the archive access code?"
Q_ALL = "What is the archive access code, on what date was the harbor treaty signed, and who is the chief archivist?"
Q_NAME = "Who is the chief archivist?"
Q_NEW = "What is the vault combination, on what date was the harbor opened, and who is the harbor master?"
FIRST_NAMES = ["Miriam", "Tobias", "Ingrid", "Rafael", "Yusuf", "Helena", "Desmond", "Akiko", "Lorenzo", "Noor"]
SURNAMES = ["Okonkwo", "Halvorsen", "Castellano", "Whitcombe", "Varga", "Lindqvist", "Abernathy", "Moreau", "Kaczmarek"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


# -- prose and corpora -------------------------------------------------------------------


def stdlib_docstrings() -> list[str]:
    """Docstrings of the standard library's own modules, read with ``ast`` (no import)."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    texts: list[str] = []
    for path in sorted(folder.glob("*.py")) + sorted(folder.glob("*/*.py")):
        if "test" in path.parts[-2:][0] or path.name.startswith("test"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    texts.append(doc)
    return texts


def prose_sentences() -> list[str]:
    """Sentences of plain English, each once: ``load_prose`` (what the probe uses) and the
    standard library's docstrings, filtered the same way (6-60 words, mostly letters)."""
    sentences = list(load_prose())
    for text in stdlib_docstrings():
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith((" ", "\t", ">>>"))]
        for s in _SENTENCE_END.split(" ".join(lines)):
            s = s.strip()
            words = s.split()
            letters = sum(c.isalpha() for c in s)
            if 6 <= len(words) <= 60 and letters > 0.65 * len(s) and "::" not in s and ">>>" not in s:
                sentences.append(s)
    return list(dict.fromkeys(sentences))


@dataclass(frozen=True)
class Facts:
    code: str
    day: int
    month: str
    year: int
    first: str
    surname: str
    pages: dict[str, int] = field(default_factory=dict)

    def sentences(self) -> dict[str, str]:
        return {
            "code": f"The archive access code is {self.code}.",
            "date": f"The harbor treaty was signed on {self.day} {self.month} {self.year}.",
            "name": f"The chief archivist is {self.first} {self.surname}.",
        }

    def found(self, answer: str) -> dict[str, bool]:
        low = answer.lower()
        date = str(self.day) in answer and self.month.lower() in low and str(self.year) in answer
        return {"code": self.code in answer, "date": date, "name": self.surname in answer}


def build_corpus(
    sentences: list[str], tokenize: Any, *, target: int, page_tokens: int, seed: int
) -> tuple[Document, Facts, bool]:
    """A document of about ``target`` tokens of shuffled prose in pages of about
    ``page_tokens``, with the three facts planted at random depths.

    Returns:
        the document, its facts (with their pages), and whether prose had to repeat.
    """
    rng = random.Random(seed)
    order = sentences[:]
    rng.shuffle(order)
    pages: list[str] = []
    current: list[str] = []
    used = 0
    total = 0
    i = 0
    repeated = False
    while total < target:
        if i == len(order):
            i, repeated = 0, True
            rng.shuffle(order)
        s = order[i]
        i += 1
        n = len(tokenize(s)) + 1
        current.append(s)
        used += n
        total += n
        if used >= page_tokens:
            pages.append(" ".join(current))
            current, used = [], 0
    if current:
        pages.append(" ".join(current))
    facts = Facts(
        code=f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randint(2, 9)}-{rng.randint(100000, 999999)}",
        day=rng.randint(1, 28),
        month=rng.choice(MONTHS),
        year=rng.randint(1900, 1999),
        first=rng.choice(FIRST_NAMES),
        surname=rng.choice(SURNAMES),
    )
    for kind, sentence in facts.sentences().items():
        page = rng.randrange(len(pages))
        words = _SENTENCE_END.split(pages[page])
        at = rng.randrange(len(words) + 1)
        pages[page] = " ".join([*words[:at], sentence, *words[at:]])
        facts.pages[kind] = page + 1
    body = "\n\n".join(pages).encode()
    doc = Document(hashlib.sha256(body).hexdigest(), f"prose-{seed}.txt", "text", make_pages(pages))
    return doc, facts, repeated


# -- measuring ---------------------------------------------------------------------------


@dataclass
class ModeResult:
    """One way of reading one corpus: both questions."""

    n_waves: int = 0
    one: dict[str, bool] = field(default_factory=dict)
    all: dict[str, bool] = field(default_factory=dict)
    first_s: float = 0.0
    second_s: float = 0.0
    first_wave_s: float = 0.0  # the waves alone (no final pass), first question
    second_wave_s: float = 0.0
    first_final_s: float = 0.0
    second_final_s: float = 0.0
    second_restored: int = 0
    name: dict[str, bool] = field(default_factory=dict)  # the third question: the name alone
    third_s: float = 0.0
    third_read: int = 0
    second_kept: int = 0  # parts of waves whose notes were kept from the first question
    fresh_s: float = 0.0  # the fourth question: three parts never asked before
    fresh_read: int = 0
    snapshot_bytes: int = 0
    tokens_per_wave: float = 0.0
    # Tokens the model evaluated (prefill) and wrote, per question: costs that other jobs
    # on the machine do not change (the times do).
    first_read: int = 0
    second_read: int = 0
    first_written: int = 0
    second_written: int = 0


def tokens_spent(store: Store, result: WaveResult) -> tuple[int, int]:
    """Tokens evaluated and written by every step of a read (the look-up's included in
    the answer step's prompt count only as ``lookup_tokens``)."""
    run = store.get_run(result.run_id)
    assert run is not None
    read = sum(s.prefill_tokens or 0 for s in run.steps)
    written = sum(s.output_tokens or 0 for s in run.steps)
    answer = run.answer_step
    if answer is not None:
        read += int(answer.detail.get("lookup_tokens", 0))
    return read, written


def wave_seconds(store: Store, result: WaveResult) -> tuple[float, float]:
    """The waves' time and the final pass's time, from the stored steps."""
    run = store.get_run(result.run_id)
    assert run is not None
    waves = sum((w.prefill_s or 0.0) + (w.generate_s or 0.0) for w in run.waves)
    answer = run.answer_step
    final = (
        ((answer.prefill_s or 0.0) + (answer.generate_s or 0.0) + float(answer.detail.get("lookup_s", 0.0)))
        if answer
        else 0.0
    )
    return waves, final


def read_mode(
    store: Store, waves: WaveReader, cache: SnapshotCache, corpus: Corpus, facts: Facts, corpus_tokens: int
) -> ModeResult:
    cache.clear()  # each way of reading starts cold: its first question saves the blocks
    out = ModeResult()
    start = time.perf_counter()
    first = waves.read(corpus, Q_ONE)
    out.first_s = time.perf_counter() - start
    out.first_wave_s, out.first_final_s = wave_seconds(store, first)
    out.snapshot_bytes = cache.total_bytes()
    start = time.perf_counter()
    second = waves.read(corpus, Q_ALL, session_id=first.session_id)
    out.second_s = time.perf_counter() - start
    out.second_wave_s, out.second_final_s = wave_seconds(store, second)
    out.first_read, out.first_written = tokens_spent(store, first)
    out.second_read, out.second_written = tokens_spent(store, second)
    out.n_waves = len(first.waves)
    out.one = facts.found(first.answer)
    out.all = facts.found(second.answer)
    out.second_restored = sum(1 for w in second.waves if w.detail.get("block") == "snapshot")
    start = time.perf_counter()
    third = waves.read(corpus, Q_NAME, session_id=first.session_id)
    out.third_s = time.perf_counter() - start
    out.third_read, _ = tokens_spent(store, third)
    out.name = facts.found(third.answer)
    out.second_kept = sum(int(w.detail.get("kept_parts", 0)) for w in second.waves)
    start = time.perf_counter()
    fresh = waves.read(corpus, Q_NEW, session_id=first.session_id)
    out.fresh_s = time.perf_counter() - start
    out.fresh_read, _ = tokens_spent(store, fresh)
    out.tokens_per_wave = corpus_tokens / max(out.n_waves, 1)
    return out


def project(res: ModeResult, tokens: int, bytes_per_token: float) -> dict[str, float]:
    """First and next question and snapshot bytes for ``tokens``, from per-wave times."""
    n = tokens / max(res.tokens_per_wave, 1.0)
    per_first = res.first_wave_s / max(res.n_waves, 1)
    per_second = res.second_wave_s / max(res.n_waves, 1)
    return {
        "waves": n,
        "first_s": n * per_first + res.first_final_s,
        "second_s": n * per_second + res.second_final_s,
        "snapshot_bytes": res.snapshot_bytes / max(res.n_waves, 1) * n
        if res.snapshot_bytes
        else tokens * bytes_per_token,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=8192)
    parser.add_argument("--sizes", default="1,2,4,8,16,32", help="corpus sizes as multiples of the window")
    parser.add_argument("--corpora", type=int, default=3, help="corpora per size (different prose and facts)")
    parser.add_argument(
        "--first-corpus", type=int, default=0, help="start at this corpus of each size (to add corpora to a run)"
    )
    parser.add_argument("--modes", default="carry,map")
    parser.add_argument("--kv", default="f16")
    parser.add_argument(
        "--wave-tokens",
        type=int,
        default=0,
        help="most tokens per wave (0: the whole window; SmolLM2's measured reading span is 2048)",
    )
    parser.add_argument("--note-tokens", type=int, default=64)
    parser.add_argument("--page-tokens", type=int, default=400, help="about this many tokens per page")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--json", type=Path, help="write every measurement here (after each corpus)")
    parser.add_argument("--tables-from", type=Path, help="print the tables of a --json file (a run cut short)")
    args = parser.parse_args()
    if args.tables_from:
        saved = json.loads(args.tables_from.read_text())
        stored = argparse.Namespace(**saved["args"])
        done: list[dict[str, Any]] = saved["rows"]
        print_tables(done, [WaveMode(m) for m in stored.modes.split(",")], stored, Path(stored.model))
        return 0

    model_path = args.model or bundled_model_path()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [WaveMode(m) for m in args.modes.split(",")]
    sentences = prose_sentences()
    tok = load_tokenizer(model_path)
    tokenize = tok.tokenize_text
    print(f"Prose: {len(sentences):,} distinct sentences.", file=sys.stderr, flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "waves-scale.db")
        cache = SnapshotCache(store, Path(tmp) / "snapshots")
        cache.set_budget_bytes(60_000_000_000)
        settings = ReadSettings(
            n_ctx=args.window,
            kv_type=args.kv,
            n_threads=args.threads,
            max_answer_tokens=64,
            wave_tokens=args.wave_tokens,
        )
        reader = Reader(store, model_path, settings, use_snapshots=False)
        readers = {
            m: WaveReader(
                store, model_path, settings, max_note_tokens=args.note_tokens, mode=m, snapshots=cache, lane=reader.lane
            )
            for m in modes
        }
        # Each way of reading is measured on its own: no memory of earlier answers (the
        # ask's, or the first question's) in any prompt (engine/memory.py).
        for r in (reader, *readers.values()):
            r.memory = MemoryOptions(enabled=False)
        bytes_per_token = reader.lane.info.kv_bytes_per_token(args.kv, args.kv)
        try:
            for size in sizes:
                for c in range(args.first_corpus, args.first_corpus + args.corpora):
                    seed = args.seed * 1000 + size * 10 + c
                    # 1x is about the largest corpus that still fits the window with the
                    # instructions, the question of all three and the answer (page markers
                    # and facts add about a tenth to the prose).
                    doc, facts, repeated = build_corpus(
                        sentences,
                        tokenize,
                        target=int(size * (args.window - 384) * 0.9),
                        page_tokens=args.page_tokens,
                        seed=seed,
                    )
                    store.add_document(doc)
                    corpus = Corpus((doc,))
                    corpus_tokens = len(tokenize(layout_document(doc)))
                    row: dict[str, Any] = {
                        "size": size,
                        "corpus": c,
                        "tokens": corpus_tokens,
                        "pages": doc.n_pages,
                        "fact_pages": facts.pages,
                        "repeated_prose": repeated,
                    }
                    try:
                        reader.prepare(corpus, Q_ALL)
                    except ContextOverflowError:
                        row["ask"] = None
                    else:
                        start = time.perf_counter()
                        one = reader.ask(corpus, Q_ONE).answer
                        all_ = reader.ask(corpus, Q_ALL).answer
                        row["ask"] = {
                            "one": facts.found(one),
                            "all": facts.found(all_),
                            "s": time.perf_counter() - start,
                        }
                    for m, waves in readers.items():
                        res = read_mode(store, waves, cache, corpus, facts, corpus_tokens)
                        row[m.value] = {**asdict(res), "projection_1m": project(res, 1_000_000, bytes_per_token)}
                        print(
                            f"{size}x corpus {c + 1}: {m.value}: {res.n_waves} waves, one {res.one}, all {res.all}, "
                            f"first {res.first_s:.0f} s, second {res.second_s:.0f} s "
                            f"({res.second_restored} blocks restored, {res.second_kept} parts kept), name alone {res.third_s:.0f} s "
                            f"{res.name}, new three parts {res.fresh_s:.0f} s",
                            file=sys.stderr,
                            flush=True,
                        )
                    rows.append(row)
                    if args.json:
                        args.json.write_text(json.dumps({"args": _jsonable(args, model_path), "rows": rows}, indent=1))
        finally:
            reader.close()
            tok.close()
            store.close()
    print_tables(rows, modes, args, model_path)
    return 0


def _jsonable(args: argparse.Namespace, model: Path) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()} | {"model": str(model)}


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def _rate(cells: list[bool]) -> str:
    return f"{sum(cells)}/{len(cells)}" if cells else "-"


def print_tables(rows: list[dict[str, Any]], modes: list[WaveMode], args: argparse.Namespace, model: Path) -> None:
    print(
        f"\nWaves at scale: {model.name}, window {args.window:,}, waves of {args.wave_tokens or args.window:,} "
        f"tokens, KV {args.kv}, notes up to {args.note_tokens} "
        f"tokens per wave, pages of about {args.page_tokens} tokens, {args.corpora} corpora per size, greedy."
    )
    if any(r["repeated_prose"] for r in rows):
        print("Some corpora repeat prose sentences (larger than the prose available).")
    head = ["size", "tokens", "ask: code", "ask: all 3"]
    for m in modes:
        head += [f"{m.value}: waves", f"{m.value}: code", f"{m.value}: all 3", f"{m.value}: facts", f"{m.value}: name"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for size in sorted({r["size"] for r in rows}):
        cell = [r for r in rows if r["size"] == size]
        asks = [r["ask"] for r in cell if r["ask"] is not None]
        line = [f"{size}x", f"{sum(r['tokens'] for r in cell) // len(cell):,}"]
        line += (
            [_rate([a["one"]["code"] for a in asks]), _rate([all(a["all"].values()) for a in asks])]
            if asks
            else ["does not fit"] * 2
        )
        for m in modes:
            res = [r[m.value] for r in cell]
            facts = sum(sum(x["all"].values()) for x in res)
            line += [
                "/".join(str(x["n_waves"]) for x in res),
                _rate([x["one"]["code"] for x in res]),
                _rate([all(x["all"].values()) for x in res]),
                f"{facts}/{3 * len(res)}",
                _rate([x["name"]["name"] for x in res]) if all("name" in x for x in res) else "-",
            ]
        print("| " + " | ".join(line) + " |")
    head = [
        "size",
        "mode",
        "read 1st / 2nd (tokens)",
        "2nd/1st read",
        "first s",
        "second s",
        "second/first",
        "name alone s",
        "name/first",
        "new 3 parts s",
        "new/first",
        "blocks restored",
        "snapshots MB",
        "1M: first h",
        "1M: next h",
        "1M: snapshots GB",
    ]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for size in sorted({r["size"] for r in rows}):
        cell = [r for r in rows if r["size"] == size]
        for m in modes:
            res = [r[m.value] for r in cell]
            first = sum(x["first_s"] for x in res) / len(res)
            second = sum(x["second_s"] for x in res) / len(res)
            third = sum(x.get("third_s", 0.0) for x in res) / len(res)
            fresh = sum(x.get("fresh_s", 0.0) for x in res) / len(res)
            proj = [x["projection_1m"] for x in res]
            print(
                "| "
                + " | ".join(
                    [
                        f"{size}x",
                        m.value,
                        f"{sum(x.get('first_read', 0) for x in res) // len(res):,} / "
                        f"{sum(x.get('second_read', 0) for x in res) // len(res):,}",
                        _share(sum(x.get("second_read", 0) for x in res), sum(x.get("first_read", 0) for x in res)),
                        f"{first:.0f}",
                        f"{second:.0f}",
                        f"{second / first:.0%}",
                        f"{third:.0f}" if third else "-",
                        f"{third / first:.0%}" if third else "-",
                        f"{fresh:.0f}" if fresh else "-",
                        f"{fresh / first:.0%}" if fresh else "-",
                        f"{sum(x['second_restored'] for x in res)}/{sum(x['n_waves'] for x in res)}",
                        f"{sum(x['snapshot_bytes'] for x in res) / len(res) / 1e6:.0f}",
                        f"{sum(p['first_s'] for p in proj) / len(proj) / 3600:.1f}",
                        f"{sum(p['second_s'] for p in proj) / len(proj) / 3600:.1f}",
                        f"{sum(p['snapshot_bytes'] for p in proj) / len(proj) / 1e9:.0f}",
                    ]
                )
                + " |"
            )


if __name__ == "__main__":
    sys.exit(main())
