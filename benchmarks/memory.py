"""Check the planner (issue 5) against real loads: resident memory and prefill time.

    .venv/bin/python benchmarks/memory.py                       # both models, 1k/2k/4k windows
    .venv/bin/python benchmarks/memory.py --models smollm2 --windows 1024,8192 --json out.json
    .venv/bin/python benchmarks/memory.py --replay a.json b.json  # re-print saved runs

For each model, window and KV cache type, a fresh subprocess imports the runtime
(which imports llama_cpp), reads its own resident set, loads the model with that window
and cache type, prefills a corpus that fills the window to within 64 tokens, and reads
its peak resident set (``VmHWM``). **Measured memory = peak RSS after load and prefill
minus RSS after importing llama_cpp, in the same process.** Mmapped weights count only
as far as their pages became resident (a prefill reads every tensor); reserved but
untouched buffers (llama.cpp's worst-case logits buffer) do not count; nothing is
counted twice. The planner's figure for the same window and type is ``PlanRow.total_bytes``.

Speed: each cache type is calibrated first (``engine.planner.calibrate``: two batches of
512 tokens, in its own subprocess, into a throwaway store); the planner predicts the
prefill time of each window's corpus from it, and the measurement is the same child's
prefill wall time. Other programs running on the machine slow both down: compare
rows from one run, not across runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.runtime.backend import KvType  # noqa: E402  (no llama.cpp: the parent stays light)

FILL_MARGIN = 64
MIB = 1 << 20


def _read_status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _child_measure(path: str, n_ctx: int, kv_type: str, threads: int) -> dict[str, object]:
    """Load, prefill to within FILL_MARGIN of the window, report memory and time."""
    import logging

    lines: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "buffer size" in record.getMessage():
                lines.append(" ".join(record.getMessage().split()))

    llama_log = logging.getLogger("longread.llama")
    llama_log.setLevel(logging.DEBUG)
    llama_log.addHandler(_Keep())
    llama_log.propagate = False
    from engine.runtime.backend import LoadSettings
    from engine.runtime.llama import load_model

    base = _read_status()
    model = load_model(Path(path), LoadSettings(n_ctx=n_ctx, kv_type=kv_type, n_threads=threads))
    loaded = _read_status()
    n_vocab = model.n_vocab
    n_tokens = n_ctx - FILL_MARGIN
    tokens = [(1009 + i * 7919) % (n_vocab - 1) + 1 for i in range(n_tokens)]
    start = time.perf_counter()
    model.prefill(tokens)
    seconds = time.perf_counter() - start
    end = _read_status()
    model.close()
    return {"base": base, "loaded": loaded, "end": end, "tokens": n_tokens, "seconds": seconds, "llama_log": lines}


def _child_calibrate(path: str, kv_type: str, threads: int) -> dict[str, object]:
    from engine.planner import calibrate
    from engine.store import open_store

    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "calibration.db")
        try:
            row = calibrate(Path(path), kv_type, store=store, n_threads=threads, model_sha256="benchmark")
        finally:
            store.close()
    return {"kv_type": kv_type, "batch_size": row.batch_size, "batch_seconds": list(row.batch_seconds)}


def _run_child(*args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if result.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _model_paths(names: list[str]) -> dict[str, Path]:
    from engine.models.bundled import bundled_model_path, gemma_model_path

    known = {"smollm2": bundled_model_path, "gemma": gemma_model_path}
    return {name: known[name]() for name in names}


def _measure(args: argparse.Namespace) -> dict[str, object]:
    paths = _model_paths(args.models.split(","))
    windows = [int(w) for w in args.windows.split(",")]
    kv_types = args.kv.split(",")
    run: dict[str, object] = {"threads": args.threads, "models": {}}
    for name, path in paths.items():
        calibrations = []
        for kv in kv_types:
            print(f"calibrating {name} {kv}...", file=sys.stderr, flush=True)
            calibrations.append(_run_child("calibrate", str(path), kv, str(args.threads)))
        measurements = []
        for window in windows:
            for kv in kv_types:
                print(f"measuring {name} window {window} {kv}...", file=sys.stderr, flush=True)
                m = _run_child("measure", str(path), str(window), kv, str(args.threads))
                measurements.append({"window": window, "kv_type": kv, **m})
        run["models"][name] = {"path": str(path), "calibrations": calibrations, "measurements": measurements}  # type: ignore[index]
    return run


def _report(run: dict[str, object]) -> int:
    from engine.models.gguf import inspect_gguf
    from engine.planning import make_plan
    from engine.store.db import CalibrationRow

    header = (
        f"{'model':<8} {'window':>6} {'KV':<5} {'plan MiB':>8} {'meas MiB':>8} {'err':>6}  "
        f"{'plan s':>7} {'meas s':>7} {'err':>6} {'tok/s':>6}  llama.cpp compute reserve"
    )
    print(header)
    print("-" * len(header))
    worst_mem = 0.0
    models = run["models"]
    assert isinstance(models, dict)
    for name, data in models.items():
        info = inspect_gguf(Path(data["path"]))
        calibrations = [
            CalibrationRow(
                "benchmark",
                c["kv_type"],
                int(str(run["threads"])),
                c["batch_size"],
                "",
                tuple(c["batch_seconds"]),
                KvType(c["kv_type"]).needs_flash_attn,
            )
            for c in data["calibrations"]
        ]
        for m in data["measurements"]:
            window, kv = m["window"], m["kv_type"]
            plan = make_plan(
                info,
                m["tokens"],
                n_ctx=window,
                prompt_tokens=0,
                answer_tokens=0,
                kv_types=(kv,),
                calibrations=calibrations,
                available_bytes=None,
            )
            row = plan.rows[0]
            measured = m["end"]["VmHWM"] - m["base"]["VmRSS"]
            mem_err = (row.total_bytes - measured) / measured
            worst_mem = max(worst_mem, abs(mem_err))
            est_s = row.est_prefill_s or 0.0
            time_err = (est_s - m["seconds"]) / m["seconds"]
            reserve = next((line.split("=")[-1].strip() for line in m["llama_log"] if "compute buffer" in line), "?")
            print(
                f"{name:<8} {window:>6} {kv:<5} {row.total_bytes / MIB:>8.0f} {measured / MIB:>8.0f} {mem_err:>+6.1%}  "
                f"{est_s:>7.1f} {m['seconds']:>7.1f} {time_err:>+6.1%} {m['tokens'] / m['seconds']:>6.0f}  {reserve}"
            )
    print(f"\nworst memory error: {worst_mem:.1%} (target: within 15%)")
    return 0 if worst_mem <= 0.15 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--models", default="smollm2,gemma")
    parser.add_argument("--windows", default="1024,2048,4096")
    parser.add_argument("--kv", default=",".join(KvType))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="save the measurements here")
    parser.add_argument(
        "--replay", type=Path, nargs="+", help="print the table of saved runs (models of later files win)"
    )
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "measure":
            result = _child_measure(rest[0], int(rest[1]), rest[2], int(rest[3]))
        else:
            result = _child_calibrate(rest[0], rest[1], int(rest[2]))
        print(json.dumps(result))
        return 0
    if args.replay:
        run = json.loads(args.replay[0].read_text())
        for extra in args.replay[1:]:
            run["models"].update(json.loads(extra.read_text())["models"])
    else:
        run = _measure(args)
        if args.json:
            args.json.write_text(json.dumps(run, indent=1))
    return _report(run)


if __name__ == "__main__":
    sys.exit(main())
