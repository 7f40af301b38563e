"""Find files shipped with Longread, in a checkout or in the frozen (PyInstaller) app.

``resource_path("sample/harbor-lease-dispute.md")`` returns the file under
``resources/``: next to the ``app`` package in a checkout or an installed tree, or under
``sys._MEIPASS/resources`` in a frozen build.
"""

from __future__ import annotations

import sys
from pathlib import Path


def resources_root() -> Path:
    """The folder that holds Longread's resources."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(relative: str) -> Path:
    """The path of one resource file (it may not exist; callers check)."""
    return resources_root() / relative


def sample_document() -> Path:
    """The bundled sample: a fictional arbitration award (CC0)."""
    return resource_path("sample/harbor-lease-dispute.md")
