"""Build Longread as an app: the PyInstaller one-folder bundle and, on Linux, a ``.deb``.

``make package`` runs ``python packaging/build.py``::

    python packaging/build.py [--dist dist] [--work build/pyinstaller] [--no-deb] [--deb-compress xz]

Steps, each refusing to go on when something is wrong:

1. refuse a llama.cpp built for the build machine's CPU (``GGML_NATIVE``): its shared
   libraries must not use AVX-512 (``zmm`` registers), or the app dies with "illegal
   instruction" on most of its users' CPUs (docs/architecture.md, "Measured facts"). ``objdump`` checks the libraries;
   without it, llama.cpp's own feature line is checked;
2. compile the window's translations (``packaging/translations.py build``) and render the icon (``resources/icons/longread.svg``) to PNG with Qt's SVG renderer;
3. run PyInstaller on ``packaging/longread.spec`` into ``<dist>/longread``;
4. check the bundle holds what it must (model, llama.cpp libraries, tiktoken's data, the
   Qt platform plugins, the resources) and shrink llama.cpp's duplicate library copies to
   symbolic links;
5. on Linux, stage and build ``<dist>/longread_<version>_<arch>.deb`` with ``dpkg-deb``:
   the bundle in ``/opt/longread``, ``/usr/bin/longread``, a desktop entry that opens PDF,
   text and Markdown files, and the icon in the hicolor theme.

It prints the bundle's and the package's sizes. The smoke test of the result is
``tests/packaging/test_bundle.py``; packaging/README.md has the Windows and macOS notes.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "longread.spec"
APP = "longread"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ICON_SVG = ROOT / "resources" / "icons" / "longread.svg"
ICON_SIZES = (48, 128, 256)
MIME_TYPES = (
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/html",
    "application/epub+zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/rtf",
)

# What the bundle takes from the system instead of carrying it (measured with ldd over
# every library in the bundle): glibc, the OpenGL/EGL dispatch libraries (they must be
# the system's, for its GPU driver) and libxcb for the X11 plugin. Wayland's client
# libraries are only needed by the Wayland plugin, Tesseract only for scanned PDFs.
DEB_DEPENDS = ("libgl1", "libegl1", "libxcb1")
DEB_RECOMMENDS = ("libwayland-client0", "libwayland-cursor0", "libwayland-egl1", "tesseract-ocr")

DESKTOP_ENTRY = """\
[Desktop Entry]
Type=Application
Name=Longread
GenericName=Document Reader
Comment=Read whole documents with a local language model, with page citations
Exec=longread %F
Icon=longread
Terminal=false
Categories=Office;Viewer;
MimeType={mime_types};
Keywords=PDF;document;AI;LLM;citations;
StartupNotify=true
StartupWMClass=longread
"""


class BuildError(Exception):
    """The build cannot go on; the message says why."""


def log(message: str) -> None:
    print(f"[package] {message}", flush=True)


def version() -> str:
    """The version in pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


# -- 1. a portable llama.cpp -------------------------------------------------------


def find_avx512(libraries: list[Path]) -> list[str]:
    """Return the libraries among ``libraries`` whose code uses AVX-512 registers.

    Raises:
        BuildError: objdump is missing or fails.
    """
    objdump = shutil.which("objdump")
    if objdump is None:
        raise BuildError("objdump is not installed")
    found = []
    for lib in libraries:
        out = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True)
        if out.returncode != 0:
            raise BuildError(f"objdump failed on {lib}: {out.stderr.strip()}")
        if "%zmm" in out.stdout or "%k1" in out.stdout:
            found.append(lib.name)
    return found


def check_portable(lib_dir: Path) -> None:
    """Refuse a llama.cpp built for this machine's instruction set (GGML_NATIVE=ON).

    Raises:
        BuildError: the libraries use AVX-512, or cannot be found.
    """
    libraries = sorted(p for p in lib_dir.glob("*ggml*") if p.is_file() and not p.is_symlink())
    if not libraries:
        raise BuildError(f"no llama.cpp libraries in {lib_dir}")
    if sys.platform.startswith("linux") and shutil.which("objdump"):
        native = find_avx512(libraries)
        how = f"objdump found AVX-512 code in {', '.join(native)}"
    else:
        # macOS and Windows: llama.cpp's own feature line lists what the build uses.
        from engine.lane import default_backend

        features = default_backend().describe_system()
        native = ["AVX512"] if "AVX512" in features.upper() else []
        how = f"llama.cpp reports {features}"
    if native:
        raise BuildError(
            f"llama.cpp was built for this machine's CPU ({how}): the app would die with "
            "'illegal instruction' on most others. Rebuild it portable:\n"
            '  CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv/bin/pip install --force-reinstall --no-cache-dir '
            "--no-deps llama-cpp-python"
        )
    log(f"llama.cpp is portable: no AVX-512 code in {len(libraries)} libraries")


def llama_lib_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise BuildError("llama-cpp-python is not installed")
    return Path(spec.origin).parent / "lib"


# -- 2. the icon -------------------------------------------------------------------


def render_icon(svg: Path, png: Path, size: int) -> Path:
    """Render ``svg`` to a ``size`` x ``size`` PNG with Qt's SVG renderer."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise BuildError(f"{svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    png.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(png)):
        raise BuildError(f"cannot write {png}")
    return png


# -- 3 and 4. the bundle -----------------------------------------------------------


def run_pyinstaller(dist: Path, work: Path, *, icon: Path | None) -> Path:
    """Build the one-folder bundle; return its folder."""
    env = dict(os.environ)
    if icon is not None:
        env["LONGREAD_ICON"] = str(icon)
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        str(SPEC),
    ]
    log(" ".join(cmd))
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise BuildError(f"PyInstaller failed (exit {done.returncode})")
    log(f"PyInstaller took {time.perf_counter() - start:.0f} s")
    return dist / APP


def build_translations() -> list[Path]:
    """Compile resources/i18n/*.ts to .qm next to them (PyInstaller bundles resources/)."""
    sys.path.insert(0, str(ROOT / "packaging"))
    from translations import build

    try:
        return build()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:  # RuntimeError: no lrelease
        raise BuildError(f"the translations did not compile: {exc}") from exc


def internal_dir(bundle: Path) -> Path:
    return bundle / "_internal"


def check_bundle(bundle: Path) -> None:
    """Check that the bundle carries what PyInstaller does not find by itself.

    Raises:
        BuildError: a file is missing.
    """
    inside = internal_dir(bundle)
    ext = {"linux": ".so", "darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
    expected = [
        f"models/{MODEL_FILE}",
        "resources/sample/harbor-lease-dispute.md",
        "resources/icons/longread.svg",
        *(f"resources/i18n/{ts.stem}.qm" for ts in (ROOT / "resources" / "i18n").glob("*.ts")),
        "tiktoken_ext/data/cl100k_base.tiktoken",
    ]
    missing = [p for p in expected if not (inside / p).is_file()]
    if not list((inside / "llama_cpp" / "lib").glob(f"*llama*{ext}*")):
        missing.append(f"llama_cpp/lib/*llama*{ext}")
    if sys.platform.startswith("linux"):
        plugins = inside / "PySide6" / "Qt" / "plugins" / "platforms"
        missing += [
            f"platforms/{p}"
            for p in ("libqxcb.so", "libqoffscreen.so", "libqwayland.so")
            if not (plugins / p).is_file()
        ]
    if missing:
        raise BuildError(f"the bundle lacks {', '.join(missing)}")


def link_duplicate_libraries(bundle: Path) -> int:
    """Replace llama.cpp's byte-identical library copies (libllama.so, .so.0) by links.

    The wheel holds each library three times (no symlinks in wheels); the loader needs the
    plain name (ctypes) and the SONAME. Returns the bytes saved.
    """
    if sys.platform == "win32":
        return 0
    lib_dir = internal_dir(bundle) / "llama_cpp" / "lib"
    saved = 0
    for plain in sorted(lib_dir.glob("*.so")):
        for versioned in sorted(lib_dir.glob(plain.name + ".*")):
            if versioned.is_symlink() or plain.is_symlink() or not filecmp.cmp(plain, versioned, shallow=False):
                continue
            saved += plain.stat().st_size
            plain.unlink()
            plain.symlink_to(versioned.name)
            break
    return saved


def tree_size(path: Path) -> int:
    """Bytes in regular files under ``path`` (links not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# -- 5. the .deb -------------------------------------------------------------------


def deb_architecture() -> str:
    out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
    return out.stdout.strip() or {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def build_deb(bundle: Path, out_dir: Path, *, icons: dict[int, Path], compress: str = "xz") -> Path:
    """Stage the bundle as an installed tree and build a .deb from it; return its path.

    Raises:
        BuildError: dpkg-deb is missing or fails.
    """
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise BuildError("dpkg-deb is not installed (apt-get install dpkg)")
    ver, arch = version(), deb_architecture()
    stage = out_dir / f"{APP}_{ver}_{arch}.stage"
    if stage.exists():
        shutil.rmtree(stage)
    opt = stage / "opt" / APP
    shutil.copytree(bundle, opt, symlinks=True)
    (stage / "usr" / "bin").mkdir(parents=True)
    # A link: PyInstaller's bootloader finds its _internal folder from the real path.
    (stage / "usr" / "bin" / APP).symlink_to(f"/opt/{APP}/{APP}")
    apps = stage / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    (apps / f"{APP}.desktop").write_text(DESKTOP_ENTRY.format(mime_types=";".join(MIME_TYPES)), encoding="utf-8")
    hicolor = stage / "usr" / "share" / "icons" / "hicolor"
    for size, png in icons.items():
        target = hicolor / f"{size}x{size}" / "apps" / f"{APP}.png"
        target.parent.mkdir(parents=True)
        shutil.copy2(png, target)
    (hicolor / "scalable" / "apps").mkdir(parents=True)
    shutil.copy2(ICON_SVG, hicolor / "scalable" / "apps" / f"{APP}.svg")
    doc = stage / "usr" / "share" / "doc" / APP
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Longread: Apache-2.0. The bundled model SmolLM2-135M-Instruct: Apache-2.0 (Hugging Face).\n"
        "Qt 6 and PySide6: LGPL-3.0. llama.cpp: MIT.\n",
        encoding="utf-8",
    )
    for path in stage.rglob("*"):  # dpkg-deb refuses group/world-writable control files
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    libc = platform.libc_ver()[1]
    depends = [f"libc6 (>= {libc})" if libc else "libc6", *DEB_DEPENDS]
    control = stage / "DEBIAN" / "control"
    control.parent.mkdir()
    control.write_text(
        f"Package: {APP}\n"
        f"Version: {ver}\n"
        f"Architecture: {arch}\n"
        "Maintainer: Longread maintainers <longread@example.org>\n"
        f"Installed-Size: {tree_size(stage) // 1024}\n"
        f"Depends: {', '.join(depends)}\n"
        f"Recommends: {', '.join(DEB_RECOMMENDS)}\n"
        "Section: text\n"
        "Priority: optional\n"
        "Homepage: https://example.org/longread\n"
        "Description: read whole documents with a local language model\n"
        " Longread loads a whole corpus (PDF, Word, EPUB, HTML, text) into a local GGUF\n"
        " model and answers with page citations that are checked against the pages.\n"
        " Nothing leaves the machine. Ships SmolLM2-135M-Instruct as its default model.\n",
        encoding="utf-8",
    )
    control.chmod(0o644)
    deb = out_dir / f"{APP}_{ver}_{arch}.deb"
    cmd = [dpkg_deb, "--root-owner-group", f"-Z{compress}", "--build", str(stage), str(deb)]
    log(" ".join(cmd))
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"dpkg-deb failed: {done.stderr.strip()}")
    log(f"dpkg-deb took {time.perf_counter() - start:.0f} s")
    shutil.rmtree(stage)
    return deb


# -- the command -------------------------------------------------------------------


def build(dist: Path, work: Path, *, deb: bool = True, deb_compress: str = "xz") -> dict[str, Path]:
    """Run every step; return the paths built (``bundle``, and ``deb`` on Linux)."""
    sys.path.insert(0, str(ROOT))
    check_portable(llama_lib_dir())
    log(f"translations: {', '.join(qm.name for qm in build_translations())}")
    icons = {size: render_icon(ICON_SVG, work / "icons" / f"longread-{size}.png", size) for size in ICON_SIZES}
    bundle = run_pyinstaller(dist, work, icon=icons[256] if sys.platform in ("win32", "darwin") else None)
    check_bundle(bundle)
    saved = link_duplicate_libraries(bundle)
    check_portable(internal_dir(bundle) / "llama_cpp" / "lib")
    log(f"bundle: {bundle} ({tree_size(bundle) / 1e6:.0f} MB; {saved / 1e6:.1f} MB of duplicate libraries linked)")
    built = {"bundle": bundle}
    if deb and sys.platform.startswith("linux"):
        built["deb"] = build_deb(bundle, dist, icons=icons, compress=deb_compress)
        log(f"package: {built['deb']} ({built['deb'].stat().st_size / 1e6:.0f} MB)")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle and .deb go")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller's work folder")
    parser.add_argument("--no-deb", action="store_true", help="build the bundle only")
    parser.add_argument(
        "--deb-compress",
        default="xz",
        choices=["xz", "gzip", "zstd", "none"],
        help="the .deb's compression (xz: smallest; gzip: fastest to build)",
    )
    args = parser.parse_args(argv)
    try:
        build(args.dist.resolve(), args.work.resolve(), deb=not args.no_deb, deb_compress=args.deb_compress)
    except BuildError as exc:
        print(f"[package] cannot package Longread: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
