"""``longread models search|get|list|remove`` against the local Hub (tests/hub_server.py),
in a child process that finds the Hub through ``HF_ENDPOINT`` as a user's shell would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub_server import FakeHub

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
NAME = "smollm2-135m-instruct-q4_1.gguf"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(gguf_file: Path) -> Iterator[FakeHub]:
    server = FakeHub(repos={REPO: {NAME: gguf_file}}).start()
    yield server
    server.stop()


def longread(home: Path, endpoint: str, *args: str, offline: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LONGREAD_HOME": str(home), "HF_ENDPOINT": endpoint}
    env.pop("HF_HUB_OFFLINE", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "models", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_get_list_remove(hub: FakeHub, home: Path, gguf_file: Path) -> None:
    dry = longread(home, hub.endpoint, "get", REPO, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{NAME} — 98 MB" in dry.stdout or f"{NAME} —" in dry.stdout
    assert "Free disk space:" in dry.stdout
    assert "Here: Fits in the memory free now" in dry.stdout and "trained window 8,192" in dry.stdout
    assert not (home / "models" / "HuggingFaceTB").exists()

    got = longread(home, hub.endpoint, "get", f"{REPO}/{NAME}")
    assert got.returncode == 0, got.stderr
    path = home / "models" / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF" / NAME
    assert f"Ready: {path}" in got.stdout
    assert path.read_bytes() == gguf_file.read_bytes()
    assert "is ready." in got.stderr  # the last progress line

    listed = longread(home, hub.endpoint, "list")
    assert f"{REPO}/{NAME}" in listed.stdout

    removed = longread(home, hub.endpoint, "remove", NAME)
    assert removed.returncode == 0 and f"Removed {REPO}/{NAME}" in removed.stdout
    assert not path.exists()
    again = longread(home, hub.endpoint, "remove", NAME)
    assert again.returncode == 1 and "No downloaded model is called" in again.stderr
    assert "Traceback" not in again.stderr


def test_search_and_a_repository_with_several_models(hub: FakeHub, home: Path, gguf_file: Path) -> None:
    hub.repos[REPO]["smollm2-copy-q8_0.gguf"] = gguf_file
    found = longread(home, hub.endpoint, "search", "smollm2")
    assert found.returncode == 0
    assert REPO in found.stdout  # from the Hub's search
    suggested = longread(home, hub.endpoint, "search")
    assert "Qwen/Qwen2.5-1.5B-Instruct-GGUF" in suggested.stdout and "Apache-2.0" in suggested.stdout
    several = longread(home, hub.endpoint, "get", REPO)
    assert several.returncode == 1
    assert "has 2 GGUF models; name one" in several.stdout and "smollm2-copy-q8_0.gguf" in several.stdout


def test_offline_and_unknown_are_plain(home: Path, hub: FakeHub) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    offline = longread(home, dead, "get", REPO)
    assert offline.returncode == 1
    assert "longread: Cannot reach the Hugging Face Hub" in offline.stderr and "Traceback" not in offline.stderr
    switched_off = longread(home, hub.endpoint, "get", REPO, offline=True)
    assert switched_off.returncode == 1 and "HF_HUB_OFFLINE is set" in switched_off.stderr
    assert not [r for r in hub.log if r.path.startswith("/api/")]  # nothing was asked
    unknown = longread(home, hub.endpoint, "get", "nobody/nothing")
    assert unknown.returncode == 1 and "There is no repository nobody/nothing" in unknown.stderr
