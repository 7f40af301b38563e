"""Reopen benchmark: cold prefill of a corpus against restoring its KV snapshot (issue 4).

Run (about an hour on 2 cores, most of it Gemma's 32k cold prefills)::

    .venv/bin/python benchmarks/reopen.py --runs 3 | tee reopen.txt

Quick check: ``--cases smollm2:2048 --kv f16 --runs 1``.

For each case (model and corpus length) and KV type, in one process and one loaded
model: ``runs`` times, empty the context, read the corpus cold exactly as ``Reader``
does (all but the last token in batches, the last token alone), save the snapshot
through ``SnapshotCache`` (the engine's own path: temporary file, crc32, row), empty
the context, and restore it through ``SnapshotCache.restore`` (size and crc32 check,
llama.cpp load, the last token evaluated again and its logits compared). Restore time
is everything from the lookup to the checked context. Medians are reported, with the
ratio cold / restore, and the snapshot's bytes per token next to the KV formula:
``full`` is every layer holding every token (``ModelInfo.kv_bytes_per_token``), ``saved``
what a sequence-state file holds (``ModelInfo.kv_state_bytes``: sliding-window layers keep
only their last window; the file adds ~16 bytes a token of token ids and positions). Sliding-window models load with ``swa_full`` as
``Reader`` does; the memory that costs is printed too. The corpus is the sample
document, repeated with numbered copies until it reaches the length.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import default_threads  # noqa: E402
from engine.models.bundled import bundled_model_path, gemma_model_path, model_sha256  # noqa: E402
from engine.models.gguf import inspect_gguf  # noqa: E402
from engine.runtime.backend import LoadSettings  # noqa: E402
from engine.runtime.llama import LoadedModel, load_model  # noqa: E402
from engine.store import open_store  # noqa: E402
from engine.warm import SnapshotCache, make_key  # noqa: E402

SAMPLE = ROOT / "resources" / "sample" / "harbor-lease-dispute.md"
MODELS = {"smollm2": bundled_model_path, "gemma": gemma_model_path}
HEADROOM = 256  # window room beyond the corpus, for a question and an answer


def build_corpus(model: LoadedModel, n_tokens: int) -> list[int]:
    """The sample document tokenized, in numbered copies, cut to ``n_tokens``."""
    text = SAMPLE.read_text(encoding="utf-8")
    tokens = model.tokenize_template("", add_bos=True)
    copy = 0
    while len(tokens) < n_tokens:
        copy += 1
        tokens += model.tokenize_text(f"\n\n[Copy {copy}]\n" + text)
    return tokens[:n_tokens]


def run_case(name: str, n_tokens: int, kv: str, runs: int, threads: int, folder: Path) -> dict[str, float]:
    path = MODELS[name]()
    info = inspect_gguf(path)
    swa_full = info.n_sliding_layers > 0
    n_ctx = n_tokens + HEADROOM
    model = load_model(path, LoadSettings(n_ctx=n_ctx, kv_type=kv, n_threads=threads, swa_full=swa_full or None))
    store = open_store(folder / f"{name}-{kv}.db")
    cache = SnapshotCache(store, folder / f"{name}-{kv}")
    cache.set_budget_bytes(50 * 10**9)
    sha = model_sha256(path)
    colds, restores, saves, sizes = [], [], [], []
    try:
        corpus = build_corpus(model, n_tokens)
        key = make_key(model, model_sha256=sha, corpus=corpus, swa_full=swa_full)
        for run in range(runs):
            cache.clear()
            model.clear()
            start = time.perf_counter()
            model.prefill(corpus[:-1])
            cold_head = time.perf_counter() - start
            t0 = time.perf_counter()
            pending = cache.write_pending(model, key, estimate_bytes=0)
            write_s = time.perf_counter() - t0
            start = time.perf_counter()
            model.prefill(corpus)
            cold = cold_head + time.perf_counter() - start
            assert pending is not None
            t0 = time.perf_counter()
            snap = cache.commit(pending, key, model_name=path.name, logits=model.last_logits(), prefill_s=cold)
            save = write_s + time.perf_counter() - t0
            assert snap is not None
            model.clear()
            start = time.perf_counter()
            cache.restore(model, key, corpus)
            restore = time.perf_counter() - start
            assert model.context_tokens == corpus
            colds.append(cold)
            restores.append(restore)
            saves.append(save)
            sizes.append(snap.size_bytes)
            print(
                f"  {name} {n_tokens} {kv} run {run + 1}: cold {cold:.1f} s, save {save:.2f} s, "
                f"restore {restore:.3f} s ({cold / restore:.0f}x)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        cache.clear()
        store.close()
        model.close()
    cold_m, restore_m = statistics.median(colds), statistics.median(restores)
    return {
        "cold": cold_m,
        "restore": restore_m,
        "save": statistics.median(saves),
        "ratio": cold_m / restore_m,
        "bytes": statistics.median(sizes),
        "per_token": statistics.median(sizes) / n_tokens,
        "formula": info.kv_bytes_per_token(kv, kv),
        "saved_formula": info.kv_state_bytes(n_tokens - 1, kv, kv) / n_tokens,
        "swa_full_mem": info.kv_cache_bytes(n_ctx, kv, kv, swa_full=True) if swa_full else 0,
        "swa_mem": info.kv_cache_bytes(n_ctx, kv, kv) if swa_full else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=["smollm2:8192", "gemma:32768"], metavar="MODEL:TOKENS")
    parser.add_argument("--kv", nargs="+", default=["f16", "q8_0"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    print(f"reopen benchmark: {args.runs} runs per row, {args.threads} threads, medians", flush=True)
    header = (
        f"{'model':<8} {'tokens':>7} {'kv':<5} {'cold s':>8} {'restore s':>9} {'ratio':>7} {'save s':>7} "
        f"{'snapshot':>10} {'B/token':>8} {'saved':>8} {'full':>8}"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="longread-reopen-") as tmp:
        for case in args.cases:
            name, n = case.split(":")
            # The trained window (8k for SmolLM2) bounds the window, question included.
            n_tokens = int(n) - HEADROOM
            for kv in args.kv:
                r = run_case(name, n_tokens, kv, args.runs, args.threads, Path(tmp))
                rows.append(
                    f"{name:<8} {n_tokens:>7} {kv:<5} {r['cold']:>8.1f} {r['restore']:>9.3f} {r['ratio']:>6.0f}x "
                    f"{r['save']:>7.2f} {r['bytes'] / 1e6:>7.1f} MB {r['per_token']:>8.0f} {r['saved_formula']:>8.0f} "
                    f"{r['formula']:>8.0f}"
                )
                if r["swa_full_mem"]:
                    rows.append(
                        f"{'':<8} swa_full KV memory {r['swa_full_mem'] / 1e6:.0f} MB vs "
                        f"{r['swa_mem'] / 1e6:.0f} MB without (window {n_tokens + HEADROOM})"
                    )
                print(header + "\n" + "\n".join(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
