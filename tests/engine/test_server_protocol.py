"""The server backend's side of the protocol, against a small stand-in for llama-server
(the fast tier; tests/engine/test_server.py runs the real one): one streamed request per
prefill with the server's progress, what the server reports is what is recorded, a stream
cut mid-answer is ``ServerLost``, a cancel closes the stream, one slot per thread; slot
files saved, restored with the check, dropped when the server ignores them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine.errors import Cancelled, CancelToken, ModelError, ServerLost
from engine.runtime.backend import LoadSettings
from engine.runtime.server import ServerBackend
from engine.server_warm import ServerSlots
from engine.store import Store

REPLY = [" The", " code", " is", " 42", "."]


@dataclass
class Stub:
    """What the stand-in serves and what it saw."""

    api_key: str | None = None
    incremental: bool = True  # False: every prompt is read whole (as SWA models behave)
    batch: int = 4  # tokens per progress event
    cut_after: int | None = None  # close the stream after this many events
    vocab: dict[str, int] = field(default_factory=dict)
    slots: dict[int, list[int]] = field(default_factory=dict)
    files: dict[str, list[int]] | None = None  # slot files (--slot-save-path); None: not allowed
    ignore_restore: bool = False  # say "restored" but keep the slot as it was (SWA models)
    requests: list[dict[str, Any]] = field(default_factory=list)
    streamed: int = 0

    def ids(self, text: str) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if stub.api_key and self.headers.get("Authorization") != f"Bearer {stub.api_key}":
                self._send(401, {"error": {"message": "Invalid API Key"}})
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorized():
                return
            if self.path == "/v1/models":
                meta = {"n_vocab": 1000, "n_ctx_train": 8192, "n_params": 7, "size": 9}
                self._send(200, {"data": [{"id": "stub.gguf", "meta": meta}]})
            elif self.path == "/props":
                props = {"default_generation_settings": {"n_ctx": 2048}, "total_slots": 2, "build_info": "b1-stub"}
                self._send(200, {**props, "chat_template": "{{ messages }}"})
            else:
                self._send(404, {"error": {"message": "no"}})

        def do_POST(self) -> None:
            if not self._authorized():
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stub.requests.append(body)
            if self.path == "/tokenize":
                self._send(200, {"tokens": stub.ids(body["content"])})
            elif self.path == "/completion":
                self._complete(body)
            elif self.path.startswith("/slots/"):
                self._slot_file(int(self.path.split("/")[2].split("?")[0]), self.path.split("action=")[1], body)
            else:
                self._send(404, {"error": {"message": "no"}})

        def _slot_file(self, slot: int, action: str, body: dict[str, Any]) -> None:
            if stub.files is None:
                self._send(501, {"error": {"message": "This server does not support slots action."}})
            elif action == "save":
                stub.files[body["filename"]] = list(stub.slots.get(slot, []))
                self._send(200, {"n_saved": len(stub.files[body["filename"]]), "n_written": 1000})
            elif body["filename"] not in stub.files:
                self._send(400, {"error": {"message": "failed to restore slot"}})
            else:
                if not stub.ignore_restore:
                    stub.slots[slot] = list(stub.files[body["filename"]])
                self._send(200, {"n_restored": len(stub.files[body["filename"]])})

        def _complete(self, body: dict[str, Any]) -> None:
            prompt, slot = body["prompt"], body["id_slot"]
            held = stub.slots.get(slot, [])
            cached = 0
            if stub.incremental:
                while cached < min(len(held), len(prompt) - 1) and held[cached] == prompt[cached]:
                    cached += 1
            stub.slots[slot] = list(prompt)
            timings = {"cache_n": cached, "prompt_n": len(prompt) - cached, "predicted_n": 0}
            if not body.get("stream"):
                first = stub.ids(REPLY[0])[: body["n_predict"]]  # greedy: always the same token
                self._send(200, {"content": "", "tokens": first, "timings": timings, "stop": True})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            if body["n_predict"] == 0:  # a prefill: progress after each batch, then the end
                done = cached
                try:
                    while done < len(prompt):
                        done = min(len(prompt), done + stub.batch)
                        progress = {"total": len(prompt), "cache": cached, "processed": done, "time_ms": 1}
                        self.wfile.write(f"data: {json.dumps({'prompt_progress': progress})}\n\n".encode())
                        self.wfile.flush()
                        stub.streamed += 1
                    self.wfile.write(f"data: {json.dumps({'stop': True, 'timings': timings})}\n\n".encode())
                except OSError:
                    pass
                return
            words = REPLY[: body["n_predict"]]
            for i, word in enumerate(words):
                if stub.cut_after is not None and i == stub.cut_after:
                    return  # the server dies: the connection closes mid-stream
                last = i == len(words) - 1
                event = {"content": word, "tokens": stub.ids(word), "stop": last}
                if last:
                    event["timings"] = {**timings, "predicted_n": len(words)}
                try:
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                except OSError:
                    return  # the client closed the stream
                stub.streamed += 1

    return Handler


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SETTINGS = LoadSettings(n_ctx=2048, n_threads=1, n_batch=4)


def test_a_prefill_is_one_request_with_the_servers_progress_and_report(stub: tuple[Stub, str]) -> None:
    state, url = stub
    backend = ServerBackend(url)
    model = backend.load_model(backend.model_path, SETTINGS)
    tokens = model.tokenize_text("one two three four five six seven eight nine ten")
    seen: list[tuple[int, int, int]] = []
    stats = model.prefill(tokens, on_progress=lambda p: seen.append((p.done, p.total, p.reused)))
    assert (stats.evaluated, stats.reused) == (10, 0) and model.context_tokens == tokens
    assert seen == [(4, 10, 0), (8, 10, 0), (10, 10, 0)]
    [request] = [r for r in state.requests if "prompt" in r]
    assert request["prompt"] == tokens and request["n_predict"] == 0
    assert request["cache_prompt"] and request["id_slot"] == 0 and request["return_progress"]

    longer = tokens + model.tokenize_text("eleven twelve")
    stats = model.prefill(longer)
    assert (stats.evaluated, stats.reused) == (2, 10)  # the server's report: the slot held all ten
    assert [(r.cached, r.evaluated) for r in model.reports] == [(0, 10), (10, 2)]

    text = "".join(model.generate(max_tokens=50))
    assert text == "".join(REPLY)
    assert model.n_tokens == 12 + len(REPLY)  # the generated ids joined the context
    assert model.reports[-1].predicted == len(REPLY)


def test_a_cancelled_prefill_closes_the_stream(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.batch = 2
    backend = ServerBackend(url)
    model = backend.load_model(backend.model_path, SETTINGS)
    tokens = model.tokenize_text(" ".join(f"w{i}" for i in range(20)))
    cancel = CancelToken()

    def on_progress(p: object) -> None:
        cancel.cancel()

    with pytest.raises(Cancelled):
        model.prefill(tokens, on_progress=on_progress, should_cancel=cancel)
    assert model.context_tokens == tokens[:2]  # what the server said it had evaluated
    assert model.reports == []


def test_a_stream_cut_mid_answer_is_server_lost_with_the_pieces_kept(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.cut_after = 2
    backend = ServerBackend(url)
    model = backend.load_model(backend.model_path, SETTINGS)
    model.prefill(model.tokenize_text("a question"))
    pieces: list[str] = []
    with pytest.raises(ServerLost) as lost:
        for piece in model.generate(max_tokens=50):
            pieces.append(piece)
    assert pieces == REPLY[:2]
    assert lost.value.message == f"The server at {url} ended the answer without finishing it."


def test_an_answer_the_reader_stops_early_is_reported_with_its_slot(stub: tuple[Stub, str]) -> None:
    state, url = stub
    backend = ServerBackend(url)
    model = backend.load_model(backend.model_path, SETTINGS)
    model.prefill(model.tokenize_text("a question"))
    stream = model.generate(max_tokens=50)
    got = [next(stream), next(stream)]  # a wave's note ends at its first sentence: enough
    stream.close()
    assert got == REPLY[:2]
    # The server's report never comes; what the slot wrote is recorded as seen here.
    report = model.reports[-1]
    assert (report.kind, report.slot, report.predicted) == (
        "generate",
        model.slot,
        len(model.tokenize_text("".join(got))),
    )


def test_cancel_closes_the_stream(stub: tuple[Stub, str]) -> None:
    state, url = stub
    backend = ServerBackend(url)
    model = backend.load_model(backend.model_path, SETTINGS)
    model.prefill(model.tokenize_text("a question"))
    cancel = CancelToken()
    got: list[str] = []
    with pytest.raises(Cancelled):
        for piece in model.generate(max_tokens=50, should_cancel=cancel):
            got.append(piece)
            cancel.cancel()
    assert got == REPLY[:1]


def test_each_thread_gets_its_own_slot_and_context(stub: tuple[Stub, str]) -> None:
    state, url = stub
    backend = ServerBackend(url)
    model = backend.load_model(backend.model_path, SETTINGS)
    assert model.slots == 2
    model.prefill(model.tokenize_text("main thread prompt"))
    seen: dict[str, tuple[int, list[int]]] = {}

    def work(name: str) -> None:
        model.prefill(model.tokenize_text(f"{name} reads its own wave"))
        seen[name] = (model.slot, model.context_tokens)

    worker = threading.Thread(target=work, args=("worker",))
    worker.start()
    worker.join()
    assert seen["worker"][0] == 1 and model.slot == 0
    assert model.context_tokens == model.tokenize_text("main thread prompt")
    assert state.slots[1] == seen["worker"][1]


def test_wrong_key_and_unknown_model_name_the_server(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.api_key = "right"
    with pytest.raises(ModelError, match=f"The server at {url} refused the API key"):
        ServerBackend(url, api_key="wrong")
    with pytest.raises(ModelError, match="does not serve a model named 'big'; it serves: stub.gguf"):
        ServerBackend(url, model="big", api_key="right")
    backend = ServerBackend(url, api_key="right")
    assert backend.facts.n_ctx_slot == 2048 and backend.slots == 2 and backend.version == "llama-server b1-stub"
    with pytest.raises(ModelError, match="gives each request a window of 2,048 tokens; this read needs 4,096"):
        backend.load_model(backend.model_path, LoadSettings(n_ctx=4096, n_threads=1))


def _documents(stub: Stub, n: int = 80) -> list[int]:
    return stub.ids(" ".join(f"page{i}" for i in range(n)))


def test_a_slot_file_is_saved_after_a_cold_read_and_restored_by_a_new_client(
    stub: tuple[Stub, str], store: Store
) -> None:
    state, url = stub
    state.files = {}
    docs = _documents(state)
    slots = ServerSlots(store)
    model = ServerBackend(url).open_slot(0, LoadSettings(n_ctx=2048, n_threads=1))
    warm, stats = slots.load(model, docs)
    assert warm.source == "prefill" and warm.saved and stats.evaluated == len(docs)
    [name] = state.files
    assert state.files[name][: len(docs)] == docs
    assert slots.load(model, docs)[0].source == "context"  # still held: nothing asked of the server

    # The server restarted (its slots empty): a new client restores the file, checked.
    state.slots.clear()
    again = ServerBackend(url).open_slot(0, LoadSettings(n_ctx=2048, n_threads=1))
    warm, stats = ServerSlots(store).load(again, docs)
    assert warm.source == "snapshot" and stats.evaluated <= 1
    assert again.reports[-1].cached >= len(docs) - 1 and again.context_tokens == docs


def test_a_restore_the_server_ignores_is_dropped_and_read_again(stub: tuple[Stub, str], store: Store) -> None:
    state, url = stub
    state.files = {}
    docs = _documents(state)
    ServerSlots(store).load(ServerBackend(url).open_slot(0, LoadSettings(n_ctx=2048, n_threads=1)), docs)
    state.slots.clear()
    state.ignore_restore = True  # "restored", but the next request reads everything (SWA)
    model = ServerBackend(url).open_slot(0, LoadSettings(n_ctx=2048, n_threads=1))
    slots = ServerSlots(store)
    warm, _ = slots.load(model, docs)
    assert warm.source == "prefill" and warm.notice is not None
    assert "slot file on the server was dropped: it was not used" in warm.notice and "Reading them again" in warm.notice
    # Not saved again: this server re-reads what it restores (the prompt cache still works).
    assert not warm.saved and slots.refused is not None
    assert store.query("SELECT COUNT(*) AS n FROM server_slots")[0]["n"] == 0
    assert model.context_tokens[: len(docs)] == docs


def test_a_server_without_slot_files_is_asked_once(stub: tuple[Stub, str], store: Store) -> None:
    state, url = stub  # files is None: no --slot-save-path
    slots = ServerSlots(store)
    model = ServerBackend(url).open_slot(0, LoadSettings(n_ctx=2048, n_threads=1))
    warm, _ = slots.load(model, _documents(state))
    assert warm.source == "prefill" and not warm.saved and slots.refused is not None
    asked = sum("filename" in r for r in state.requests)  # the slot actions' bodies
    assert asked == 1
    state.slots.clear()
    slots.load(model, _documents(state, 90))
    assert sum("filename" in r for r in state.requests) == asked
    assert store.query("SELECT COUNT(*) AS n FROM server_slots")[0]["n"] == 0
