"""Longread's engine: ingest, layout, tokens, runtime, reading and storage.

The engine never imports Qt or ``app``; everything the GUI does, the engine can do
headless (the ``longread`` CLI and the tests drive it directly).
"""

__version__ = "0.1.0"
