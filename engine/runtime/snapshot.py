"""Moved: the snapshot cache is ``engine.warm``, above the runtime interface (issue 12).

Only ``engine/reading/ask.py`` and ``engine/cli.py`` still import this name; the merge
that updates them to ``engine.warm`` deletes this module (tests/test_architecture.py
lists it as pending).
"""

from engine.warm import MIN_SNAPSHOT_TOKENS as MIN_SNAPSHOT_TOKENS
from engine.warm import SnapshotCache as SnapshotCache
from engine.warm import SnapshotInvalid as SnapshotInvalid
from engine.warm import WarmStart as WarmStart
from engine.warm import make_key as make_key
