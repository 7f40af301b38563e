"""The same corpus and question in this process and through llama-server (issue 16).

Run: ``.venv/bin/python benchmarks/server.py [--runs 3] [--threads 2]`` after
``make llama-server``. It starts llama-server on 127.0.0.1 with the bundled SmolLM2
(one slot, the same window and threads as the local model, the server's RAM prompt cache
off so that a cold read is cold) and measures:

1. Prefill throughput of the sample document's prompt, cold: in-process
   (``LoadedModel.prefill``), through the server as Longread sends it (``ServerModel.prefill``:
   one streamed request with the server's progress events, for cancel and progress), and
   through the server as one plain request; the ratio server/local. Runs are interleaved.
2. A second question on the same corpus through the server: the tokens the server
   reported it reused (``timings.cache_n``) and evaluated, and the time.
3. Slot restore (``--slot-save-path``, verified) against a cold read of the same tokens.

4. Map-mode waves (no notes carried, one reduce pass) over a longer document with a
   1,024-token window per slot, on a server with 1 slot and on one with 2 slots.
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

from engine.config import ReadSettings  # noqa: E402
from engine.corpus import Corpus  # noqa: E402
from engine.ingest import read_documents  # noqa: E402
from engine.library import Library  # noqa: E402
from engine.models.bundled import bundled_model_path  # noqa: E402
from engine.reading.ask import Reader  # noqa: E402
from engine.reading.waves import WaveMode  # noqa: E402
from engine.runtime.backend import LoadSettings  # noqa: E402
from engine.runtime.llama import load_model  # noqa: E402
from engine.runtime.server import ServerBackend, ServerModel  # noqa: E402
from engine.store import open_store  # noqa: E402
from tests.conftest import fact_pages, text_pages_file  # noqa: E402
from tests.server_procs import NOT_BUILT, Binaries, binaries, start_llama_server  # noqa: E402

SAMPLE = ROOT / "resources" / "sample" / "harbor-lease-dispute.md"
QUESTION = "What is the award reference code, and what total amount was awarded?"
SECOND = "Who were the parties to the dispute?"
N_CTX = 8192


def _erase(model: ServerModel) -> None:
    model._backend.http.post(f"/slots/{model.slot}?action=erase", {})
    model.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    bins = binaries()
    if bins is None:
        print(NOT_BUILT, file=sys.stderr)
        return 1
    model_path = bundled_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "slots").mkdir()
        proc = start_llama_server(
            bins,
            model_path,
            log_dir=folder,
            ctx=N_CTX,
            parallel=1,
            threads=args.threads,
            slot_save_path=folder / "slots",
            extra=("--cache-ram", "0"),  # the RAM prompt cache would make a "cold" read warm
        )
        try:
            _measure(proc.url, model_path, folder, args)
        finally:
            proc.stop()
        _map_waves(bins, model_path, folder, args)
    return 0


def _map_waves(bins: Binaries, model_path: Path, folder: Path, args: argparse.Namespace) -> None:
    doc = text_pages_file(folder / "long.txt", fact_pages(12, fact_page=9))
    for slots in (1, 2):
        proc = start_llama_server(
            bins, model_path, log_dir=folder, ctx=1024 * slots, parallel=slots, threads=args.threads,
            extra=("--cache-ram", "0"),
        )  # fmt: skip
        try:
            lib = Library(
                folder / f"map{slots}.db",
                backend=ServerBackend(proc.url),
                settings=ReadSettings(n_threads=args.threads, n_ctx=1024, max_answer_tokens=48),
            )
            corpus = Corpus(tuple(read_documents([doc], store=lib.store)[0]))
            start = time.perf_counter()
            result = lib.read_in_waves(corpus, QUESTION, note_tokens=48, mode=WaveMode.MAP)
            took = time.perf_counter() - start
            run = lib.get_run(result.run_id)
            waves = [s for s in run.steps if s.kind == "wave"] if run is not None else []
            print(
                f"map waves, {slots} slot(s): {len(waves)} waves + reduce in {took:.1f} s ({run.status if run else '?'})"
            )
            lib.close()
        finally:
            proc.stop()


def _measure(url: str, model_path: Path, folder: Path, args: argparse.Namespace) -> None:
    store = open_store(folder / "bench.db")
    docs, _ = read_documents([SAMPLE], store=store)
    corpus = Corpus(tuple(docs))
    local_reader = Reader(store, model_path, ReadSettings(n_threads=args.threads))
    prompt, _ = local_reader.prepare(corpus, QUESTION)
    local_reader.close()
    tokens = prompt.tokens
    settings = LoadSettings(n_ctx=N_CTX, n_threads=args.threads)
    local = load_model(model_path, settings)
    backend = ServerBackend(url)
    remote = backend.load_model(backend.model_path, settings)
    print(f"prompt: {len(tokens):,} tokens (the sample document and a question); {args.runs} interleaved runs")

    rates: dict[str, list[float]] = {"local": [], "server (Longread's prefill)": [], "server (one plain request)": []}
    for _ in range(args.runs):
        local.reset()
        start = time.perf_counter()
        local.prefill(tokens)
        rates["local"].append(len(tokens) / (time.perf_counter() - start))

        _erase(remote)
        start = time.perf_counter()
        remote.prefill(tokens)
        rates["server (Longread's prefill)"].append(len(tokens) / (time.perf_counter() - start))
        evaluated = remote.reports[-1].evaluated

        _erase(remote)
        start = time.perf_counter()
        _, report = remote.complete(tokens, n_predict=0)
        rates["server (one plain request)"].append(len(tokens) / (time.perf_counter() - start))
        assert report.cached == 0, "a cold read found a cache"
    base = statistics.median(rates["local"])
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"  prefill {name:30s} median {med:7.1f} tokens/s  ratio to local {med / base:.2f}")
    print(f"  (the server reported evaluating {evaluated:,} tokens in Longread's last cold prefill)")
    local.close()

    # 2. A second question through the server's prompt cache.
    lib = Library(
        folder / "lib.db", backend=backend, settings=ReadSettings(n_threads=args.threads, max_answer_tokens=48)
    )
    lib_corpus = Corpus(tuple(read_documents([SAMPLE], store=lib.store)[0]))
    _erase(remote)
    start = time.perf_counter()
    first = lib.ask(lib_corpus, QUESTION)
    first_s = time.perf_counter() - start
    model = lib.lane.model
    assert isinstance(model, ServerModel)
    before = len(model.reports)
    start = time.perf_counter()
    lib.ask(lib_corpus, SECOND, session_id=first.session_id)
    second_s = time.perf_counter() - start
    reports = model.reports[before:]
    print(
        f"second question: first ask {first_s:.1f} s, second {second_s:.1f} s; the server reported "
        f"{reports[0].cached:,} tokens reused from its cache and {sum(r.evaluated for r in reports):,} evaluated "
        f"for the second (answer {first.answer_tokens} tokens)"
    )
    lib.close()

    # 3. Slot restore against a cold read of the same tokens.
    cold, restore = [], []
    for i in range(args.runs):
        _erase(remote)
        start = time.perf_counter()
        remote.prefill(tokens)
        cold.append(time.perf_counter() - start)
        snapshot = remote.save_slot(f"bench-{i}.bin")
        _erase(remote)
        start = time.perf_counter()
        report = remote.restore_slot(snapshot)
        restore.append(time.perf_counter() - start)
    size = (folder / "slots" / snapshot.filename).stat().st_size
    print(
        f"slot restore: median {statistics.median(restore):.2f} s (verified: the server reused {report.cached:,} of "
        f"{len(tokens):,} tokens, same next token) against a cold read of {statistics.median(cold):.2f} s; "
        f"slot file {size / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    sys.exit(main())
