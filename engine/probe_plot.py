"""The probe's picture: a heatmap of scores, length x depth, one panel per task and KV type.

The one importer of matplotlib (issue 14). It draws on matplotlib's Agg canvas through
the object API (``Figure`` and ``FigureCanvasAgg``), never ``pyplot``: no GUI toolkit is
chosen or loaded, no global state is touched, and it is safe off the main thread.

Contract: ``draw_heatmap(cells, path)`` writes a PNG with one row of panels per KV type
and one column per task; each panel has the tested lengths across and the depths down
(the aggregation task, whose evidence is spread over the whole context, has one row),
each cell coloured by its mean score (red 0% .. green 100%) and labelled with it. The
row titles give the effective context measured at that KV type and the threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.errors import EngineError
from engine.probe import SPREAD, TASK_LABELS, TASKS, THRESHOLD, effective_context
from engine.runtime.backend import KvType
from engine.store.db import ProbeCell

__all__ = ["draw_heatmap"]


def _length_label(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 else f"{n:,}"


def draw_heatmap(cells: Iterable[ProbeCell], path: Path, *, title: str = "", dpi: int = 100) -> Path:
    """Draw the stored cells as a heatmap PNG at ``path`` and return the path.

    Raises:
        ValueError: no cells (nothing to draw).
        EngineError: matplotlib is missing (an install or bundle without it).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise EngineError(
            f"Longread cannot draw the heatmap: matplotlib is missing ({exc.name or exc}). "
            "The measurements are stored; reinstall Longread (or pip install matplotlib) to see them."
        ) from exc

    cells = list(cells)
    if not cells:
        raise ValueError("no probe cells to draw")
    kvs = [kv for kv in KvType if any(c.kv_type == kv.value for c in cells)]
    tasks = [t for t in TASKS if any(c.task == t for c in cells)]
    lengths = sorted({c.length for c in cells})
    depths = sorted({c.depth for c in cells if c.depth != SPREAD})
    effective = effective_context(cells)

    fig = Figure(figsize=(max(2.6 * len(tasks) + 1.2, 6.4), 2.4 * len(kvs) + 1.1), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(kvs), len(tasks), squeeze=False)
    image = None
    for r, kv in enumerate(kvs):
        for c, task in enumerate(tasks):
            ax = axes[r][c]
            mine = [x for x in cells if x.kv_type == kv.value and x.task == task]
            rows = [SPREAD] if task == "cwe" else depths
            grid: list[list[float]] = []
            for depth in rows:
                line = []
                for length in lengths:
                    scores = [x.score for x in mine if x.length == length and x.depth == depth]
                    line.append(sum(scores) / len(scores) if scores else float("nan"))
                grid.append(line)
            image = ax.imshow(grid, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
            for i, line in enumerate(grid):
                for j, value in enumerate(line):
                    if value == value:  # not NaN: a cell measured
                        ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=8)
            ax.set_xticks(range(len(lengths)), [_length_label(n) for n in lengths], fontsize=8)
            ax.set_yticks(range(len(rows)), ["spread" if d == SPREAD else f"{d:.0%}" for d in rows], fontsize=8)
            if r == 0:
                ax.set_title(TASK_LABELS.get(task, task), fontsize=10)
            if r == len(kvs) - 1:
                ax.set_xlabel("length (tokens)", fontsize=8)
            if c == 0:
                m = effective.get(kv)
                eff = f"{m.tokens:,}" if m is not None and m.tokens else "none"
                ax.set_ylabel(f"KV {kv.value}\neffective: {eff}\ndepth", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="score")
    window = max(c.n_ctx for c in cells)
    fig.suptitle(
        f"{title + chr(10) if title else ''}what the model finds, by length and depth "
        f"(window {window:,}; effective: every task at least {THRESHOLD:.1%}; blank: not measured)",
        fontsize=10,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
