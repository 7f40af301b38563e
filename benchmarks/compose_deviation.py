"""How far a composition's KV cells are from the cold read's, token by token and layer by
layer, and what reading again the tokens that are furthest (known from the cold read: an
upper bound on a CacheBlend-like selection) buys (issue 17; docs/compose.md, 2026-12-04
(later)).

Run (SmolLM2, the full 8k window; about 4 min a seed on the shared 2-core machine)::

    .venv/bin/python benchmarks/compose_deviation.py --seed 0 --case reorder --shares 0.05,0.15 --layer 1

One seed and case of ``benchmarks/compose.py`` (documents of 2,000 characters): the corpus
read cold, its cells kept; composed as the product does (k = 16, fact runs), its cells
kept. For every position and layer, the deviation is |K - K cold| / |K cold| + the same
for V. It prints the mean by layer, how well the deviation at layers 1, 2, 4 and 8 foretells
the last layer's (CacheBlend selects by an early layer's), the mean by place in the
document, and then for each share: the composition with that share of the corpus's tokens
read again, those that deviate most at ``--layer`` (-1: the mean over every layer), with
every document's code asked (found, and the answers the cold read decided that it
answered alike: ``benchmarks.compose``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.compose import (  # noqa: E402
    DECIDED_LOGITS,
    cases,
    every_code,
    make_docs,
    paragraphs,
    prompt_for,
    step_logits,
    ungated,
)
from engine.compose import Composer, kl_divergence  # noqa: E402
from engine.models.bundled import bundled_model_path, model_sha256  # noqa: E402
from engine.runtime.backend import LoadSettings  # noqa: E402
from engine.runtime.llama import LoadedModel, load_model  # noqa: E402
from engine.store import open_store  # noqa: E402
from engine.warm import SnapshotCache  # noqa: E402


def cells(model: LoadedModel) -> list[tuple[np.ndarray, np.ndarray]]:
    """(K, V) per layer of the context (f16 cache), rows in position order."""
    state = model.sequence_state()
    order = np.argsort(state.pos)
    n = state.n_cells
    out = []
    for k, v in zip(state.k, state.v, strict=True):
        keys = np.frombuffer(k.tobytes(), dtype=np.float16).reshape(n, -1)[order]
        if state.v_trans:
            values = np.frombuffer(v.tobytes(), dtype=np.float16).reshape(-1, n).T[order]
        else:
            values = np.frombuffer(v.tobytes(), dtype=np.float16).reshape(n, -1)[order]
        out.append((keys.astype(np.float32), values.astype(np.float32)))
    return out


def deviation(cold: list[tuple[np.ndarray, np.ndarray]], other: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(layers, positions): relative distance of K plus that of V."""

    def rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(np.linalg.norm(b - a, axis=1) / (np.linalg.norm(a, axis=1) + 1e-6))

    return np.stack([rel(ck, ok) + rel(cv, ov) for (ck, cv), (ok, ov) in zip(cold, other, strict=True)])


def spans_of(positions: np.ndarray) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for p in sorted(int(x) for x in positions):
        if out and p == out[-1][1]:
            out[-1] = (out[-1][0], p + 1)
        else:
            out.append((p, p + 1))
    return out


def codes_line(got: list[bool], cold: list[bool], margins: list[float]) -> str:
    decided = [g == c for g, c, m in zip(got, cold, margins, strict=True) if m >= DECIDED_LOGITS]
    return f"{''.join('Y' if g else '.' for g in got)} found {sum(got)}, decided as cold {sum(decided)}/{len(decided)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", default="reorder")
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--doc-chars", type=int, default=2000)
    parser.add_argument("--shares", default="0.05,0.15", help="shares of the corpus read again, comma-separated")
    parser.add_argument("--layer", type=int, default=1, help="select by this layer's deviation (-1: every layer's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    path = bundled_model_path()
    sha = model_sha256(path)
    model = load_model(path, LoadSettings(n_ctx=args.ctx, n_threads=args.threads))
    rng = random.Random(args.seed)
    pool = paragraphs()
    names = [f"exhibit-{chr(65 + i)}.txt" for i in range(16)]
    docs = make_docs(rng, 13, names, pool, args.doc_chars)
    base, new = docs[:10], docs[10:]
    known = make_docs(random.Random(args.seed + 10_000), 3, names[13:], pool, args.doc_chars)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "deviation.db")
        cache = SnapshotCache(store, Path(tmp) / "snapshots")
        saver = Composer(cache, model_sha256=sha, model_name=path.name, swa_full=False)
        for group in (base, known):
            read = prompt_for(model, group, "What is the access code?")
            model.clear()
            model.prefill(read.tokens[: read.corpus_end])
            saver.save_documents(model, read)
        order = cases(rng, base, new, known)[args.case]
        prompt = prompt_for(model, order, "What is the access code for this document?")
        corpus = prompt.tokens[: prompt.corpus_end]
        feed = prompt.tokens[prompt.corpus_end :]
        model.clear()
        model.prefill(corpus)
        cold_cells = cells(model)
        cold_logits = step_logits(model, corpus, feed)
        cold_codes, margins = every_code(model, order)
        print(f"{args.case}, seed {args.seed}: {len(corpus)} tokens")
        print(f"cold                 {codes_line(cold_codes, cold_codes, margins)}", flush=True)
        composer = ungated(cache, sha, path.name)

        def composed(also: list[tuple[int, int]], label: str) -> None:
            model.clear()
            started = time.perf_counter()
            comp = composer.compose(model, prompt, also=also)
            seconds = time.perf_counter() - started
            assert comp is not None
            kl = statistics.fmean(
                kl_divergence(a, b) for a, b in zip(cold_logits, step_logits(model, corpus, feed), strict=True)
            )
            got, _ = every_code(model, order)
            print(
                f"{label:20} {codes_line(got, cold_codes, margins)}; {comp.stats.evaluated:,} tokens read again, "
                f"{seconds:.1f} s; KL over the question {kl:.4f}",
                flush=True,
            )

        composed([], "k = 16, fact runs")
        dev = deviation(cold_cells, cells(model))
        print("mean deviation by layer: " + " ".join(f"{x:.3f}" for x in dev.mean(axis=1)))
        n = dev.shape[1]
        last = set(np.argsort(dev[-1])[-n // 10 :])
        for layer in (1, 2, 4, 8):
            top = set(np.argsort(dev[layer])[-n // 10 :])
            r = np.corrcoef(dev[layer], dev[-1])[0, 1]
            print(
                f"layer {layer}: correlation with the last layer {r:.2f}; its top tenth is {len(top & last) / len(top):.0%} of the last's"
            )
        place = np.full(n, -1)
        for a, b in prompt.document_spans:
            place[a:b] = np.arange(b - a)
        for lo, hi in ((0, 16), (16, 64), (64, 256), (256, 1 << 20)):
            inside = (place >= lo) & (place < hi)
            print(f"document tokens {lo}-{hi if hi < 1 << 20 else 'end'}: mean deviation {dev[:, inside].mean():.3f}")
        score = (dev.mean(axis=0) if args.layer < 0 else dev[args.layer]).copy()
        score[: prompt.document_spans[0][0]] = 0  # the instructions are exact
        for share in (float(s) for s in args.shares.split(",")):
            picked = np.argsort(score)[::-1][: int(share * n)]
            composed(spans_of(picked), f"+ top {share:.0%} (layer {args.layer})")
        store.close()
    model.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
