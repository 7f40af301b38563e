"""Numbers as people read them: one wording for the CLI, the planner and the GUI.

Every size Longread shows goes through ``format_bytes``, every duration through
``format_duration`` and every large count through ``format_count``, so ``longread plan``
and the budget gauge print the same string for the same bytes.

Sizes are decimal (1 GB = 10^9 bytes, 1 MB = 10^6), decided once for every surface:
they are what file managers and download pages show, so a model file the user sees as
"4.9 GB" in a folder is 4.9 GB here too, and memory figures share the same units. (The
planner's table used binary MiB and GiB before issue 12; llama.cpp's own log still does.)
"""

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
    """``98 MB``, ``1.4 GB``, ``512 B``: decimal units (see the module doc)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{max(0, int(n))} B"


def format_count(n: float) -> str:
    """A large count in words' shorthand: ``135M``, ``1.2B``, ``8.5K``, ``950``."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f}{unit}" if value < 10 else f"{value:,.0f}{unit}"
    return f"{int(n)}"
