"""Numbers as people read them: durations and sizes, one wording for the CLI and the GUI."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """Return ``seconds`` as ``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_bytes(n: float) -> str:
    """``98 MB``, ``1.4 GB``: decimal units, as file managers show sizes."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{int(n)} B"
