"""The Qt binding must not eat Python's ``True``: PySide6 6.12.0's ``Signal.emit()`` returns
``True`` without a reference, so every emit from Python (each streamed piece of an
answer, each progress report) takes one reference from it, and a few thousand emits later
the interpreter aborts with "bool_dealloc: deallocating True or False", mid-session or at
exit (found 2026-12-04: a window that answered three questions crashed on quit). The
emits run in a child process: with a broken binding they abort it, not the test run."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json, os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Emitter(QObject):
    number = Signal(int)
    flag = Signal(bool)
    thing = Signal(object)

app = QCoreApplication([])
emitter = Emitter()
seen = []
emitter.number.connect(seen.append)
emitter.flag.connect(seen.append)
emitter.thing.connect(seen.append)
before = sys.getrefcount(True), sys.getrefcount(False)
for i in range(300):
    emitter.number.emit(i)
    emitter.flag.emit(i % 2 == 0)
    emitter.thing.emit(("text", i % 2 == 0))
seen.clear()
after = sys.getrefcount(True), sys.getrefcount(False)
print(json.dumps([before, after]))
"""


def test_emitting_signals_leaves_pythons_true_and_false_as_they_were() -> None:
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    before, after = json.loads(child.stdout)
    assert before == after  # each emit gave back what it took
