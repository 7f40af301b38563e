"""Real llama.cpp servers on 127.0.0.1 for tests and benchmarks (issue 16).

The binaries come from ``scripts/build_llama_server.py`` (built once per machine,
outside the checkout); ``binaries()`` is None when they are not built, and the tests that
need them skip saying so. Each server gets a free port, logs to a file (its tail is in
any start failure) and is stopped by the caller (``stop``; ``kill`` for the crash tests).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 180.0  # a loaded shared machine: loading a 135M model is seconds when quiet


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_llama_server", ROOT / "scripts" / "build_llama_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Binaries:
    server: Path
    rpc_server: Path


def binaries() -> Binaries | None:
    """The built llama-server and ggml-rpc-server, or None if not built."""
    build = _build_script()
    if not build.is_built():
        return None
    folder = build.bin_dir()
    return Binaries(folder / "llama-server", folder / "ggml-rpc-server")


NOT_BUILT = "llama-server is not built: run `python scripts/build_llama_server.py` (make llama-server)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = f"{folder}:{env.get('LD_LIBRARY_PATH', '')}"
    return env


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the server dies as a crash would."""
        self.process.kill()
        self.process.wait()

    def log_tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        return ""

    def get(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            out = json.loads(response.read())
        return out if isinstance(out, dict) else {"data": out}


def start_llama_server(
    bins: Binaries,
    model: Path,
    *,
    log_dir: Path,
    ctx: int = 4096,
    parallel: int = 1,
    threads: int = 2,
    slot_save_path: Path | None = None,
    api_key: str | None = None,
    rpc: list[str] | None = None,
    extra: tuple[str, ...] = (),
    port: int | None = None,
) -> ServerProcess:
    """Start llama-server on a free loopback port (or ``port``: a restart at the same
    address); return once /health says ok.

    ``ctx`` is the whole cache: each of the ``parallel`` slots gets ``ctx / parallel``.
    """
    port = port or free_port()
    log = log_dir / f"llama-server-{port}.log"
    cmd = [str(bins.server), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["-c", str(ctx), "--parallel", str(parallel), "-t", str(threads), "-tb", str(threads), "--no-webui"]
    if slot_save_path is not None:
        cmd += ["--slot-save-path", str(slot_save_path)]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    if rpc:
        cmd += ["--rpc", ",".join(rpc), "-ngl", "99"]
    cmd += extra
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(bins.server.parent))
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=5) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"llama-server did not become ready in {START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")


def start_rpc_server(bins: Binaries, *, log_dir: Path, threads: int = 1) -> tuple[str, ServerProcess]:
    """Start ggml-rpc-server on a free loopback port (never on an open network: it has no
    authentication, llama.cpp #11807). Returns its host:port and the process."""
    port = free_port()
    log = log_dir / f"rpc-server-{port}.log"
    cmd = [str(bins.rpc_server), "-H", "127.0.0.1", "-p", str(port), "-t", str(threads)]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(bins.rpc_server.parent))
    server = ServerProcess(f"127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rpc-server exited with {process.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            return server.url, server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"rpc-server did not listen in {START_TIMEOUT_S:.0f} s:\n{server.log_tail()}")
