"""What it takes for an assembled corpus to find what the cold read finds: every
document's code asked after compositions that read more, or differently, again (issue 17;
docs/compose.md, 2026-12-04 (evening)).

Run (SmolLM2 at its full window; about 4-6 min a seed on the shared 2-core machine, more
with ``target``)::

    .venv/bin/python benchmarks/compose_variants.py --seeds 3 \\
        --variants "k16,k0+fr0,k64,k128,k256,alone,alone+fr0"
    .venv/bin/python benchmarks/compose_variants.py --seeds 3 --variants "target"
    .venv/bin/python benchmarks/compose_variants.py --seeds 1 --variants "k16,temper0.8,temper1.2,temper1.5"

The documents, orders and questions are ``benchmarks/compose.py``'s (``--ctx 8192
--doc-chars 2000``: ten documents of about 650 tokens; ``--case``, default reorder). The
ten are read cold in their first order and each document's snapshot saved (``alone`` in a
variant: each document read on its own after the instructions instead, the form
CacheBlend and EPIC assume). Then the case's order is read cold and every document's code
asked (``every_code``), and again after each variant's composition:

- ``kN``: the first N tokens of each document read again (the product: k16); ``frN``: fact
  runs of N digit tokens (the product: fr5; fr0 off);
- ``target``: for each question, the document it asks about read again whole as well (a
  composition per question: what reading the document a question names would buy);
- ``temperA``: every moved document's K multiplied by A before it is placed (APE's
  attention temperature, ICLR'25: a query's attention over those cells sharpened, A > 1,
  or flattened, A < 1; the instructions' cells, exact, are left alone).

For each: the codes found (``Y``), how many of the questions the cold read decided
(``DECIDED_LOGITS``) it answered as the cold read did, the tokens read again and the time
(median over the compositions of ``target``). Wall-clock times are only meaningful on a
quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine.runtime.llama as llama_runtime  # noqa: E402
from benchmarks.compose import (  # noqa: E402
    DECIDED_LOGITS,
    cases,
    every_code,
    found_answer,
    make_docs,
    paragraphs,
    prompt_for,
    ungated,
)
from engine.compose import Composer  # noqa: E402
from engine.models.bundled import bundled_model_path, model_sha256  # noqa: E402
from engine.runtime.backend import LoadSettings  # noqa: E402
from engine.runtime.llama import LoadedModel, load_model  # noqa: E402
from engine.store import open_store  # noqa: E402
from engine.warm import SnapshotCache  # noqa: E402

F16 = 1  # ggml's type id of an f16 K row


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    k: int = 16
    fact_run: int = 5
    alone: bool = False
    target: bool = False
    temper: float = 1.0


def parse_variant(text: str) -> Variant:
    v = Variant(text)
    for part in text.split("+"):
        if part == "alone":
            v = dataclasses.replace(v, alone=True)
        elif part == "target":
            v = dataclasses.replace(v, target=True)
        elif part.startswith("temper"):
            v = dataclasses.replace(v, temper=float(part[len("temper") :]))
        elif part.startswith("fr"):
            v = dataclasses.replace(v, fact_run=int(part[2:]))
        elif part.startswith("k"):
            v = dataclasses.replace(v, k=int(part[1:]))
        else:
            raise SystemExit(f"unknown variant part {part!r} in {text!r}")
    return v


@contextmanager
def tempered(factor: float) -> Iterator[None]:
    """Every document range read for a composition has its K rows (f16) multiplied by
    ``factor``; the prompt head's (saved at position 0) is left as it is."""
    read = llama_runtime._read_range
    if factor == 1.0:
        yield
        return

    def scaled(path: Path):  # type: ignore[no-untyped-def]
        start, saved, state = read(path)
        if start == 0:
            return start, saved, state
        rows = []
        for (k_type, _), k in zip(state.k_meta, state.k, strict=True):
            if k_type != F16:
                raise SystemExit("temper needs an f16 K")
            x = k.view(np.float16).astype(np.float32) * factor
            rows.append(x.astype(np.float16).view(np.uint8).reshape(k.shape))
        return start, saved, dataclasses.replace(state, k=tuple(rows))

    llama_runtime._read_range = scaled  # type: ignore[assignment]
    try:
        yield
    finally:
        llama_runtime._read_range = read


def _marks(found: list[bool]) -> str:
    return "".join("Y" if x else "." for x in found)


def save_snapshots(model: LoadedModel, cache: SnapshotCache, sha: str, groups: list[list], *, alone: bool) -> None:
    saver = Composer(cache, model_sha256=sha, model_name="m", swa_full=False)
    for group in [[d] for g in groups for d in g] if alone else groups:
        first = prompt_for(model, group, "What is the access code?")
        model.clear()
        model.prefill(first.tokens[: first.corpus_end])
        saver.save_documents(model, first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--case", default="reorder")
    parser.add_argument("--variants", default="k16,k0+fr0,k64,k128,k256")
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--doc-chars", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants.split(",")]
    path = bundled_model_path()
    sha = model_sha256(path)
    model = load_model(path, LoadSettings(n_ctx=args.ctx, n_threads=args.threads))
    pool = paragraphs()
    names = [f"exhibit-{chr(65 + i)}.txt" for i in range(16)]
    totals: dict[str, list[bool]] = {}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        rng = random.Random(seed)
        docs = make_docs(rng, 13, names, pool, args.doc_chars)
        base, new = docs[:10], docs[10:]
        known = make_docs(random.Random(seed + 10_000), 3, names[13:], pool, args.doc_chars)
        order = cases(rng, base, new, known)[args.case]
        prompt = prompt_for(model, order, "What is the access code for x?")
        spans = prompt.document_spans
        model.clear()
        started = time.perf_counter()
        model.prefill(prompt.tokens[: prompt.corpus_end])
        cold_s = time.perf_counter() - started
        cold, margins = every_code(model, order)
        totals.setdefault("cold", []).extend(cold)
        print(f"seed {seed}: {args.case}, {prompt.corpus_end:,} tokens, cold read {cold_s:.1f} s", flush=True)
        print(f"  {'cold':16} {_marks(cold)}", flush=True)
        for alone in sorted({v.alone for v in variants}):
            with tempfile.TemporaryDirectory() as tmp:
                cache = SnapshotCache(open_store(Path(tmp) / "b.db"), Path(tmp) / "snapshots")
                save_snapshots(model, cache, sha, [base, known], alone=alone)
                for v in (v for v in variants if v.alone == alone):
                    composer = ungated(cache, sha, "m", k=v.k, fact_run=v.fact_run)
                    found: list[bool] = []
                    evaluated: list[int] = []
                    seconds: list[float] = []
                    with tempered(v.temper):
                        if v.target:  # a composition for each question, its document read whole
                            for i, (_, name, code) in enumerate(order):
                                model.clear()
                                started = time.perf_counter()
                                comp = composer.compose(model, prompt, also=[spans[i]])
                                seconds.append(time.perf_counter() - started)
                                assert comp is not None
                                evaluated.append(comp.stats.evaluated)
                                asked = prompt_for(model, order, f"What is the access code for {name}?")
                                found.append(code in found_answer(model, asked))
                        else:
                            model.clear()
                            started = time.perf_counter()
                            comp = composer.compose(model, prompt)
                            seconds.append(time.perf_counter() - started)
                            assert comp is not None
                            evaluated.append(comp.stats.evaluated)
                            found, _ = every_code(model, order)
                    as_cold = [f == c for f, c, m in zip(found, cold, margins, strict=True) if m >= DECIDED_LOGITS]
                    totals.setdefault(v.name, []).extend(found)
                    took = statistics.median(seconds)
                    print(
                        f"  {v.name:16} {_marks(found)} found {sum(found)}, decided as cold {sum(as_cold)}/"
                        f"{len(as_cold)}; {int(statistics.median(evaluated)):,} tokens read again, {took:.1f} s "
                        f"({cold_s / took:.1f}x)",
                        flush=True,
                    )
    print(f"\nSmolLM2-135M, window {args.ctx}, documents of {args.doc_chars} characters, seeds {list(seeds)}:")
    for name, found in totals.items():
        print(f"  {name:16} found {sum(found)}/{len(found)} ({100 * sum(found) / max(len(found), 1):.0f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
