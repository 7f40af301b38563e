"""What this machine offers now: the memory a new load can have.

Kept apart from the planner's pure model (engine/planning.py), which takes the figure as
an argument, so that the model lane can check each load without importing the planner's
orchestration (engine/planner.py), which itself uses the lane.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any


def read_available_memory() -> int | None:
    """Memory the OS can give a new load now, in bytes, or None when unknown.

    Linux: ``MemAvailable`` from /proc/meminfo (free memory plus reclaimable cache).
    macOS: free plus inactive pages (``vm_stat``'s figures through sysctl are not in the
    stdlib, so ``os.sysconf`` free pages are the floor). Windows:
    ``GlobalMemoryStatusEx``'s ``ullAvailPhys``.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "win32":
        return _read_windows_available()
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return int(pages) * int(size) if pages > 0 and size > 0 else None


def _read_windows_available() -> int | None:
    class _MemoryStatus(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            ("ullTotalPhys", ctypes.c_ulonglong),
            ("ullAvailPhys", ctypes.c_ulonglong),
            ("ullTotalPageFile", ctypes.c_ulonglong),
            ("ullAvailPageFile", ctypes.c_ulonglong),
            ("ullTotalVirtual", ctypes.c_ulonglong),
            ("ullAvailVirtual", ctypes.c_ulonglong),
            ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
        ]

    status = _MemoryStatus()
    status.dwLength = ctypes.sizeof(_MemoryStatus)
    try:
        windll: Any = getattr(ctypes, "windll")  # noqa: B009 - absent off Windows
        ok = windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))
    except (AttributeError, OSError):
        return None
    return int(status.ullAvailPhys) if ok else None
