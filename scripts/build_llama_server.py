"""Build llama.cpp's `llama-server` and RPC server once per machine (issue 16).

The source is the llama-cpp-python source package of the installed version, so the server
runs the same llama.cpp tree as the in-process runtime. The build lives outside the checkout,
keyed by that version: ~/.cache/longread/llama-server/<version>/ (or $LONGREAD_LLAMA_SERVER_DIR).
A finished build leaves a `built` stamp; a second run only prints where the binaries are.

    python scripts/build_llama_server.py           # build if missing, print the bin directory
    python scripts/build_llama_server.py --check   # exit 1 when not built (builds nothing)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tarfile
from pathlib import Path

CMAKE_FLAGS = [
    "-DGGML_RPC=ON",
    "-DBUILD_SHARED_LIBS=ON",
    "-DLLAMA_CURL=OFF",
    "-DGGML_NATIVE=OFF",  # portable, like the in-process wheel (see Makefile)
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DCMAKE_BUILD_TYPE=Release",
]
TARGETS = ["llama-server", "ggml-rpc-server"]


def version() -> str:
    return importlib.metadata.version("llama_cpp_python")


def cache_dir(ver: str | None = None) -> Path:
    root = os.environ.get("LONGREAD_LLAMA_SERVER_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "longread" / "llama-server"
    return base / (ver or version())


def bin_dir(ver: str | None = None) -> Path:
    return cache_dir(ver) / "build" / "bin"


def is_built(ver: str | None = None) -> bool:
    return (cache_dir(ver) / "built").exists()


def _source(ver: str, home: Path) -> Path:
    src = home / f"llama_cpp_python-{ver}" / "vendor" / "llama.cpp"
    if src.is_dir():
        return src
    sdist = home / f"llama_cpp_python-{ver}.tar.gz"
    if not sdist.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"llama-cpp-python=={ver}",
             "--no-binary", ":all:", "--no-deps", "-d", str(home)],
            check=True,
        )  # fmt: skip
    with tarfile.open(sdist) as tar:
        tar.extractall(home, filter="data")
    sdist.unlink()
    return src


def build(ver: str, jobs: int) -> Path:
    home = cache_dir(ver)
    home.mkdir(parents=True, exist_ok=True)
    src = _source(ver, home)
    build_dir = home / "build"
    subprocess.run(["cmake", "-S", str(src), "-B", str(build_dir), "-G", "Ninja", *CMAKE_FLAGS], check=True)
    subprocess.run(["cmake", "--build", str(build_dir), "-j", str(jobs), "--target", *TARGETS], check=True)
    for name in TARGETS:
        if not (build_dir / "bin" / name).exists():
            raise SystemExit(f"the build finished without {name} in {build_dir / 'bin'}")
    (home / "built").write_text(" ".join(CMAKE_FLAGS) + "\n")
    return build_dir / "bin"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is built")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    ver = version()
    if is_built(ver):
        print(bin_dir(ver))
        return 0
    if args.check:
        print(f"llama-server {ver} is not built (run scripts/build_llama_server.py)", file=sys.stderr)
        return 1
    print(build(ver, args.jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
