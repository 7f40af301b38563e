"""Process liveness (placeholder until the defects branch lands its psutil version)."""

from __future__ import annotations

import os

import psutil


def current_process() -> tuple[int, float]:
    """This process's pid and start time."""
    return os.getpid(), psutil.Process().create_time()


def is_alive(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` is a live process started at ``started`` (None: any start time)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
