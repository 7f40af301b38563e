"""Prefill overhead: Longread's path against a bare ``Llama.eval`` in the same run.

Run: ``.venv/bin/python benchmarks/prefill.py [--tokens 1024] [--runs 7] [--kv f16]``
(or ``make bench``).

Both paths evaluate the same tokens (the sample document's, as the model sees it) on the
same loaded model, from an empty context, interleaved run by run so that load on the
machine hits both alike. Longread's path is ``LoadedModel.prefill``: batches, a
progress callback after each batch, a cancel check before each. The baseline is
``Llama.eval`` on the whole list. The ratio of median throughputs (Longread / bare) must
be at least 0.97: our overhead under 3%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import default_threads  # noqa: E402
from engine.corpus import Document, layout_document, make_pages  # noqa: E402
from engine.errors import CancelToken  # noqa: E402
from engine.ingest.text import extract_text_pages  # noqa: E402
from engine.models.bundled import bundled_model_path  # noqa: E402
from engine.runtime.backend import KvType, LoadSettings, PrefillProgress  # noqa: E402
from engine.runtime.llama import load_model  # noqa: E402

SAMPLE = ROOT / "resources" / "sample" / "harbor-lease-dispute.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--kv", default="f16", choices=list(KvType))
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()

    model_path = args.model or bundled_model_path()
    pages, _ = extract_text_pages(SAMPLE.read_bytes(), name=SAMPLE.name)
    doc = Document("sample", SAMPLE.name, "markdown", make_pages(pages))
    threads = default_threads()
    settings = LoadSettings(n_ctx=args.tokens + 256, kv_type=args.kv, n_threads=threads, n_batch=args.batch)
    model = load_model(model_path, settings)
    tokens = model.tokenize_text(layout_document(doc))
    while len(tokens) < args.tokens:
        tokens = tokens + tokens
    tokens = tokens[: args.tokens]
    llm = model.llama
    cancel = CancelToken()
    progress_calls = 0

    def on_progress(p: PrefillProgress) -> None:
        nonlocal progress_calls
        progress_calls += 1

    def run_longread() -> float:
        model.reset()
        start = time.perf_counter()
        model.prefill(tokens, on_progress=on_progress, should_cancel=cancel)
        return time.perf_counter() - start

    def run_bare() -> float:
        llm.reset()
        start = time.perf_counter()
        llm.eval(tokens)
        return time.perf_counter() - start

    run_bare()  # warm-up: page in the weights, settle the CPU
    longread, bare = [], []
    for i in range(args.runs):
        # Alternate which goes first so drift in machine load hits both.
        order = (run_longread, run_bare) if i % 2 == 0 else (run_bare, run_longread)
        for fn in order:
            (longread if fn is run_longread else bare).append(fn())
    model.close()

    med_l, med_b = statistics.median(longread), statistics.median(bare)
    ratio = med_b / med_l  # throughput of Longread's path over the bare path's
    print(
        f"model {model_path.name}, {args.tokens} tokens, KV {args.kv}, batch {args.batch}, {threads} threads, {args.runs} runs each"
    )
    print(f"{'path':<10} {'median s':>9} {'tokens/s':>9}   runs (s)")
    for name, runs, med in (("bare", bare, med_b), ("longread", longread, med_l)):
        print(f"{name:<10} {med:>9.3f} {args.tokens / med:>9.1f}   " + " ".join(f"{r:.2f}" for r in runs))
    print(f"progress callbacks per run: {progress_calls // args.runs}")
    print(
        f"ratio of medians (longread/bare throughput): {ratio:.3f}  (target >= 0.97: {'PASS' if ratio >= 0.97 else 'FAIL'})"
    )
    return 0 if ratio >= 0.97 else 1


if __name__ == "__main__":
    sys.exit(main())
