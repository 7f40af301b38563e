"""Needles: facts planted at known pages; how often ask and waves find them.

Run: ``.venv/bin/python benchmarks/needles.py [--window 1024] [--sizes 1,2,4]
[--kv f16,q8_0,q4_0] [--trials 2]`` (add ``--model PATH`` for another GGUF).

For each size (a multiple of the window) it builds corpora of distinct filler pages and
plants one fact, "The vault access code is NNNNNN.", at a known page (early, middle or late,
by trial), then asks "What is the vault access code?":
- **ask**: the whole corpus in one window, only where it fits (1x);
- **waves**: the corpus read window by window with notes (engine/reading/waves.py).
A trial counts as found when the answer contains the planted code; for waves the table
also counts the notes that kept it (the wave that read the page wrote it down). Each KV
cache type is run on the same corpora. This is a measurement, not a pass/fail test:
the bundled models are tiny (SmolLM2-135M), and what matters is the mechanics and the
trend across sizes and cache types.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import ReadSettings  # noqa: E402
from engine.corpus import Corpus, Document, layout_document, make_pages  # noqa: E402
from engine.errors import ContextOverflowError  # noqa: E402
from engine.models.bundled import bundled_model_path  # noqa: E402
from engine.reading.ask import Reader  # noqa: E402
from engine.reading.waves import WaveReader  # noqa: E402
from engine.runtime.backend import KvType  # noqa: E402
from engine.runtime.llama import load_tokenizer  # noqa: E402
from engine.store import open_store  # noqa: E402

QUESTION = "What is the vault access code?"
SUBJECTS = [
    "The harbor office",
    "The night watch",
    "The pier crew",
    "The ferry desk",
    "The customs clerk",
    "The port captain",
    "The crane operator",
    "The mooring team",
]
ACTIONS = [
    "checks the mooring lines",
    "records the tide tables",
    "inspects the fuel pumps",
    "signs the cargo manifests",
    "cleans the slipway",
    "logs the arrivals",
    "tests the fog horn",
    "counts the life jackets",
]
TIMES = [
    "every morning",
    "before noon",
    "on Mondays",
    "after each storm",
    "at the end of the month",
    "twice a week",
    "at dusk",
    "when a ship docks",
]


def filler_page(rng: random.Random, number: int, sentences: int) -> str:
    lines = [f"Page {number} of the harbor office handbook."]
    for _ in range(sentences):
        lines.append(f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(TIMES)}.")
    return " ".join(lines)


def build_corpus(tokenizer_tokens: int, *, target: int, seed: int, fact_at: float) -> tuple[Document, int, str]:
    """A document of about ``target`` tokens with the code on page ``fact_at`` of the way in."""
    rng = random.Random(seed)
    n_pages = max(2, round(target / tokenizer_tokens))
    fact_page = min(n_pages, max(1, int(round(fact_at * (n_pages - 1))) + 1))
    code = f"{rng.randint(100000, 999999)}"
    pages = []
    for i in range(1, n_pages + 1):
        text = filler_page(rng, i, 12)
        if i == fact_page:
            head, rest = text.split(".", 1)
            text = f"{head}. The vault access code is {code}.{rest}"
        pages.append(text)
    body = "\n".join(pages).encode()
    doc = Document(hashlib.sha256(body).hexdigest(), f"handbook-{seed}.txt", "text", make_pages(pages))
    return doc, fact_page, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--sizes", default="1,2,4", help="corpus sizes as multiples of the window")
    parser.add_argument("--kv", default=",".join(KvType))
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--note-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()

    model_path = args.model or bundled_model_path()
    sizes = [int(s) for s in args.sizes.split(",")]
    kv_types = args.kv.split(",")
    positions = [0.15, 0.5, 0.85]
    tok = load_tokenizer(model_path)
    # Tokens of one filler page as laid out: to size corpora without building them twice.
    probe = Document("probe", "handbook.txt", "text", make_pages([filler_page(random.Random(0), 1, 12)]))
    page_tokens = len(tok.tokenize_text(layout_document(probe)))
    # "1x" is the largest corpus that still fits one window with the question and answer.
    fill = {m: int(m * args.window * 0.8) for m in sizes}
    corpora = {
        (m, t): build_corpus(page_tokens, target=fill[m], seed=1000 * m + t, fact_at=positions[t % len(positions)])
        for m in sizes
        for t in range(args.trials)
    }
    tok.close()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "needles.db")
        for doc, _, _ in corpora.values():
            store.add_document(doc)
        for kv in kv_types:
            settings = ReadSettings(n_ctx=args.window, kv_type=kv, n_threads=args.threads, max_answer_tokens=32)
            reader = Reader(store, model_path, settings, use_snapshots=False)
            waves = WaveReader(store, model_path, settings, max_note_tokens=args.note_tokens)
            try:
                for m in sizes:
                    ask_found = ask_tried = notes_found = waves_found = 0
                    n_waves: list[int] = []
                    ask_s = waves_s = 0.0
                    tokens = 0
                    for t in range(args.trials):
                        doc, fact_page, code = corpora[(m, t)]
                        corpus = Corpus((doc,))
                        ask_says = "does not fit"
                        try:
                            _, budget = reader.prepare(corpus, QUESTION)
                            tokens = budget.corpus_tokens
                            start = time.perf_counter()
                            answer = reader.ask(corpus, QUESTION).answer
                            ask_s += time.perf_counter() - start
                            ask_tried += 1
                            ask_found += code in answer
                            ask_says = "found" if code in answer else "missed"
                        except ContextOverflowError as exc:
                            tokens = exc.corpus_tokens
                        start = time.perf_counter()
                        result = waves.read(corpus, QUESTION)
                        waves_s += time.perf_counter() - start
                        n_waves.append(len(result.waves))
                        waves_found += code in result.answer
                        notes_found += any(code in w.notes for w in result.waves)
                        print(
                            f"  {kv} {m}x trial {t + 1}: code on p.{fact_page}; ask {ask_says}; {len(result.waves)} waves, "
                            f"answer {'found' if code in result.answer else 'missed'}",
                            file=sys.stderr,
                            flush=True,
                        )
                    rows.append(
                        (
                            kv,
                            m,
                            tokens,
                            f"{ask_found}/{ask_tried}" if ask_tried else "does not fit",
                            f"{notes_found}/{args.trials}",
                            f"{waves_found}/{args.trials}",
                            f"{min(n_waves)}-{max(n_waves)}" if min(n_waves) != max(n_waves) else str(n_waves[0]),
                            f"{ask_s / ask_tried:.1f}" if ask_tried else "-",
                            waves_s / args.trials,
                        )
                    )
            finally:
                reader.close()
                waves.close()
        store.close()

    print(
        f"\nNeedles: {model_path.name}, window {args.window} tokens, {args.trials} trials per cell, "
        f"notes up to {args.note_tokens} tokens per wave, greedy."
    )
    header = (
        "KV",
        "size",
        "corpus tokens",
        "ask found",
        "waves: notes kept it",
        "waves: answer found",
        "waves",
        "ask s",
        "waves s",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for kv, m, tokens, ask, notes, found, nw, a_s, w_s in rows:
        print(f"| {kv} | {m}x | {tokens:,} | {ask} | {notes} | {found} | {nw} | {a_s} | {w_s:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
