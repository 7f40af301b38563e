"""Whether a process that wrote a row is still running, on every OS.

Contract:
- ``current_process()`` names this process as ``(pid, start time)``; store both with
  anything that says "this process is working on it" (a running turn, a wave, a step).
- ``is_alive(pid, started)`` is True only while that very process runs. A pid alone is
  not enough: the OS hands a dead process's pid to a new one (often within minutes on a
  busy Linux box), so when ``started`` is given the process with that pid must also
  have started then (within ``START_TOLERANCE_S``). Rows written before start times
  were stored pass ``started=None`` and get the pid-only answer.
- A zombie (exited, not yet reaped by its parent) is not alive: it will never write again.

Why psutil and not ``os.kill(pid, 0)``: on Windows ``os.kill`` with signal 0 does not
test a process, it calls ``GenerateConsoleCtrlEvent(CTRL_C_EVENT, ...)`` and sends Ctrl+C
to a console process group (Python docs, ``os.kill``); and on POSIX it cannot tell a
reused pid from the original process. psutil reads the start time the OS keeps for
each process (``create_time()``) on Linux, macOS and Windows alike.
"""

from __future__ import annotations

import psutil

# create_time() is derived from the boot time and clock ticks on Linux and rounded
# differently on each OS; the same process reads the same value to well under a second.
START_TOLERANCE_S = 1.0


def current_process() -> tuple[int, float]:
    """Return this process's pid and its start time (seconds since the epoch)."""
    me = psutil.Process()
    began: float = me.create_time()
    return me.pid, began


def is_alive(pid: int | None, started: float | None) -> bool:
    """Say whether the process ``pid`` that started at ``started`` is still running.

    Args:
        pid: the process id stored with the row (None or 0: no process).
        started: its start time from ``current_process()``; None for rows written
            before start times were stored (then only the pid is checked).

    Returns:
        False when there is no such process, it has exited (a zombie counts as
        exited), or the pid now belongs to a process started at another time.
    """
    if not pid or pid < 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is None:
            return True
        began: float = process.create_time()
        return abs(began - started) <= START_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        # Another user's process (Windows hides some details of those): it exists, and
        # the row cannot be proven stale, so leave it to its owner.
        return True
