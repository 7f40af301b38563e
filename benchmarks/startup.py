"""Start time to a usable window: the frozen app against ``python -m app.main``, same run.

Run: ``.venv/bin/python benchmarks/startup.py [--bundle dist/longread] [--runs 7]``
(build the bundle first with ``make package``).

Each run starts a fresh process with ``--quit-after-start`` under
``QT_QPA_PLATFORM=offscreen``, as a user without settings (a temporary HOME and data
folder). The app prints the wall-clock time at the first event-loop tick after the main
window is shown; the benchmark subtracts the time just before it started the process.
Runs alternate between the two programs so that load on the machine hits both alike,
after one untimed warm-up each (a cold disk cache is a property of the machine, not of
the build). Prints the medians and their ratio (frozen / source), and the sizes of the
bundle and of the .deb next to it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "window shown at "


def time_to_window(cmd: list[str], *, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Start ``cmd``; return (seconds until its window was shown, seconds until it exited).

    Raises:
        RuntimeError: the program failed or never showed its window.
    """
    start = time.time()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    ended = time.time()
    shown = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not shown:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(shown[0].removeprefix(MARKER)) - start, ended - start


def du(path: Path) -> int:
    """Bytes in regular files under ``path`` (symbolic links not followed)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "longread", help="the one-folder build")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    exe = args.bundle / ("longread.exe" if sys.platform == "win32" else "longread")
    if not exe.is_file():
        print(f"No bundle at {args.bundle}: run `make package` first.", file=sys.stderr)
        return 1
    programs = {
        "frozen bundle": [str(exe), "--quit-after-start"],
        "python -m app.main": [sys.executable, "-m", "app.main", "--quit-after-start"],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in programs}
    with tempfile.TemporaryDirectory(prefix="longread-startup-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LONGREAD_")}
        env.update(
            QT_QPA_PLATFORM="offscreen",
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            LONGREAD_HOME=str(home / "data"),
        )
        for cmd in programs.values():  # warm-up: disk cache, first-run store creation
            time_to_window(cmd, env=env, cwd=ROOT)
        for _ in range(args.runs):
            for name, cmd in programs.items():
                times[name].append(time_to_window(cmd, env=env, cwd=ROOT))

    print(f"Start to a usable window, offscreen, {args.runs} runs each, interleaved (seconds)")
    print(f"{'program':<20} {'median':>8} {'min':>8} {'max':>8} {'to exit':>8}")
    medians = {}
    for name, runs in times.items():
        shown = [s for s, _ in runs]
        medians[name] = statistics.median(shown)
        exit_median = statistics.median(e for _, e in runs)
        print(f"{name:<20} {medians[name]:>8.2f} {min(shown):>8.2f} {max(shown):>8.2f} {exit_median:>8.2f}")
    ratio = medians["frozen bundle"] / medians["python -m app.main"]
    print(f"ratio frozen / source: {ratio:.2f}")
    print(f"bundle size: {du(args.bundle) / 1e6:.0f} MB ({args.bundle})")
    for deb in sorted(args.bundle.parent.glob("longread_*.deb")):
        print(f"package size: {du(deb) / 1e6:.0f} MB ({deb.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
