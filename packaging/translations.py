"""The window's translations: refresh the .ts sources from the code, compile them to .qm.

::

    python packaging/translations.py update   # pyside6-lupdate: app/**/*.py -> resources/i18n/longread_<lang>.ts
    python packaging/translations.py build    # pyside6-lrelease: each .ts -> its .qm next to it

``update`` keeps every translation already made, marks strings that are new or changed
``unfinished`` and drops the ones no longer in the code; a translator then fills the new
ones (Qt Linguist, ``pyside6-linguist``, or by hand) and ``build`` compiles. The .ts files
are committed; the .qm files are build products (``make translations``, which ``make run``
and ``make test`` depend on, and ``packaging/build.py`` before PyInstaller, which bundles
``resources/``). ``app.i18n`` loads them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
I18N = ROOT / "resources" / "i18n"
LANGUAGES = ("ru",)  # one longread_<code>.ts per language


class ToolMissing(RuntimeError):
    """A Qt translation tool is not installed."""


def tool(name: str) -> str:
    """The path of ``pyside6-lupdate`` or ``pyside6-lrelease`` (the venv's first)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} not found: install PySide6 (pip install -e .)")
    return found


def ts_files() -> list[Path]:
    return [I18N / f"longread_{code}.ts" for code in LANGUAGES]


def sources() -> list[Path]:
    """The Python files whose ``tr()``/``translate()`` strings are translated: the app."""
    return sorted((ROOT / "app").rglob("*.py"))


def update(ts_paths: list[Path] | None = None) -> None:
    """Refresh every .ts (or those given) from the sources (translations kept, new
    strings unfinished, vanished ones dropped)."""
    I18N.mkdir(parents=True, exist_ok=True)
    files = [str(p.relative_to(ROOT)) for p in sources()]
    for ts in ts_paths or ts_files():
        code = ts.stem.split("_", 1)[1]
        cmd = [tool("pyside6-lupdate"), "-no-obsolete", "-locations", "none", "-target-language", code]
        subprocess.run([*cmd, *files, "-ts", str(ts.resolve())], cwd=ROOT, check=True)


def compile_ts(ts: Path, qm: Path) -> Path:
    """Compile one .ts to ``qm``; return ``qm``.

    Raises:
        ToolMissing: pyside6-lrelease is not installed.
        subprocess.CalledProcessError: the .ts is malformed.
    """
    qm.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([tool("pyside6-lrelease"), "-silent", str(ts), "-qm", str(qm)], check=True)
    return qm


def build(out: Path = I18N) -> list[Path]:
    """Compile every .ts to a .qm in ``out``; return the .qm paths."""
    return [compile_ts(ts, out / f"{ts.stem}.qm") for ts in ts_files()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["update", "build"])
    parser.add_argument("--out", type=Path, default=I18N, help="where build writes the .qm files")
    parser.add_argument("--ts", type=Path, nargs="*", help="update these .ts files (named longread_<lang>.ts)")
    args = parser.parse_args(argv)
    if args.action == "update":
        update(args.ts)
    else:
        for qm in build(args.out.resolve()):
            print(qm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
