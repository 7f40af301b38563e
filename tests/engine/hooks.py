"""Child-process entry points for tests (importable by a spawned process)."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection


def hang_forever(path: str, password: str | None, conn: Connection, memory_mb: int) -> None:
    """Stand-in for an extractor stuck on a crafted PDF: never answers."""
    while True:
        time.sleep(1)


def exhaust_memory(path: str, password: str | None, conn: Connection, memory_mb: int) -> None:
    """Stand-in for an extractor that blows up on a crafted PDF: allocates past its limit."""
    from engine.ingest.pdf import _limit_memory

    _limit_memory(memory_mb)
    hog = []
    while True:
        hog.append(bytearray(64 * 1024 * 1024))
