"""The SQLite store: one file in the data folder, WAL, numbered migrations.

``open_store`` returns a ``Store`` bound to one connection. Each thread opens its own
(``open_store`` is cheap); a ``Store`` is never shared between threads.
"""

from engine.store.db import Store, open_store

__all__ = ["Store", "open_store"]
