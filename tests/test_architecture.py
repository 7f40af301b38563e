"""The engine never imports Qt or the GUI (DESIGN.md, STYLE.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_engine_imports_no_qt() -> None:
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'shiboken6', 'app'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_single_owner_of_native_dependencies() -> None:
    owners = {
        "llama_cpp": {"engine/runtime"},
        "pypdf": {"engine/ingest/pdf.py"},
        "pypdfium2": {"engine/ingest/pdfium.py"},
        "pytesseract": {"engine/ingest/ocr.py"},
    }
    for module, allowed in owners.items():
        for path in (ROOT / "engine").rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            # A whole name: pypdfium2 is not pypdf.
            imports = re.search(rf"^\s*(?:import|from)\s+{module}(?:[.\s]|$)", text, re.MULTILINE) is not None
            if imports:
                assert any(rel.startswith(a) for a in allowed), f"{rel} imports {module}"
