"""Process liveness with real processes: a running child, a reaped one, a reused pid."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil

from engine.procs import current_process, is_alive


def test_a_running_child_is_alive_and_a_reaped_one_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        started = psutil.Process(child.pid).create_time()
        assert is_alive(child.pid, started)
        assert is_alive(child.pid, None)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)
    assert not is_alive(child.pid, started)
    assert not is_alive(child.pid, None)


def test_this_process_is_alive_under_its_own_start_time() -> None:
    pid, started = current_process()
    assert pid == os.getpid()
    assert is_alive(pid, started)
    assert is_alive(pid, None)


def test_a_pid_reused_by_a_later_process_is_not_alive() -> None:
    # The row's writer started 1000 s before the process that holds its pid now.
    pid, started = current_process()
    assert not is_alive(pid, started - 1000)
    assert not is_alive(pid, started + 1000)


def test_no_pid_is_not_alive() -> None:
    assert not is_alive(None, None)
    assert not is_alive(0, None)
    assert not is_alive(None, 1.0)
