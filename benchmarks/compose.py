"""Composition benchmark: a corpus assembled from per-document KV snapshots against a cold
read of the same order (issue 17).

Run (SmolLM2, a 2,048-token window on the shared 2-core machine; about 30 min)::

    nice -n 19 .venv/bin/python benchmarks/compose.py --seeds 3 | tee compose.txt

For each seed: ten documents (paragraphs of the sample award, each with one planted
access code), about 150 tokens each, laid out and framed exactly as ``Reader`` does
(``layout_document``, ``build_prompt``), filling most of the window. The ten are read
cold once in order and each document's snapshot saved (``Composer.save_documents``).
Then four cases, each against a cold read of its own order:

- ``reorder``: the ten, shuffled;
- ``remove first``: documents 2-10;
- ``insert middle``: a new document (no snapshot: read whole in place) after the fifth;
- ``other corpus``: four of the ten inside another corpus with two new documents;
- ``insert known``: as ``insert middle``, but the inserted document was read before, in
  another corpus (three documents read cold once, their snapshots saved);
- ``other known``: as ``other corpus``, but its two other documents are from that other
  corpus: every document of the corpus was read before, none in this order.

``--cases`` runs some of them (each is measured against its own cold read). The extra
documents come from their own random stream, so the first four cases are the same
documents and orders with or without them.

For each case and each k (first tokens of each document evaluated again): the time to
compose (the gate's cold probe included) against the cold read, tokens evaluated, and
quality against the cold read of the same order: the question and the cold read's own
64-token greedy answer are fed one token at a time to both contexts, and at each
position the top-1 next token is compared and the KL divergence KL(cold || composed)
taken; found: the planted code asked for appears in a 24-token greedy answer
(``--every-code``: every document's code is asked for too, in the cold and the composed
context, so that a found rate rests on ten facts a corpus, not one; "decided: as cold"
counts, of the questions whose cold answer won every token up to the code by at least
``DECIDED_LOGITS``, those the composition answered alike, found or not, and "undecided"
the rest: a composition moves an answer's logits by a few tenths, so it can only be
held to the answers the cold read itself does not toss). The gate
columns calibrate ``GATE_NATS``: the mean NLL of the corpus's last ``CHECK_TOKENS`` tokens
after the composition (gate) and after the cold read (cold gate), minus the same after the
gate's cold probe (head + the 32 tokens before them): below zero reads the corpus's own
text better than the probe. The gate is off while measuring (every composition is scored);
``--broken`` composes without rotating moved keys, the failure the gate must catch.

Timings are wall-clock on whatever machine runs it: on a shared machine they are not a
benchmark, only ratios within one run are meaningful, and then only roughly.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.compose import CHECK_TOKENS, FACT_RUN, RECOMPUTE_FIRST, Composer, check_nll, kl_divergence  # noqa: E402
from engine.corpus import Document, layout_document, make_pages  # noqa: E402
from engine.models.bundled import bundled_model_path, model_sha256  # noqa: E402
from engine.reading.prompts import Prompt, build_prompt  # noqa: E402
from engine.runtime.backend import LoadSettings  # noqa: E402
from engine.runtime.llama import LoadedModel, load_model  # noqa: E402
from engine.store import open_store  # noqa: E402
from engine.warm import SnapshotCache  # noqa: E402

SAMPLE = ROOT / "resources" / "sample" / "harbor-lease-dispute.md"
ANSWER_TOKENS = 64
FOUND_TOKENS = 24
#: An answer whose every token up to the code won by at least this many logits is decided
#: (``answer_margin``; tests/engine/test_compose_real.py uses the same threshold).
DECIDED_LOGITS = 0.5
CASES = ("reorder", "remove first", "insert middle", "other corpus", "insert known", "other known")


@dataclass
class Cell:
    compose_s: list[float] = field(default_factory=list)
    cold_s: list[float] = field(default_factory=list)
    evaluated: list[int] = field(default_factory=list)
    top1: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    found: list[bool] = field(default_factory=list)
    gate: list[float] = field(default_factory=list)


def paragraphs() -> list[str]:
    text = SAMPLE.read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if len(p.strip()) > 200]


def make_docs(
    rng: random.Random, n: int, names: list[str], pool: list[str], chars: int
) -> list[tuple[Document, str, str]]:
    """``n`` documents of about ``chars`` characters (420: about 150 tokens), paragraphs of
    the sample, each with a planted code at a random sentence break: (doc, name, code)."""
    out = []
    for name in names[:n]:
        code = f"{rng.randrange(100000, 999999)}"
        body = rng.choice(pool)
        while len(body) < chars:
            body += " " + rng.choice(pool)
        body = body[:chars]
        cut = body.rfind(". ", 0, rng.randrange(len(body) // 5, len(body) * 4 // 5)) + 2 or 0
        text = f"{body[:cut]}The access code for {name} is {code}. {body[cut:]}"
        doc = Document(sha256=f"{name}-{code}", name=name, kind="txt", pages=make_pages([text]))
        out.append((doc, name, code))
    return out


def prompt_for(model: LoadedModel, docs: list[tuple[Document, str, str]], question: str) -> Prompt:
    lists = [model.tokenize_text(layout_document(d)) for d, _, _ in docs]
    return build_prompt(model, lists, question)


def ungated(
    cache: SnapshotCache, sha: str, name: str, *, k: int = RECOMPUTE_FIRST, fact_run: int = FACT_RUN
) -> Composer:
    """A composer whose gate passes every composition: the benchmarks score them all."""
    return Composer(
        cache, model_sha256=sha, model_name=name, swa_full=False, k=k, gate_nats=-math.inf, fact_run=fact_run
    )


def step_logits(model: LoadedModel, prefix: list[int], feed: list[int]) -> list[np.ndarray]:
    """Logits before each token of ``feed``, the context holding ``prefix`` (teacher forcing)."""
    first = model.last_logits()
    rest = model.logits_after_each(feed[:-1]) if len(feed) > 1 else np.zeros((0, first.shape[0]))
    model.prefill(prefix)  # drop the fed tokens again
    return [first, *rest]


def cold_read(model: LoadedModel, prompt: Prompt) -> tuple[float, list[int], list[np.ndarray], float]:
    """Read cold (timed); its greedy answer; its logits before each question and answer
    token; its NLL of the gate's check tokens (the corpus's last ``CHECK_TOKENS``)."""
    model.clear()
    corpus = prompt.tokens[: prompt.corpus_end]
    start = time.perf_counter()
    model.prefill(corpus)
    cold_s = time.perf_counter() - start
    model.prefill(prompt.tokens)
    for _ in model.generate(max_tokens=ANSWER_TOKENS):
        pass
    answer = model.context_tokens[len(prompt.tokens) :]
    check = corpus[-CHECK_TOKENS:]
    model.prefill(corpus[:-CHECK_TOKENS])
    nll = check_nll(model.logits_after_each(check), check)
    model.prefill(corpus)
    logits = step_logits(model, corpus, prompt.tokens[prompt.corpus_end :] + answer)
    return cold_s, answer, logits, nll


def fact_spans(model: LoadedModel, prompt: Prompt, docs: list[tuple[Document, str, str]]) -> list[tuple[int, int]]:
    """The token span of each document's planted sentence in ``prompt`` (``--oracle``)."""
    spans = []
    for (a, b), (_, name, code) in zip(prompt.document_spans, docs, strict=True):
        text, starts = "", []
        for t in prompt.tokens[a:b]:
            starts.append(len(text))
            text += model.detokenize([t])
        lo = text.find(f"The access code for {name}")
        hi = text.find(code, lo) + len(code) + 1
        first = max(i for i, c in enumerate(starts) if c <= lo)
        last = max(i for i, c in enumerate(starts) if c < hi) + 1
        spans.append((a + first, a + last))
    return spans


def found_answer(model: LoadedModel, prompt: Prompt) -> str:
    model.prefill(prompt.tokens)
    return "".join(model.generate(max_tokens=FOUND_TOKENS))


def answer_margin(model: LoadedModel, prompt: Prompt, code: str) -> float:
    """How decided the greedy answer just written after ``prompt`` is: the least margin
    (logits, top token over the next) at each of its tokens up to ``code`` (all of them
    when it does not say it). A composition moves these logits by a few tenths; an answer
    decided by less is a coin toss for the cold read too."""
    answer = model.context_tokens[len(prompt.tokens) :]
    upto = len(answer)
    for i in range(1, len(answer) + 1):
        if code in model.detokenize(answer[:i]):
            upto = i
            break
    model.prefill(prompt.tokens)
    rows = [model.last_logits(), *model.logits_after_each(answer[: upto - 1])] if upto else []
    return min((float(np.diff(np.sort(r)[-2:])[0]) for r in rows), default=0.0)


def every_code(model: LoadedModel, order: list[tuple[Document, str, str]]) -> tuple[list[bool], list[float]]:
    """Whether each document's planted code is found when asked for (``--every-code``),
    the context holding the corpus (cold or composed), and how decided each answer is
    (``answer_margin``); each question reads only its own tokens after the corpus, which
    it leaves as it found it."""
    corpus = list(model.context_tokens)
    found, margins = [], []
    for _, name, code in order:
        prompt = prompt_for(model, order, f"What is the access code for {name}?")
        found.append(code in found_answer(model, prompt))
        margins.append(answer_margin(model, prompt, code))
    model.prefill(corpus)
    return found, margins


def cases(rng: random.Random, base: list, new: list, known: list) -> dict[str, list]:
    order = base[:]
    while order == base:
        rng.shuffle(order)
    picks = rng.sample(base, 4)
    return {
        "reorder": order,
        "remove first": base[1:],
        "insert middle": base[:5] + [new[0]] + base[5:],
        "other corpus": [new[1], picks[0], picks[1], new[2], picks[2], picks[3]],
        "insert known": base[:5] + [known[0]] + base[5:],
        "other known": [known[1], picks[0], picks[1], known[2], picks[2], picks[3]],
    }


def _share(found: list[bool]) -> str:
    return f"{sum(found)}/{len(found)} ({100 * sum(found) / len(found):.0f}%)" if found else "-"


def _as_cold(rows: list[dict[str, Any]], *, decided: bool) -> str:
    """Of the questions whose cold answer was decided (margin >= ``DECIDED_LOGITS``), or
    not, how many the composition answered as the cold read did (found or not alike)."""
    same = [
        composed == cold
        for r in rows
        for composed, cold, margin in zip(  # rows written before the margins have none: they count nowhere
            r.get("codes", []), r.get("cold_codes", []), r.get("cold_margins", []), strict=False
        )
        if (margin >= DECIDED_LOGITS) == decided
    ]
    return f"{sum(same)}/{len(same)}" if same else "-"


def print_merged(paths: list[Path]) -> int:
    rows: list[dict[str, Any]] = []
    for path in paths:
        rows.extend(json.loads(path.read_text(encoding="utf-8")))
    print_table(rows)
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    """Medians of times and counts, means of agreement and KL, found over seeds."""
    seeds = sorted({r["seed"] for r in rows})
    print(f"Seeds {seeds}. Medians of times and counts; means of top-1 agreement and KL; found over seeds.\n")
    print(
        "| case | k | compose s | cold s | cold/compose | tokens evaluated (of corpus) | top-1 agree | "
        "KL (nats) | found | cold found | every code | every code, cold | decided: as cold | undecided: as cold | "
        "gate (min..max) | cold gate (min..max) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    med = statistics.median
    for case in CASES:
        for k in sorted({r["k"] for r in rows}):
            c = [r for r in rows if r["case"] == case and r["k"] == k]
            if not c:
                continue
            compose_s = med(r["compose_s"] for r in c)
            cold_s = med(r["cold_s"] for r in c)
            print(
                f"| {case} | {k} | {compose_s:.2f} | {cold_s:.2f} | {cold_s / compose_s:.1f}x | "
                f"{med(r['evaluated'] for r in c):.0f} ({med(r['corpus'] for r in c):.0f}) | "
                f"{statistics.fmean(r['top1'] for r in c):.3f} | {statistics.fmean(r['kl'] for r in c):.4f} | "
                f"{sum(r['found'] for r in c)}/{len(c)} | {sum(r['cold_found'] for r in c)}/{len(c)} | "
                f"{_share([f for r in c for f in r.get('codes', [])])} | "
                f"{_share([f for r in c for f in r.get('cold_codes', [])])} | "
                f"{_as_cold(c, decided=True)} | {_as_cold(c, decided=False)} | "
                f"{min(r['gate'] for r in c):+.2f}..{max(r['gate'] for r in c):+.2f} | "
                f"{min(r['cold_gate'] for r in c):+.2f}..{max(r['cold_gate'] for r in c):+.2f} |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument(
        "--doc-chars", type=int, default=420, help="characters per document (420: ~150 tokens; 2000: eleven fill 8,192)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ks", default="0,16,64,256")
    parser.add_argument("--cases", default=",".join(CASES), help="which cases, comma-separated")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--broken", action="store_true", help="compose without rotating moved keys (the gate must catch it)"
    )
    parser.add_argument(
        "--oracle", action="store_true", help="also evaluate every planted sentence again (an upper bound)"
    )
    parser.add_argument(
        "--fact-run",
        type=int,
        default=FACT_RUN,
        help="evaluate again every run of at least this many tokens holding a digit and the words "
        "before it (engine.compose.fact_runs; default: the product's FACT_RUN; 0: off, as before 2026-12-04)",
    )
    parser.add_argument(
        "--every-code",
        action="store_true",
        help="also ask for every document's code, cold and composed (found rates over many facts)",
    )
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--merge", type=Path, nargs="+", help="print the table of these --json files only")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    chosen = [c.strip() for c in args.cases.split(",")]
    if unknown := [c for c in chosen if c not in CASES]:
        parser.error(f"unknown case {unknown[0]!r}; the cases are: {', '.join(CASES)}")
    if args.merge:
        return print_merged(args.merge)
    path = bundled_model_path()
    model = load_model(path, LoadSettings(n_ctx=args.ctx, n_threads=args.threads))
    model.rotate_moved_keys = not args.broken
    sha = model_sha256(path)
    pool = paragraphs()
    cells: dict[tuple[str, int], Cell] = {(c, k): Cell() for c in CASES for k in ks}
    cold_found: dict[str, list[bool]] = {c: [] for c in CASES}
    cold_gate: dict[str, list[float]] = {c: [] for c in CASES}
    names = [f"exhibit-{chr(65 + i)}.txt" for i in range(16)]
    started = time.perf_counter()
    rows: list[dict[str, object]] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rng = random.Random(seed)
        docs = make_docs(rng, 13, names, pool, args.doc_chars)
        base, new = docs[:10], docs[10:]
        known = make_docs(random.Random(seed + 10_000), 3, names[13:], pool, args.doc_chars)
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(Path(tmp) / "bench.db")
            cache = SnapshotCache(store, Path(tmp) / "snapshots")
            first = prompt_for(model, base, "What is the access code?")
            model.clear()
            t = time.perf_counter()
            model.prefill(first.tokens[: first.corpus_end])
            rate = (time.perf_counter() - t) / first.corpus_end
            saver = Composer(cache, model_sha256=sha, model_name=path.name, swa_full=False)
            saver.save_documents(model, first, names=[n for _, n, _ in base], seconds_per_token=rate)
            other = prompt_for(model, known, "What is the access code?")
            model.clear()
            t = time.perf_counter()
            model.prefill(other.tokens[: other.corpus_end])
            rate = (time.perf_counter() - t) / other.corpus_end
            saver.save_documents(model, other, names=[n for _, n, _ in known], seconds_per_token=rate)
            print(f"seed {seed}: base corpus {first.corpus_end} tokens, other {other.corpus_end}", flush=True)
            for case, order in cases(rng, base, new, known).items():
                target = rng.choice([d for d in order if d not in new])  # drawn for every case: the same targets
                if case not in chosen:
                    continue
                question = f"What is the access code for {target[1]}?"
                prompt = prompt_for(model, order, question)
                if len(prompt.tokens) + ANSWER_TOKENS > args.ctx:
                    raise SystemExit(f"{case}: {len(prompt.tokens)} tokens do not fit {args.ctx}")
                cold_s, answer, cold_logits, cold_nll = cold_read(model, prompt)
                cold_found[case].append(target[2] in model.detokenize(answer[:FOUND_TOKENS]))
                cold_codes, cold_margins = every_code(model, order) if args.every_code else ([], [])
                feed = prompt.tokens[prompt.corpus_end :] + answer
                also = fact_spans(model, prompt, order) if args.oracle else []
                for k in ks:
                    composer = ungated(cache, sha, path.name, k=k, fact_run=args.fact_run)
                    model.clear()
                    t = time.perf_counter()
                    comp = composer.compose(model, prompt, also=also)
                    compose_s = time.perf_counter() - t
                    assert comp is not None
                    cell = cells[(case, k)]
                    if len(cold_gate[case]) < len(cold_found[case]):  # the probe is the same for every k
                        cold_gate[case].append(cold_nll - comp.probe_nll)
                    cell.gate.append(comp.check_nll - comp.probe_nll)
                    corpus = prompt.tokens[: prompt.corpus_end]
                    logits = step_logits(model, corpus, feed)
                    assert model.context_tokens == corpus
                    agree = [int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(cold_logits, logits, strict=True)]
                    kls = [kl_divergence(a, b) for a, b in zip(cold_logits, logits, strict=True)]
                    found = target[2] in found_answer(model, prompt)
                    codes, _ = every_code(model, order) if args.every_code else ([], [])
                    cell.compose_s.append(compose_s)
                    cell.cold_s.append(cold_s)
                    cell.evaluated.append(comp.stats.evaluated)
                    cell.top1.append(sum(agree) / len(agree))
                    cell.kl.append(statistics.fmean(kls))
                    cell.found.append(found)
                    rows.append(
                        {
                            "seed": seed,
                            "case": case,
                            "k": k,
                            "compose_s": compose_s,
                            "cold_s": cold_s,
                            "evaluated": comp.stats.evaluated,
                            "corpus": prompt.corpus_end,
                            "top1": cell.top1[-1],
                            "kl": cell.kl[-1],
                            "found": found,
                            "cold_found": cold_found[case][-1],
                            "gate": cell.gate[-1],
                            "cold_gate": cold_gate[case][-1],
                            "codes": codes,
                            "cold_codes": cold_codes,
                            "cold_margins": cold_margins,
                        }
                    )
                    print(
                        f"  {case:13} k={k:3} compose {compose_s:6.2f} s cold {cold_s:6.2f} s "
                        f"evaluated {comp.stats.evaluated:5} of {prompt.corpus_end} top1 {cell.top1[-1]:.3f} "
                        f"KL {cell.kl[-1]:.4f} found {found} (cold {cold_found[case][-1]}) gate {cell.gate[-1]:+.3f} "
                        f"(cold {cold_gate[case][-1]:+.3f})",
                        flush=True,
                    )
            store.close()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(
        f"\nSmolLM2-135M Q4_1, f16 KV, window {args.ctx}, documents of {args.doc_chars} characters, "
        f"{args.threads} threads, {args.seeds} seeds, "
        f"{time.perf_counter() - started:.0f} s in all."
    )
    print_table(rows)
    model.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
