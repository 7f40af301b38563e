"""The frozen app's entry point: PyInstaller runs this file as ``__main__``.

``app.main.main`` calls ``multiprocessing.freeze_support()`` before anything else, so the
PDF extraction children (spawned) start inside the frozen executable.
"""

import sys

from app.main import main

if __name__ == "__main__":
    sys.exit(main())
