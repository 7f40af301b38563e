"""Smoke test of the installer (issue 8): build the PyInstaller bundle and the .deb once,
install the .deb into a scratch root, and run what was installed.

- the frozen ``--selftest`` ingests the sample and a PDF (in a child process of the frozen
  executable), loads the bundled model, answers, writes to a temporary store, exits 0,
  and leaves nothing inside the bundle;
- the frozen GUI starts offscreen (and on a real X server under Xvfb when there is one),
  shows its window and quits cleanly;
- the bundle carries llama.cpp built without AVX-512, the Qt plugins it needs and not the
  ones it does not;
- the .deb has the control fields, the desktop entry (valid, opens documents) and icons.

The build takes 1-1.5 minutes on 2 cores; the whole module 2-4 (227 s with the machine at load 15). It is marked
``packaging``: ``pytest -m "not packaging"`` leaves it out.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
# Generous: the build shares 2 cores with the rest of the suite.
BUILD_TIMEOUT_S = 1200
RUN_TIMEOUT_S = 600


def _load_build_module() -> ModuleType:
    # packaging/ is not a Python package (it would shadow PyPI's `packaging`): load by path.
    spec = importlib.util.spec_from_file_location("longread_build", ROOT / "packaging" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Built:
    bundle: Path
    deb: Path | None
    installed: Path | None  # the .deb extracted into a scratch root
    log: str


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    out = tmp_path_factory.mktemp("package")
    has_dpkg = shutil.which("dpkg-deb") is not None and sys.platform.startswith("linux")
    cmd = [
        sys.executable,
        str(ROOT / "packaging" / "build.py"),
        "--dist",
        str(out / "dist"),
        "--work",
        str(out / "work"),
        "--deb-compress",
        "none",
    ]  # compression costs minutes, tests nothing
    if not has_dpkg:
        cmd.append("--no-deb")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    bundle = out / "dist" / "longread"
    debs = sorted((out / "dist").glob("longread_*.deb"))
    deb = debs[0] if debs else None
    installed = None
    if deb is not None:
        installed = out / "root"
        subprocess.run(["dpkg", "-x", str(deb), str(installed)], check=True, timeout=RUN_TIMEOUT_S)
    yield Built(bundle=bundle, deb=deb, installed=installed, log=log)
    shutil.rmtree(out / "work", ignore_errors=True)


def _executable(built: Built, tmp_path: Path) -> Path:
    """The installed app, started the way /usr/bin/longread starts it: through a link."""
    target = (built.installed / "opt" / "longread" / "longread") if built.installed else built.bundle / "longread"
    link = tmp_path / "bin" / "longread"
    link.parent.mkdir()
    link.symlink_to(target)
    return link


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LONGREAD_", "PYTHON"))}
    home = tmp_path / "user"
    home.mkdir(exist_ok=True)
    # A user without a config: QSettings and the default data folder go to this home.
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local" / "share"))
    return env


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


def test_frozen_selftest_reads_the_sample_and_a_pdf_and_answers(built: Built, tmp_path: Path) -> None:
    exe = _executable(built, tmp_path)
    app_dir = exe.resolve().parent
    before = _snapshot(app_dir)
    done = subprocess.run(
        [str(exe), "--selftest"],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert f"frozen bundle {app_dir}" in out
    assert "ingested harbor-lease-dispute.md" in out
    assert "ingested handbook.pdf: 2 pages" in out and "in a child process" in out
    assert "token estimate (tiktoken offline)" in out
    assert f"model: {app_dir / '_internal' / 'models'}" in out
    assert "The vault access code is 731904" in out or "731904" in out.split("answer:", 1)[1]
    assert "AVX512" not in out.split("llama.cpp CPU features:", 1)[1].splitlines()[0]
    assert "heatmap drawn (matplotlib Agg)" in out  # the trimmed matplotlib works (issue 14)
    assert "probe prose: " in out
    assert "selftest passed" in out
    assert "Traceback" not in out
    # User data never goes inside the bundle (nor does anything else).
    assert _snapshot(app_dir) == before


def test_frozen_gui_starts_offscreen_and_quits(built: Built, tmp_path: Path) -> None:
    exe = _executable(built, tmp_path)
    app_dir = exe.resolve().parent
    before = _snapshot(app_dir)
    env = _env(tmp_path) | {"QT_QPA_PLATFORM": "offscreen", "LONGREAD_HOME": str(tmp_path / "data")}
    done = subprocess.run(
        # A document on the command line, as the desktop entry passes one (Exec=longread %F).
        [str(exe), "--quit-after-start", str(ROOT / "resources" / "sample" / "harbor-lease-dispute.md")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "window shown at" in done.stdout
    assert "Traceback" not in done.stderr
    assert (tmp_path / "data").is_dir()
    assert _snapshot(app_dir) == before


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="Xvfb is not installed")
def test_frozen_gui_starts_on_x11(built: Built, tmp_path: Path) -> None:
    """The xcb plugin and the X libraries the bundle carries load on a real X server."""
    exe = _executable(built, tmp_path)
    env = _env(tmp_path) | {"QT_QPA_PLATFORM": "xcb", "LONGREAD_HOME": str(tmp_path / "data")}
    done = subprocess.run(
        ["xvfb-run", "-a", str(exe), "--quit-after-start"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "window shown at" in done.stdout


def test_bundle_carries_a_portable_llama_cpp_and_only_the_qt_it_needs(built: Built) -> None:
    build = _load_build_module()
    inside = built.bundle / "_internal"
    lib_dir = inside / "llama_cpp" / "lib"
    libs = sorted(p for p in lib_dir.iterdir() if not p.is_symlink())
    assert {p.name.split(".so")[0] for p in libs} >= {"libllama", "libggml", "libggml-base", "libggml-cpu"}
    if shutil.which("objdump"):
        assert build.find_avx512(libs) == []
    # ctypes opens the plain names; the loader wants the SONAMEs: both resolve.
    for name in ("libllama.so", "libggml.so", "libllama.so.0", "libggml-cpu.so.0"):
        assert (lib_dir / name).resolve().is_file(), name
    qt = inside / "PySide6" / "Qt"
    plugins = {p.relative_to(qt / "plugins").as_posix() for p in (qt / "plugins").rglob("*.so")}
    assert {
        "platforms/libqxcb.so",
        "platforms/libqoffscreen.so",
        "platforms/libqwayland.so",
        "imageformats/libqsvg.so",
        "imageformats/libqjpeg.so",
    } <= plugins
    kept_folders = {p.split("/")[0] for p in plugins}
    assert kept_folders <= set(build_spec_plugin_folders())
    assert not any("virtualkeyboard" in p or "gtk3" in p or "eglfs" in p for p in plugins)
    qt_libs = {p.name for p in inside.rglob("libQt6*")}
    assert "libQt6Pdf.so.6" in qt_libs and "libQt6Widgets.so.6" in qt_libs
    unwanted = ("WebEngine", "Qml", "Quick", "Multimedia", "3D", "VirtualKeyboard")
    assert not [n for n in qt_libs if any(u in n for u in unwanted)]
    # Of Qt's own translations, only qtbase's for the languages Longread ships (its
    # dialogs' buttons); the rest of Qt's catalogues stay out.
    languages = sorted(p.stem.split("_", 1)[1] for p in (ROOT / "resources" / "i18n").glob("longread_*.ts"))
    qt_catalogues = sorted(p.name for p in (qt / "translations").rglob("*") if p.is_file())
    assert qt_catalogues == [f"qtbase_{code}.qm" for code in languages]
    dangling = [str(p.relative_to(built.bundle)) for p in built.bundle.rglob("*") if p.is_symlink() and not p.exists()]
    assert not dangling
    # Things the venv has but Longread does not use at run time.
    for absent in ("openai", "pydantic", "mypy", "fontTools", "llm", "pytest"):
        assert not (inside / absent).exists(), absent


def build_spec_plugin_folders() -> list[str]:
    """The plugin folders the spec keeps (read from the spec, without running it)."""
    text = (ROOT / "packaging" / "longread.spec").read_text(encoding="utf-8")
    block = text.split("QT_PLUGINS = {", 1)[1].split("\n}", 1)[0]
    return [line.split('"')[1] for line in block.splitlines() if line.strip().startswith('"')]


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_deb_installs_the_app_a_menu_entry_and_icons(built: Built) -> None:
    assert built.deb is not None and built.installed is not None
    info = subprocess.run(["dpkg-deb", "--info", str(built.deb)], capture_output=True, text=True, check=True).stdout
    assert "Package: longread" in info
    assert "Depends: libc6 (>= " in info and "libxcb1" in info
    contents = subprocess.run(
        ["dpkg-deb", "--contents", str(built.deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "./usr/bin/longread -> /opt/longread/longread" in contents
    assert "root/root" in contents.splitlines()[0]
    root = built.installed
    desktop = root / "usr" / "share" / "applications" / "longread.desktop"
    entry = desktop.read_text(encoding="utf-8")
    assert "Exec=longread %F" in entry and "Icon=longread" in entry
    mime = next(line for line in entry.splitlines() if line.startswith("MimeType="))
    assert {"application/pdf", "text/plain", "text/markdown"} <= set(mime.removeprefix("MimeType=").split(";"))
    hicolor = root / "usr" / "share" / "icons" / "hicolor"
    assert (hicolor / "256x256" / "apps" / "longread.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (hicolor / "scalable" / "apps" / "longread.svg").is_file()
    assert (root / "opt" / "longread" / "_internal" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
