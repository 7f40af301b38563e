"""The engine through a real llama-server on 127.0.0.1 with the bundled SmolLM2 (issue 16):
ask, deep thinking and waves unchanged, the server's prompt cache confirmed from its own
report, slot save/restore, cancel, the faults, and one model spread over two RPC servers.

The servers are llama.cpp's own binaries, built once per machine by
scripts/build_llama_server.py; without them these tests skip and say so.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import Cancelled, CancelToken, ContextOverflowError, GenerationError, ModelError, ServerLost
from engine.ingest import read_documents
from engine.library import Library
from engine.reading.ask import AskResult, Reader
from engine.reading.prompts import Prompt
from engine.reading.waves import WaveMode
from engine.runtime.backend import LoadSettings
from engine.runtime.server import ServerBackend, ServerModel, ServerReport
from engine.store import Store
from tests.conftest import fact_pages, text_pages_file, write_pdf
from tests.server_procs import (
    NOT_BUILT,
    Binaries,
    ServerProcess,
    binaries,
    free_port,
    start_llama_server,
    start_rpc_server,
)

QUESTION = "What is the vault access code?"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def bins() -> Binaries:
    found = binaries()
    if found is None:
        pytest.skip(NOT_BUILT)
    return found


@pytest.fixture(scope="session")
def server(bins: Binaries, smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One llama-server for the module: 2 slots of 4,096 tokens, slot files allowed."""
    folder = tmp_path_factory.mktemp("llama-server")
    (folder / "slots").mkdir()
    proc = start_llama_server(bins, smollm2_path, log_dir=folder, ctx=8192, parallel=2, slot_save_path=folder / "slots")
    yield proc
    proc.stop()


def _corpus(paths: list[Path], store: Store) -> Corpus:
    docs, _ = read_documents(paths, store=store)
    return Corpus(tuple(docs))


def _library(home: Path, backend: ServerBackend, **settings: object) -> Library:
    values: dict[str, object] = {"max_answer_tokens": 30, "n_threads": 2, **settings}
    return Library(home / "longread.db", backend=backend, settings=ReadSettings(**values))  # type: ignore[arg-type]


def test_the_backend_reads_the_servers_facts(server: ServerProcess) -> None:
    backend = ServerBackend(server.url)
    assert backend.slots == 2
    assert backend.facts.n_ctx_slot == 4096  # -c 8192 over --parallel 2
    assert backend.version.startswith("llama-server b")
    assert backend.facts.chat_template is not None and "<|im_start|>" in backend.facts.chat_template
    assert backend.model_path.name.endswith(".gguf")


def test_counts_are_the_servers_and_equal_the_local_ones(
    server: ServerProcess, store: Store, fact_pdf: Path, smollm2_path: Path
) -> None:
    corpus = _corpus([fact_pdf], store)
    backend = ServerBackend(server.url)
    remote = Reader(store, backend.model_path, ReadSettings(), backend=backend)
    local = Reader(store, smollm2_path, ReadSettings())
    try:
        remote_prompt, remote_budget = remote.prepare(corpus, QUESTION)
        local_prompt, _ = local.prepare(corpus, QUESTION)
    finally:
        remote.close()
        local.close()
    assert remote_prompt.tokens == local_prompt.tokens  # the same vocabulary, tokenized by the server
    assert remote_budget.max_ctx == 4096  # the server's per-slot window, not the trained 8,192


def test_ask_through_the_server_then_a_second_question_reuses_the_cached_corpus(
    server: ServerProcess, home: Path, fact_pdf: Path
) -> None:
    lib = _library(home, ServerBackend(server.url))
    try:
        corpus = _corpus([fact_pdf], lib.store)
        pieces: list[str] = []
        first = lib.ask(corpus, QUESTION, on_text=pieces.append)
        assert "482913" in first.answer  # greedy: the code is on page 3 only
        assert len(pieces) > 3 and "".join(pieces).strip() == first.answer
        [run] = lib.store.list_runs(first.session_id)
        assert (run.status, run.answer) == ("done", first.answer)

        model = lib.lane.model
        assert isinstance(model, ServerModel)
        before = len(model.reports)
        prompt, _ = lib.prepare_ask(corpus, "Which page is the code on?")
        second = lib.ask(corpus, "Which page is the code on?", session_id=first.session_id)
        assert second.answer
        # What the server reported for the second question's first request: it reused the
        # documents from its prompt cache (cache_n), not what we believe it holds, and read
        # the first answer (now a memory entry after them) and the question.
        report = model.reports[before]
        assert prompt.memory_ids and report.cached >= prompt.corpus_only_end - 1
        assert sum(r.evaluated for r in model.reports[before:]) < prompt.corpus_end
    finally:
        lib.close()


def test_a_new_client_finds_the_corpus_in_the_servers_cache(server: ServerProcess, home: Path, fact_pdf: Path) -> None:
    # As after a restart of Longread: nothing held locally, the slot still holds the corpus.
    # The second session carries the first one's answer as memory after the documents, so
    # the server reuses the documents and reads the memory block and the question.
    for attempt in range(2):
        lib = _library(home, ServerBackend(server.url))
        lib.reader.server_slots = None  # the prompt cache alone (slot files: the restart test below)
        try:
            corpus = _corpus([fact_pdf], lib.store)
            prompt, _ = lib.prepare_ask(corpus, QUESTION)
            lib.ask(corpus, QUESTION)
            model = lib.lane.model
            assert isinstance(model, ServerModel)
            first = model.reports[0]  # the prefill of the whole prompt, as the server reported it
            if attempt == 1:
                assert prompt.memory_ids  # the first session's answer
                assert first.cached >= prompt.corpus_only_end - 1
                assert first.evaluated == first.prompt_tokens - first.cached
        finally:
            lib.close()


def test_deep_thinking_and_waves_run_through_the_server(server: ServerProcess, home: Path, tmp_path: Path) -> None:
    lib = _library(home, ServerBackend(server.url))
    try:
        pdf = write_pdf(tmp_path / "handbook.pdf", fact_pages())
        corpus = _corpus([pdf], lib.store)
        deep = lib.think(corpus, QUESTION, step_tokens=24)
        run = lib.get_run(deep.run_id)
        assert run is not None and run.status == "done"
        assert [s.status for s in run.steps] == ["done"] * len(run.steps) and len(run.steps) == 5
    finally:
        lib.close()

    lib = _library(home, ServerBackend(server.url), n_ctx=1024)
    try:
        long_doc = text_pages_file(tmp_path / "long.txt", fact_pages(8))
        corpus = _corpus([long_doc], lib.store)
        waves = lib.read_in_waves(corpus, QUESTION, note_tokens=32)
        run = lib.get_run(waves.run_id)
        assert run is not None and run.status == "done"
        wave_steps = [s for s in run.steps if s.kind == "wave"]
        assert len(wave_steps) >= 2 and all(s.status == "done" for s in wave_steps)
    finally:
        lib.close()


def test_map_waves_run_on_both_slots_of_the_server(server: ServerProcess, home: Path, tmp_path: Path) -> None:
    lib = _library(home, ServerBackend(server.url), n_ctx=1024)
    try:
        long_doc = text_pages_file(tmp_path / "long.txt", fact_pages(8))
        corpus = _corpus([long_doc], lib.store)
        result = lib.read_in_waves(corpus, QUESTION, note_tokens=32, mode=WaveMode.MAP)
        run = lib.get_run(result.run_id)
        assert run is not None and run.status == "done"
        waves = [s for s in run.steps if s.kind == "wave"]
        assert len(waves) >= 2 and all(s.status == "done" and s.detail.get("slots") == 2 for s in waves)
        model = lib.lane.model
        assert isinstance(model, ServerModel)
        # The server's own reports: the waves' requests went to both slots.
        assert {r.slot for r in model.reports if r.kind == "generate"} == {0, 1}
    finally:
        lib.close()


def _slot(server: ServerProcess, slot: int) -> dict[str, object]:
    listing = server.get("/slots")["data"]
    assert isinstance(listing, list)
    [entry] = [e for e in listing if e["id"] == slot]
    return dict(entry)


def test_cancel_closes_the_stream_and_the_server_stops_generating(server: ServerProcess) -> None:
    backend = ServerBackend(server.url)
    model = backend.open_slot(1, LoadSettings(n_ctx=4096, n_threads=2))
    model.prefill(
        model.tokenize_template("<|im_start|>user\nCount from one to five hundred.<|im_end|>\n<|im_start|>assistant\n")
    )
    pieces: list[str] = []
    cancel = CancelToken()
    with pytest.raises(Cancelled):
        for piece in model.generate(max_tokens=2000, should_cancel=cancel):
            pieces.append(piece)
            if len(pieces) == 3:
                cancel.cancel()
    deadline = time.monotonic() + 60
    while _slot(server, 1)["is_processing"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _slot(server, 1)["is_processing"] is False
    # The server's own account: it cancelled the task when the stream closed, and slot 1
    # stopped a few tokens past the prompt, far from the 2,000 asked.
    log = server.log.read_text(errors="replace")
    assert "cancel task" in log
    stopped = re.findall(r"release: id +1 \| task \d+ \| stop processing: n_tokens = (\d+)", log)
    assert stopped and model.n_tokens <= int(stopped[-1]) < model.n_tokens + 100


def test_slot_save_and_restore_is_verified(server: ServerProcess, store: Store, fact_pdf: Path) -> None:
    backend = ServerBackend(server.url)
    model = backend.open_slot(0, LoadSettings(n_ctx=4096, n_threads=2))
    tokens = model.tokenize_text("The vault access code is 482913. " * 40)
    model.prefill(tokens)
    snapshot = model.save_slot("vault.bin")
    assert snapshot.tokens == tuple(tokens) and snapshot.bytes_written > 0

    model.prefill(model.tokenize_text("Something else entirely, to overwrite the slot. " * 10))
    report = model.restore_slot(snapshot)
    assert report.cached >= len(tokens) - 1 and report.evaluated <= 1
    assert model.context_tokens == tokens

    with pytest.raises(GenerationError, match=server.url.replace(".", r"\.")):
        model.restore_slot(snapshot.__class__("no-such-file.bin", snapshot.tokens, snapshot.next_token, 0))


def _slot_rows(home: Path) -> list[dict[str, object]]:
    with sqlite3.connect(home / "longread.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM server_slots")]


def test_the_documents_come_back_from_a_slot_file_after_the_server_restarts(
    bins: Binaries, smollm2_path: Path, home: Path, tmp_path: Path, fact_pdf: Path
) -> None:
    slots, port = tmp_path / "slots", free_port()
    slots.mkdir()

    def ask() -> tuple[AskResult, Prompt, list[ServerReport]]:
        lib = _library(home, ServerBackend(f"http://127.0.0.1:{port}"))
        lib.use_memory(False)  # the same prompt each time: the answers must match
        try:
            corpus = _corpus([fact_pdf], lib.store)
            prompt, _ = lib.prepare_ask(corpus, QUESTION)
            result = lib.ask(corpus, QUESTION)
            model = lib.lane.model
            assert isinstance(model, ServerModel)
            return result, prompt, list(model.reports)
        finally:
            lib.close()

    proc = start_llama_server(bins, smollm2_path, log_dir=tmp_path, slot_save_path=slots, port=port)
    try:
        cold, prompt, _ = ask()
    finally:
        proc.stop()
    assert cold.warm is not None and cold.warm.source == "prefill" and cold.warm.saved
    [row] = _slot_rows(home)
    assert row["n_tokens"] == prompt.corpus_only_end and (slots / str(row["filename"])).is_file()
    assert "vault" not in json.dumps(row)  # no text of the documents in the row

    # The server restarted (same address, empty caches): the documents come from the slot
    # file, checked by the server's own report, and the answer is the cold read's.
    proc = start_llama_server(bins, smollm2_path, log_dir=tmp_path, slot_save_path=slots, port=port)
    try:
        warm, prompt, reports = ask()
        assert warm.warm is not None and warm.warm.source == "snapshot", warm.warm
        assert reports[0].cached >= prompt.corpus_only_end - 1 and reports[0].evaluated <= 1  # the restore check
        assert sum(r.evaluated for r in reports) < len(prompt.tokens) - prompt.corpus_only_end + 8
        assert warm.answer == cold.answer

        # The file gone from the server's disk: the row is dropped, the user told, and
        # the documents read and saved again.
        (slots / str(row["filename"])).unlink()
        proc.stop()
        proc = start_llama_server(bins, smollm2_path, log_dir=tmp_path, slot_save_path=slots, port=port)
        again, _, _ = ask()
        assert again.warm is not None and again.warm.source == "prefill" and again.warm.saved
        assert again.warm.notice is not None and "slot file on the server was dropped" in again.warm.notice
        assert again.answer == cold.answer and (slots / str(row["filename"])).is_file()
    finally:
        proc.stop()


def test_a_sliding_window_models_restore_is_checked_and_not_trusted(
    bins: Binaries, gemma_path: Path, home: Path, tmp_path: Path
) -> None:
    # Gemma 3's sliding-window layers: llama-server (0.3.36's llama.cpp) says it restored
    # the slot file, then reads every token again (llama.cpp #26676, #27813, #28194).
    slots, port = tmp_path / "slots", free_port()
    slots.mkdir()
    doc = text_pages_file(tmp_path / "handbook.txt", fact_pages(6, fact_page=2))  # past its 512-token window
    warm = []
    for _ in range(2):
        proc = start_llama_server(bins, gemma_path, log_dir=tmp_path, slot_save_path=slots, port=port)
        lib = _library(home, ServerBackend(f"http://127.0.0.1:{port}"), max_answer_tokens=8)
        lib.use_memory(False)
        try:
            result = lib.ask(_corpus([doc], lib.store), QUESTION)
            assert result.warm is not None
            warm.append(result.warm)
        finally:
            lib.close()
            proc.stop()
    assert warm[0].source == "prefill" and warm[0].saved
    # Detected by the server's own report, dropped, said, and not saved again.
    assert warm[1].source == "prefill" and not warm[1].saved and warm[1].notice is not None
    assert "reused only 0 of its" in warm[1].notice and "was dropped: it was not used" in warm[1].notice
    assert _slot_rows(home) == []


def test_a_server_killed_mid_answer_keeps_the_partial_answer_marked_interrupted(
    bins: Binaries, smollm2_path: Path, home: Path, tmp_path: Path
) -> None:
    proc = start_llama_server(bins, smollm2_path, log_dir=tmp_path, ctx=4096)
    try:
        lib = _library(home, ServerBackend(proc.url), max_answer_tokens=400)
        corpus = _corpus([write_pdf(tmp_path / "h.pdf", fact_pages())], lib.store)
        pieces: list[str] = []

        def on_text(piece: str) -> None:
            pieces.append(piece)
            if len(pieces) == 5:
                proc.kill()

        with pytest.raises(ServerLost) as lost:
            lib.ask(corpus, "Retell the whole handbook in detail, page by page.", on_text=on_text)
        assert proc.url in lost.value.message
        [run] = lib.store.list_runs(lib.sessions()[0].id)
        assert run.status == "interrupted"
        step = run.answer_step
        assert step is not None and step.status == "interrupted"
        assert step.text and step.text.startswith("".join(pieces[:5]).strip()[:10])
        lib.close()
    finally:
        proc.stop()


def test_wrong_key_small_window_and_unknown_model_name_the_server(
    bins: Binaries, smollm2_path: Path, home: Path, tmp_path: Path
) -> None:
    key = "sk-right-key-7f3a"
    proc = start_llama_server(bins, smollm2_path, log_dir=tmp_path, ctx=512, api_key=key)
    try:
        with pytest.raises(ModelError) as wrong:
            ServerBackend(proc.url, api_key="sk-wrong")
        assert wrong.value.message.startswith(f"The server at {proc.url} refused the API key")
        with pytest.raises(ModelError) as unknown:
            ServerBackend(proc.url, model="llama-70b", api_key=key)
        assert f"The server at {proc.url} does not serve a model named 'llama-70b'" in unknown.value.message

        lib = _library(home, ServerBackend(proc.url, api_key=key))
        corpus = _corpus([write_pdf(tmp_path / "h.pdf", fact_pages())], lib.store)
        with pytest.raises(ContextOverflowError) as small:
            lib.ask(corpus, QUESTION)
        assert f"does not fit the window of the server at {proc.url}" in small.value.message
        assert "window 512" in small.value.message
        lib.close()
    finally:
        proc.stop()


def test_the_api_key_is_never_stored_logged_or_exported(
    bins: Binaries, smollm2_path: Path, home: Path, tmp_path: Path
) -> None:
    key = "sk-password-like-3c9e1d"
    proc = start_llama_server(bins, smollm2_path, log_dir=tmp_path, ctx=4096, api_key=key)
    try:
        doc = text_pages_file(tmp_path / "doc.txt", fact_pages(2, fact_page=2))
        env = {
            "LONGREAD_HOME": str(home),
            "PYTHONPATH": str(ROOT),
            "PATH": "/usr/bin:/bin",
            "LONGREAD_SERVER_API_KEY": key,
        }
        cmd = [sys.executable, "-m", "engine.cli", "--verbose", "ask", str(doc), "-q", QUESTION, "--max-answer", "16"]
        out = subprocess.run(
            [*cmd, "--server", proc.url], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
        )
        assert out.returncode == 0, out.stderr
        assert key not in out.stdout + out.stderr
        export = subprocess.run(
            [sys.executable, "-m", "engine.cli", "export", "1"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
        assert export.returncode == 0 and QUESTION in export.stdout and key not in export.stdout
        db = sqlite3.connect(home / "longread.db")
        dump = "\n".join(db.iterdump())
        db.close()
        assert QUESTION in dump and key not in dump
        for path in home.rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path
    finally:
        proc.stop()


def test_a_model_spread_over_two_rpc_servers_answers_from_a_document(
    bins: Binaries, smollm2_path: Path, home: Path, tmp_path: Path
) -> None:
    rpc = [start_rpc_server(bins, log_dir=tmp_path) for _ in range(2)]
    proc = None
    try:
        proc = start_llama_server(bins, smollm2_path, log_dir=tmp_path, ctx=4096, rpc=[addr for addr, _ in rpc])
        lib = _library(home, ServerBackend(proc.url))
        corpus = _corpus([write_pdf(tmp_path / "h.pdf", fact_pages())], lib.store)
        result = lib.ask(corpus, QUESTION)
        assert "482913" in result.answer
        lib.close()
    finally:
        if proc is not None:
            proc.stop()
        for _, p in rpc:
            p.stop()
    for _, p in rpc:  # llama-server used both RPC servers (their own logs)
        assert "Accepted client connection" in p.log.read_text(errors="replace")
