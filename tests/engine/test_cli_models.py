"""``longread models search|get|list|remove`` against the local Hub (tests/hub_server.py):
in this process through ``run_models_command`` with the Hub given, and as a child process
that finds the Hub through ``HF_ENDPOINT`` as a user's shell would."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli_models import run_models_command
from engine.models.hub import Hub
from tests.hub_server import FakeHub

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
NAME = "smollm2-135m-instruct-q4_1.gguf"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(gguf_file: Path) -> Iterator[FakeHub]:
    server = FakeHub(repos={REPO: {NAME: gguf_file}}).start()
    yield server
    server.stop()


def models(server: FakeHub | str, home: Path, command: str, **fields: object) -> int:
    endpoint = server if isinstance(server, str) else server.endpoint
    args = argparse.Namespace(models_command=command, **fields)
    return run_models_command(args, hub=Hub(endpoint=endpoint), root=home / "models")


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


def test_get_through_hf_endpoint(hub: FakeHub, home: Path, gguf_file: Path) -> None:
    got = longread(home, hub.endpoint, "get", f"{REPO}/{NAME}")
    assert got.returncode == 0, got.stderr
    path = home / "models" / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF" / NAME
    assert f"Ready: {path}" in got.stdout
    assert path.read_bytes() == gguf_file.read_bytes()
    assert "is ready." in got.stderr  # the last progress line
    switched_off = longread(home, hub.endpoint, "get", REPO, offline=True)
    assert switched_off.returncode == 1 and "HF_HUB_OFFLINE is set" in switched_off.stderr
    assert "Traceback" not in switched_off.stderr


def test_dry_run_list_remove(hub: FakeHub, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert models(hub, home, "get", spec=REPO, dry_run=True) == 0
    out = capsys.readouterr().out
    assert f"{NAME} — 98 MB" in out
    assert "Free disk space:" in out
    assert "Here: Fits in the memory free now" in out and "trained window 8,192" in out
    assert not (home / "models" / "HuggingFaceTB").exists()
    assert not [r for r in hub.log if r.range is None and "/resolve/" in r.path and r.method == "GET"]

    assert models(hub, home, "get", spec=REPO, dry_run=False) == 0
    path = home / "models" / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF" / NAME
    assert path.is_file()
    capsys.readouterr()
    assert models(hub, home, "list") == 0
    assert f"{REPO}/{NAME}" in capsys.readouterr().out

    assert models(hub, home, "remove", name=NAME) == 0
    assert f"Removed {REPO}/{NAME}" in capsys.readouterr().out
    assert not path.exists()
    assert models(hub, home, "remove", name=NAME) == 1
    assert "No downloaded model is called" in capsys.readouterr().err


def test_search_and_a_repository_with_several_models(
    hub: FakeHub, home: Path, gguf_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.repos[REPO]["smollm2-copy-q8_0.gguf"] = gguf_file
    assert models(hub, home, "search", query="smollm2") == 0
    assert REPO in capsys.readouterr().out  # from the Hub's search
    assert models(hub, home, "search", query="") == 0
    suggested = capsys.readouterr().out
    assert "Qwen/Qwen2.5-1.5B-Instruct-GGUF" in suggested and "Apache-2.0" in suggested
    assert models(hub, home, "get", spec=REPO, dry_run=True) == 1
    several = capsys.readouterr().out
    assert "has 2 GGUF models; name one" in several and "smollm2-copy-q8_0.gguf" in several


def test_offline_and_unknown_are_plain(home: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert models(dead, home, "get", spec=REPO, dry_run=False) == 1
    assert "longread: Cannot reach the Hugging Face Hub" in capsys.readouterr().err
    assert models(dead, home, "search", query="qwen") == 0  # the suggestions still show
    searched = capsys.readouterr()
    assert "Hub search skipped" in searched.err and "Qwen2.5" in searched.out
    assert models(hub, home, "get", spec="nobody/nothing", dry_run=False) == 1
    assert "There is no repository nobody/nothing" in capsys.readouterr().err


def test_get_a_suggested_repository_takes_its_recommended_file(
    home: Path, gguf_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.models.hub import curated_models

    qwen = curated_models()[0]
    files = {name: gguf_file for name in ("qwen2.5-1.5b-instruct-q2_k.gguf", qwen.recommended)}
    server = FakeHub(repos={qwen.repo: files}).start()
    try:
        assert models(server, home, "get", spec=qwen.repo, dry_run=True) == 0
    finally:
        server.stop()
    assert f"{qwen.repo}: {qwen.recommended}" in capsys.readouterr().out
