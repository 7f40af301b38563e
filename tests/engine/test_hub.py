"""Getting a model from the Hub (engine/models/hub.py), against a local Hub on 127.0.0.1
(tests/hub_server.py) that serves the bundled SmolLM2 GGUF with huggingface_hub's own
endpoints and headers: listing, a checked download, a cut mid-file, a cancel and a
restart that resume, a wrong hash, a full disk, offline, and a split model."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import Cancelled, ChecksumError, DiskFullError, DownloadError, OfflineError
from engine.models.discover import discover_models
from engine.models.gguf import inspect_gguf
from engine.models.hub import (
    DownloadProgress,
    Hub,
    HubFile,
    curated_models,
    describe_fit,
    installed_models,
    parse_spec,
    remove_model,
    search_curated,
)
from tests.gguf_split import split_gguf
from tests.hub_server import FakeHub

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
NAME = "smollm2-135m-instruct-q4_1.gguf"
MIB = 1 << 20


@pytest.fixture
def hub(gguf_file: Path) -> Iterator[FakeHub]:
    server = FakeHub(repos={REPO: {NAME: gguf_file}}).start()
    yield server
    server.stop()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "home" / "models"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def body_bytes(server: FakeHub, name: str) -> int:
    return sum(r.sent for r in server.downloads(name))


def only_file(client: Hub) -> HubFile:
    files = client.list_files(REPO)
    assert len(files) == 1
    return files[0]


def test_curated_list_is_real_data() -> None:
    models = curated_models()
    assert len(models) >= 6
    for m in models:
        assert "/" in m.repo and m.context >= 32768 and m.licence and m.why
        assert m.recommended in {f.file for f in m.files}
        assert all(f.file.endswith(".gguf") and f.size_bytes > 100_000_000 for f in m.files)
    assert [m.repo for m in search_curated("llama 3B")] == ["bartowski/Llama-3.2-3B-Instruct-GGUF"]
    assert search_curated("no such model anywhere") == []


def test_parse_spec() -> None:
    assert parse_spec("org/name") == ("org/name", None)
    assert parse_spec("org/name/sub/f.gguf") == ("org/name", "sub/f.gguf")
    assert parse_spec("https://huggingface.co/org/name/blob/main/f.gguf") == ("org/name", "f.gguf")
    with pytest.raises(DownloadError, match="org/name"):
        parse_spec("justaname")


def test_lists_gguf_models_with_sizes_and_hub_sha(hub: FakeHub, gguf_file: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("card")
    hub.repos[REPO].update({"README.md": readme, "mmproj-smol-f16.gguf": gguf_file})
    file = only_file(Hub(endpoint=hub.endpoint))
    assert file.name == NAME
    assert file.size == gguf_file.stat().st_size
    assert file.parts[0].sha256 == sha256(gguf_file)
    assert file.quant == "Q4_1"
    assert Hub(endpoint=hub.endpoint).search("smollm2") == [REPO]


def test_unknown_repository_is_said_plainly(hub: FakeHub) -> None:
    with pytest.raises(DownloadError, match="There is no repository nobody/nothing on the Hub"):
        Hub(endpoint=hub.endpoint).list_files("nobody/nothing")


def test_inspect_reads_the_header_by_ranges_and_the_planner_speaks(hub: FakeHub, gguf_file: Path) -> None:
    client = Hub(endpoint=hub.endpoint)
    info = client.inspect(only_file(client))
    local = inspect_gguf(gguf_file)
    assert (info.architecture, info.context_length, info.n_layers, info.tensor_bytes) == (
        local.architecture,
        local.context_length,
        local.n_layers,
        local.tensor_bytes,
    )
    fetched = body_bytes(hub, NAME)
    assert 0 < fetched < gguf_file.stat().st_size // 10  # the header, never the weights
    line = describe_fit(info, available_bytes=8 << 30)
    assert "f16 up to 8,192 tokens" in line and "trained window 8,192" in line
    assert "not measured" in line
    tight = describe_fit(info, available_bytes=40 * MIB)
    assert "Does not fit" in tight


def test_download_is_checked_and_found_by_discovery(hub: FakeHub, gguf_file: Path, root: Path) -> None:
    client = Hub(endpoint=hub.endpoint)
    seen: list[DownloadProgress] = []
    path = client.download(only_file(client), root=root, on_progress=seen.append)

    assert path == root / "HuggingFaceTB" / "SmolLM2-135M-Instruct-GGUF" / NAME
    assert sha256(path) == sha256(gguf_file)
    assert body_bytes(hub, NAME) == gguf_file.stat().st_size
    assert [p.stage for p in seen][-3:] == ["verify", "inspect", "done"]
    downloading = [p for p in seen if p.stage == "download"]
    assert downloading and downloading[-1].done_bytes == downloading[-1].total_bytes
    assert "of" in downloading[0].describe()
    assert not list((root / ".partial").rglob("*.part")) if (root / ".partial").exists() else True
    found = discover_models(home=root.parent, env={"LONGREAD_HOME": str(root.parent)}, platform="linux")
    assert [(m.source, m.path) for m in found] == [("Longread", path)]
    assert [m.name for m in installed_models(root)] == [f"{REPO}/{NAME}"]
    # A second get finds it there and fetches nothing.
    before = len(hub.log)
    assert client.download(only_file(client), root=root) == path
    assert not [r for r in hub.log[before:] if "/resolve/" in r.path]


def test_cut_mid_file_resumes_without_fetching_again(hub: FakeHub, gguf_file: Path, root: Path) -> None:
    # Cut at a chunk boundary (huggingface_hub writes 1 MiB chunks as whole pieces).
    cut = 30 * MIB
    hub.cut_after[NAME] = cut
    client = Hub(endpoint=hub.endpoint)
    path = client.download(only_file(client), root=root)

    first, second = hub.downloads(NAME)
    assert first.range is None and first.sent == cut
    assert second.range == f"bytes={cut}-"
    assert second.sent == gguf_file.stat().st_size - cut
    assert sha256(path) == sha256(gguf_file)


def test_cancel_then_restart_resumes_from_the_partial_file(hub: FakeHub, gguf_file: Path, root: Path) -> None:
    client = Hub(endpoint=hub.endpoint)
    file = only_file(client)
    stop_after = 20 * MIB
    progress: list[int] = []
    partial = root / ".partial" / REPO.replace("/", "--") / (NAME + ".part")

    def cancel() -> bool:
        # What is on disk, not the progress reports: those come every so many seconds, and
        # on a fast loopback the whole file can arrive before the first one (a flaky CI run).
        return partial.exists() and partial.stat().st_size >= stop_after

    with pytest.raises(Cancelled):
        client.download(file, root=root, on_progress=lambda p: progress.append(p.done_bytes), cancel=cancel)
    kept = partial.stat().st_size
    assert stop_after <= kept < file.size
    # Nothing half-written is offered.
    assert discover_models(home=root.parent, env={"LONGREAD_HOME": str(root.parent)}, platform="linux") == []
    assert installed_models(root) == []

    # A new Hub object: as after a restart of the program.
    path = Hub(endpoint=hub.endpoint).download(file, root=root)
    resumed = hub.downloads(NAME)[-1]
    assert resumed.range == f"bytes={kept}-"
    assert resumed.sent == file.size - kept
    assert sha256(path) == sha256(gguf_file)
    assert not partial.exists()


def test_wrong_hash_is_refused_and_the_file_removed(hub: FakeHub, root: Path) -> None:
    hub.published_sha[NAME] = "0" * 64
    client = Hub(endpoint=hub.endpoint)
    with pytest.raises(ChecksumError, match="does not match the SHA-256 the Hub published"):
        client.download(only_file(client), root=root)
    assert not [p for p in root.rglob("*") if p.is_file()]
    assert installed_models(root) == []


def test_full_disk_is_checked_before_fetching(hub: FakeHub, root: Path) -> None:
    client = Hub(endpoint=hub.endpoint)
    with pytest.raises(DiskFullError, match=r"Not enough disk space for .*is free"):
        client.download(only_file(client), root=root, free_space=lambda _: 50 * MIB)
    assert hub.downloads(NAME) == []


CHILD = """
import resource, signal, sys
from pathlib import Path
from engine.errors import DiskFullError
from engine.models.hub import Hub
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (40 << 20, 40 << 20))
client = Hub(endpoint=sys.argv[1])
file = client.list_files(sys.argv[2])[0]
try:
    client.download(file, root=Path(sys.argv[3]), free_space=lambda _: 1 << 40)
except DiskFullError as exc:
    print("DISKFULL", exc)
"""


def test_disk_filling_up_mid_download_is_a_clear_error(hub: FakeHub, root: Path) -> None:
    # The free-space check is told there is room; the kernel then refuses writes past
    # 40 MiB (RLIMIT_FSIZE in a child process), as a full disk would.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, hub.endpoint, REPO, str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "DISKFULL The disk filled up while downloading" in done.stdout, done.stderr[-2000:]
    partial = root / ".partial" / REPO.replace("/", "--") / (NAME + ".part")
    assert 0 < partial.stat().st_size <= 40 * MIB  # kept for a resume
    assert installed_models(root) == []


def test_offline_is_a_plain_message(root: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    client = Hub(endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(OfflineError, match="Cannot reach the Hugging Face Hub"):
        client.list_files(REPO)
    with pytest.raises(OfflineError, match="Models already on this computer still work"):
        client.search("qwen")


def test_split_model_is_fetched_whole_and_inspected_as_parts(gguf_file: Path, tmp_path: Path, root: Path) -> None:
    source = tmp_path / "split"
    source.mkdir()
    parts = split_gguf(gguf_file, source, "smollm2-q4_1", 3)
    server = FakeHub(repos={"org/Split-GGUF": {f"Q4_1/{p.name}": p for p in parts}}).start()
    try:
        client = Hub(endpoint=server.endpoint)
        (file,) = client.list_files("org/Split-GGUF")
        assert len(file.parts) == 3 and file.name == "Q4_1/smollm2-q4_1-00001-of-00003.gguf"
        whole = inspect_gguf(gguf_file)
        assert client.inspect(file).tensor_bytes == whole.tensor_bytes
        path = client.download(file, root=root)
    finally:
        server.stop()
    assert path.name == "smollm2-q4_1-00001-of-00003.gguf"
    assert not (root / ".partial").exists()  # nothing left behind, not even empty folders
    assert sorted(p.name for p in path.parent.iterdir()) == [p.name for p in parts]
    info = inspect_gguf(path)
    assert (info.tensor_bytes, info.parameter_count) == (whole.tensor_bytes, whole.parameter_count)
    found = discover_models(home=root.parent, env={"LONGREAD_HOME": str(root.parent)}, platform="linux")
    assert [m.path for m in found] == [path]
    # A missing part is said plainly, not left to llama.cpp.
    shutil.move(path.with_name("smollm2-q4_1-00002-of-00003.gguf"), tmp_path / "away.gguf")
    with pytest.raises(Exception, match="00002-of-00003.gguf is missing"):
        inspect_gguf(path)


def test_remove_model(hub: FakeHub, root: Path) -> None:
    client = Hub(endpoint=hub.endpoint)
    path = client.download(only_file(client), root=root)
    with pytest.raises(DownloadError, match="No downloaded model is called nope"):
        remove_model("nope", root=root)
    removed = remove_model(NAME, root=root)
    assert removed.path == path and not path.exists()
    assert not (root / "HuggingFaceTB").exists()


def test_partial_left_by_another_version_is_started_over(hub: FakeHub, gguf_file: Path, root: Path) -> None:
    staging = root / ".partial" / REPO.replace("/", "--")
    staging.mkdir(parents=True)
    (staging / (NAME + ".part")).write_bytes(b"x" * 1000)
    (staging / (NAME + ".part.json")).write_text(json.dumps({"sha256": "f" * 64, "size": 1000}))
    client = Hub(endpoint=hub.endpoint)
    path = client.download(only_file(client), root=root)
    assert hub.downloads(NAME)[-1].range is None  # fetched from the start
    assert sha256(path) == sha256(gguf_file)


def test_llama_cpp_reads_a_downloaded_split_model_as_the_whole(smollm2_path: Path, tmp_path: Path, root: Path) -> None:
    from engine.planning import make_plan
    from engine.runtime.llama import LlamaBackend

    source = tmp_path / "split"
    source.mkdir()
    parts = split_gguf(smollm2_path, source, "smollm2-q4_1", 3)
    server = FakeHub(repos={"org/Split-GGUF": {p.name: p for p in parts}}).start()
    try:
        client = Hub(endpoint=server.endpoint)
        path = client.download(client.list_files("org/Split-GGUF")[0], root=root)
    finally:
        server.stop()
    backend = LlamaBackend()

    def greedy(model_path: Path) -> str:
        plan = make_plan(backend.inspect_model(model_path), 64, available_bytes=8 << 30)
        model = backend.load_model(model_path, plan.load_settings(n_threads=2))
        try:
            model.prefill(model.tokenize_text("The capital of France is"))
            return "".join(model.generate(max_tokens=8))
        finally:
            model.close()

    answer = greedy(path)
    assert "Paris" in answer
    assert answer == greedy(smollm2_path)


def test_a_measured_speed_is_quoted_before_downloading_again(hub: FakeHub, gguf_file: Path, home: Path) -> None:
    # Calibrations are keyed by the model file's SHA-256, which is the Hub's LFS oid: a
    # file measured here before (then removed) is quoted with its speed.
    from engine.config import default_threads
    from engine.models.hub import stored_calibrations
    from engine.store import open_store
    from engine.store.db import CalibrationRow

    client = Hub(endpoint=hub.endpoint)
    file = only_file(client)
    db = home / "longread.db"
    assert stored_calibrations(file, db) == []
    store = open_store(db)
    row = CalibrationRow(
        model_sha256=sha256(gguf_file),
        kv_type="f16",
        n_threads=default_threads(),
        batch_size=512,
        llama_cpp_version="test",
        batch_seconds=(2.0, 2.5),
        flash_attn=False,
    )
    store.put_calibration(row)
    store.close()
    rows = stored_calibrations(file, db)
    assert [r.kv_type for r in rows] == ["f16"]
    line = describe_fit(client.inspect(file), available_bytes=8 << 30, calibrations=rows)
    assert "tokens/s here at f16 (measured)" in line
    assert "not measured" not in line


def test_a_redacted_listing_hash_is_checked_against_the_files_etag(hub: FakeHub, gguf_file: Path, root: Path) -> None:
    hub.redacted.add(NAME)
    client = Hub(endpoint=hub.endpoint)
    file = only_file(client)
    assert file.parts[0].sha256 is None  # "*" x 64 is not a hash
    stop = [False]
    with pytest.raises(Cancelled):
        client.download(
            file, root=root, on_progress=lambda p: stop.__setitem__(0, p.done_bytes > 10 << 20), cancel=lambda: stop[0]
        )
    path = client.download(file, root=root)  # resumes: the saved ETag hash is the same
    assert hub.downloads(NAME)[-1].range not in (None, "bytes=0-")
    assert sha256(path) == sha256(gguf_file)
    # A wrong file under that ETag is refused all the same.
    remove_model(NAME, root=root)
    hub.published_sha[NAME] = "1" * 64  # the ETag header now claims another hash
    with pytest.raises(ChecksumError):
        client.download(only_file(client), root=root)


def test_a_download_that_is_not_a_model_is_removed(tmp_path: Path, root: Path) -> None:
    junk = tmp_path / "notes.gguf"
    junk.write_bytes(b"GGUF" + b"\xff" * 5000)  # right magic, nonsense after it
    server = FakeHub(repos={"org/Junk-GGUF": {"notes.gguf": junk, "../escape.gguf": junk}}).start()
    try:
        client = Hub(endpoint=server.endpoint)
        (file,) = client.list_files("org/Junk-GGUF")  # the path leaving the folder is not offered
        with pytest.raises(Exception, match="was downloaded but is not a model Longread can use.*removed"):
            client.download(file, root=root)
    finally:
        server.stop()
    assert not [p for p in root.rglob("*.gguf*")]
    assert installed_models(root) == []
