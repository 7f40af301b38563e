"""The runtime on an OpenAI-compatible inference server (issue 16): llama.cpp's
``llama-server`` first, spread over machines with its RPC backend or not.

Contract:
- ``ServerBackend(url, model=..., api_key=...)`` connects at once: it checks the URL
  (``check_server_url``: plain HTTP only to loopback or private addresses unless the
  caller allows it), reads ``/v1/models`` (which model, its vocabulary and trained
  window) and ``/props`` (the window each slot has, the number of slots, the chat
  template, the build). A server that is down, a wrong key or a model name the server
  does not serve raise ``ModelError`` naming the server, before anything is read.
- The engine above sees the same ``Backend`` / ``Model`` / ``Tokenizer`` protocols as
  in-process llama.cpp (engine/runtime/backend.py). The "model path" of a server model
  is ``Path(<model id>)`` (a name for display, never opened); ``model_sha256(path)`` is a
  digest of the server and the model's facts: the key of token caches and calibrations.
- Tokens are the server's own (``/tokenize``, ``/detokenize``), so counts are exact.
  The chat template is the server's (from ``/props``), rendered by the engine as a
  local model's is. The window is the server's per-slot window (``/props``
  ``default_generation_settings.n_ctx``): ``n_ctx_train`` reports it, so the planner's
  budget and the overflow message use what the server can actually hold.
- A ``ServerModel`` is pinned to one slot (``id_slot``) and keeps the tokens it believes
  that slot holds. ``prefill`` sends the whole prompt in one streamed request with
  ``cache_prompt`` and ``return_progress``: the server reuses the longest prefix its slot
  holds and reports progress after each batch it evaluates, so progress and cancel work
  as locally (a cancel closes the stream). Every request sends the whole prompt: a slot
  that lost its cache (another client, a restart) costs time, never correctness. What
  the server evaluated and reused is taken from its report (``timings.cache_n`` /
  ``prompt_n``), never assumed: ``reports`` keeps each one.
- ``generate`` streams ``/completion`` (llama-server's native endpoint gives the token ids
  with ``return_tokens``); closing the stream on cancel makes llama-server stop the task.
  A server that dies mid-answer raises ``ServerLost``: the reader keeps the partial
  answer and the run is marked interrupted.
- No logits leave the server: ``last_logits`` raises ``GenerationError``, and KV
  snapshots on local disk are not offered (``save_sequence`` / ``load_sequence`` raise,
  so the caller reads cold through the server's prompt cache). Warm documents across
  server restarts use the slot's own save/restore (``save_slot`` / ``restore_slot``,
  llama-server ``--slot-save-path``), verified by what the server reports after the
  restore: a restore the server silently ignores or re-reads (sliding-window and hybrid
  models) raises ``SlotRestoreInvalid``.
- ``slots`` is how many requests the server runs at once (``--parallel``, ``/props``
  ``total_slots``). A ``ServerModel`` serves one request per thread, each thread on its
  own slot with its own context (the waves' map mode calls ``prefill`` then ``generate``
  from ``slots`` threads); within one thread it is one sequence, like every ``Model``.
  ``open_slot(i)`` gives a model whose first thread uses slot ``i``. Each request opens
  its own connection.
- The API key goes into the ``Authorization`` header and nowhere else: it is not part of
  any message, ``repr`` or digest.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import numpy as np

from engine.errors import Cancelled, ConfigError, GenerationError, ModelError, ServerLost
from engine.models.gguf import ModelInfo
from engine.runtime.backend import (
    CancelFn,
    KvType,
    LoadSettings,
    OneAtATime,
    PrefillProgress,
    PrefillStats,
    ProgressFn,
)

#: Seconds to wait for a server's answer to a short request (tokenize, props).
REQUEST_TIMEOUT_S: Final = 30.0
#: Seconds to wait between two pieces of a stream or for one prefill batch.
STREAM_TIMEOUT_S: Final = 600.0


class SlotRestoreInvalid(GenerationError):
    """The server said it restored a slot but its report shows it did not use it."""


def check_server_url(url: str, *, allow_plain_http: bool = False) -> str:
    """Return ``url`` without a trailing slash if Longread may send documents there.

    Plain HTTP carries documents and the key in the clear: it is allowed to loopback
    and private addresses (a laptop, an office network) and elsewhere only when the
    user confirms (``allow_plain_http``). A host name counts as private only if every
    address it resolves to is.

    Raises:
        ConfigError: not an http(s) URL, or plain HTTP to a public address unconfirmed.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not a server URL: write it as http://host:port or https://host:port.")
    if parts.scheme == "http" and not allow_plain_http and not _is_private_host(parts.hostname):
        raise ConfigError(
            f"The server {parts.hostname} is not on this machine or a private network, and {url} is plain "
            "HTTP: your documents would cross the network unencrypted. Use https://, or confirm with "
            "--allow-plain-http."
        )
    return url.strip().rstrip("/")


def _is_private_host(host: str) -> bool:
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return bool(addresses) and all(a.is_loopback or a.is_private or a.is_link_local for a in addresses)


@dataclass(frozen=True)
class ServerReport:
    """What the server said it did for one request (llama-server's ``timings``)."""

    kind: str  # "prefill", "generate" or "complete" (a check or a one-off request)
    slot: int
    prompt_tokens: int  # tokens the request sent
    cached: int  # tokens of them the slot reused (``timings.cache_n``)
    evaluated: int  # tokens of them the server evaluated (``timings.prompt_n``)
    predicted: int  # tokens it generated


@dataclass(frozen=True)
class SlotSnapshot:
    """A slot saved on the server (``--slot-save-path``): which file, which tokens, and
    the greedy next token after them (the check a restore must reproduce)."""

    filename: str
    tokens: tuple[int, ...]
    next_token: int
    bytes_written: int


@dataclass
class _SlotState:
    slot: int
    context: list[int] = field(default_factory=list)


@dataclass
class _Facts:
    url: str
    model_id: str
    version: str
    slots: int
    n_ctx_slot: int
    n_ctx_train: int
    n_vocab: int
    n_params: int
    size: int
    chat_template: str | None
    props: dict[str, Any] = field(repr=False)


class _Http:
    """One server's HTTP: JSON requests and server-sent-event streams, each on its own
    connection; every failure becomes an ``EngineError`` that names the server."""

    def __init__(self, url: str, api_key: str | None) -> None:
        parts = urlsplit(url)
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"_Http({self.url!r})"

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, timeout: float
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connect(timeout)
        data = json.dumps(body).encode() if body is not None else None
        try:
            conn.request(method, self._prefix + path, body=data, headers=self._headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ModelError(f"The server at {self.url} does not answer ({_reason(exc)}). Is it running?") from exc
        if response.status >= 400:
            try:
                text = response.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                text = ""
            finally:
                conn.close()
            raise _http_error(self.url, path, response.status, text)
        return conn, response

    def get(self, path: str, *, timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        return self._json("GET", path, None, timeout)

    def post(self, path: str, body: dict[str, Any], *, timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        return self._json("POST", path, body, timeout)

    def _json(self, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
        conn, response = self._send(method, path, body, timeout)
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ServerLost(f"The server at {self.url} stopped answering ({_reason(exc)}).") from exc
        finally:
            conn.close()
        try:
            out = json.loads(raw)
        except ValueError as exc:
            raise ModelError(f"The server at {self.url} sent something that is not JSON for {path}.") from exc
        if not isinstance(out, dict):
            return {"data": out}
        return out

    def stream(
        self, path: str, body: dict[str, Any], *, timeout: float = STREAM_TIMEOUT_S
    ) -> Generator[dict[str, Any], None, None]:
        """Yield each server-sent event's JSON; closing the generator closes the
        connection (llama-server then stops the task)."""
        conn, response = self._send("POST", path, body, timeout)
        try:
            while True:
                try:
                    line = response.readline()
                except (OSError, http.client.HTTPException) as exc:
                    raise ServerLost(f"The server at {self.url} stopped mid-answer ({_reason(exc)}).") from exc
                if not line:
                    return
                text = line.decode("utf-8", "replace").strip()
                if not text.startswith("data:"):
                    continue
                payload = text[len("data:") :].strip()
                if payload == "[DONE]":
                    return
                try:
                    event = json.loads(payload)
                except ValueError as exc:
                    raise ServerLost(f"The server at {self.url} sent a broken stream event.") from exc
                if isinstance(event, dict) and "error" in event:
                    raise GenerationError(f"The server at {self.url} failed: {_error_text(event)}")
                yield event
        finally:
            conn.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead | http.client.RemoteDisconnected | ConnectionResetError):
        return "the connection closed"
    return str(exc) or type(exc).__name__


def _error_text(event: dict[str, Any]) -> str:
    err = event.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)


def _http_error(url: str, path: str, status: int, text: str) -> ModelError | GenerationError:
    try:
        detail = _error_text(json.loads(text))
    except (ValueError, AttributeError):
        detail = text.strip()[:200]
    if status in (401, 403):
        return ModelError(
            f"The server at {url} refused the API key (HTTP {status}). Check the key (LONGREAD_SERVER_API_KEY "
            "or the system keyring)."
        )
    if status == 503:
        return ModelError(f"The server at {url} is not ready (HTTP 503: {detail or 'loading the model'}).")
    if path.startswith(("/completion", "/slots")):
        return GenerationError(f"The server at {url} failed (HTTP {status}): {detail}")
    return ModelError(f"The server at {url} failed on {path} (HTTP {status}): {detail}")


def _read_facts(http_: _Http, model: str | None) -> _Facts:
    listing = http_.get("/v1/models")
    entries = [e for e in listing.get("data", []) if isinstance(e, dict) and "id" in e]
    if not entries:
        raise ModelError(f"The server at {http_.url} serves no model.")
    ids = [str(e["id"]) for e in entries]
    if model is None:
        entry = entries[0]
    else:
        found = [e for e in entries if e["id"] == model or Path(str(e["id"])).name == model]
        if not found:
            raise ModelError(
                f"The server at {http_.url} does not serve a model named {model!r}; it serves: {', '.join(ids)}."
            )
        entry = found[0]
    props = http_.get("/props")
    meta = entry.get("meta") or {}
    generation = props.get("default_generation_settings") or {}
    n_ctx_slot = int(generation.get("n_ctx") or 0)
    if n_ctx_slot <= 0:
        raise ModelError(f"The server at {http_.url} does not say how large its window is (/props).")
    build = props.get("build_info")
    return _Facts(
        url=http_.url,
        model_id=str(entry["id"]),
        version=f"llama-server {build}" if build else "server",
        slots=max(1, int(props.get("total_slots") or 1)),
        n_ctx_slot=n_ctx_slot,
        n_ctx_train=int(meta.get("n_ctx_train") or n_ctx_slot),
        n_vocab=int(meta.get("n_vocab") or 0),
        n_params=int(meta.get("n_params") or 0),
        size=int(meta.get("size") or 0),
        chat_template=props.get("chat_template") or None,
        props=props,
    )


class ServerTokenizer:
    """The server model's vocabulary (``/tokenize``, ``/detokenize``) and chat template.

    ``n_ctx_train`` is the window one request may use on this server (its slot's), not
    the model's trained length: the reader budgets against what the server can hold.
    """

    def __init__(self, backend: ServerBackend) -> None:
        self._backend = backend
        self.path = backend.model_path

    @property
    def chat_template(self) -> str | None:
        return self._backend.facts.chat_template

    @property
    def n_ctx_train(self) -> int:
        return self._backend.facts.n_ctx_slot

    def tokenize_text(self, text: str) -> list[int]:
        """Document or user text: never special tokens, no BOS."""
        return self._tokenize(text, special=False, add_bos=False)

    def tokenize_template(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Chat-template text, where special tokens are meant."""
        return self._tokenize(text, special=True, add_bos=add_bos)

    def _tokenize(self, text: str, *, special: bool, add_bos: bool) -> list[int]:
        if not text:
            return []
        out = self._backend.http.post("/tokenize", {"content": text, "add_special": add_bos, "parse_special": special})
        return [int(t) for t in out.get("tokens", [])]

    def detokenize(self, tokens: Sequence[int]) -> str:
        if not tokens:
            return ""
        out = self._backend.http.post("/detokenize", {"tokens": [int(t) for t in tokens]})
        return str(out.get("content", ""))

    def close(self) -> None:
        """Nothing to free: the server keeps the model."""


class ServerModel(OneAtATime, ServerTokenizer):
    """One slot of the server: the tokens it holds, prefill and generation through it."""

    def __init__(self, backend: ServerBackend, *, slot: int, settings: LoadSettings) -> None:
        super().__init__(backend)
        #: How many requests this model serves at once: one per thread, each on its own
        #: slot (map-mode waves call ``prefill`` then ``generate`` from that many threads).
        self.slots = backend.slots
        self.n_threads = settings.n_threads
        self._kv_type = settings.kv_type
        self._n_batch = settings.n_batch
        self._first_slot = slot
        self._states: dict[int, _SlotState] = {}
        self._lock = threading.Lock()
        #: What the server reported for each request, in order (tests and benchmarks
        #: read prefix reuse from here).
        self.reports: list[ServerReport] = []

    @property
    def _state(self) -> _SlotState:
        """The calling thread's slot and the tokens it holds. The first thread gets the slot
        the model was opened on; each other live thread a slot no live thread uses (the
        next one round the server's slots if all are taken: the server then queues)."""
        me = threading.get_ident()
        state = self._states.get(me)
        if state is not None:
            return state
        with self._lock:
            alive = {t.ident for t in threading.enumerate()}
            self._states = {k: v for k, v in self._states.items() if k in alive}
            used = {v.slot for v in self._states.values()}
            order = [(self._first_slot + i) % self.slots for i in range(self.slots)]
            free = [n for n in order if n not in used]
            slot = free[0] if free else order[len(self._states) % self.slots]
            state = self._states[me] = _SlotState(slot)
        return state

    @property
    def slot(self) -> int:
        """The slot the calling thread's requests go to."""
        return self._state.slot

    @property
    def _context(self) -> list[int]:
        return self._state.context

    @_context.setter
    def _context(self, tokens: list[int]) -> None:
        self._state.context = tokens

    @property
    def kv_type(self) -> KvType:
        """The KV type the reader asked for; the server's own flags decide the real one."""
        return self._kv_type

    @property
    def runtime_version(self) -> str:
        return self._backend.version

    @property
    def server(self) -> tuple[str, str]:
        """The server's URL and the model's name there (what a slot file belongs to)."""
        return self._backend.url, self._backend.facts.model_id

    @property
    def n_ctx(self) -> int:
        return self._backend.facts.n_ctx_slot

    @property
    def n_batch(self) -> int:
        return self._n_batch

    @property
    def n_vocab(self) -> int:
        return self._backend.facts.n_vocab

    @property
    def flash_attn(self) -> bool:
        return False

    @property
    def n_tokens(self) -> int:
        return len(self._context)

    @property
    def context_tokens(self) -> list[int]:
        return list(self._context)

    def _body(self, tokens: Sequence[int], **extra: Any) -> dict[str, Any]:
        return {
            "prompt": [int(t) for t in tokens],
            "cache_prompt": True,
            "id_slot": self.slot,
            "model": self._backend.facts.model_id,
            **extra,
        }

    def _record(self, kind: str, sent: int, answer: dict[str, Any]) -> ServerReport:
        timings = answer.get("timings") or {}
        report = ServerReport(
            kind=kind,
            slot=self.slot,
            prompt_tokens=sent,
            cached=int(timings.get("cache_n", answer.get("tokens_cached", 0)) or 0),
            evaluated=int(timings.get("prompt_n", 0) or 0),
            predicted=int(timings.get("predicted_n", 0) or 0),
        )
        self.reports.append(report)
        return report

    def complete(self, tokens: Sequence[int], *, n_predict: int) -> tuple[list[int], ServerReport]:
        """Run one greedy completion of ``tokens`` on this slot without streaming.

        Returns:
            the generated token ids and the server's report.
        """
        body = self._body(tokens, n_predict=n_predict, temperature=0.0, return_tokens=True, stream=False)
        answer = self._backend.http.post("/completion", body, timeout=STREAM_TIMEOUT_S)
        return [int(t) for t in answer.get("tokens", [])], self._record("complete", len(tokens), answer)

    def prefill(
        self,
        tokens: Sequence[int],
        *,
        on_progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> PrefillStats:
        """Make the slot hold ``tokens``: one streamed request (``n_predict`` 0) whose
        ``prompt_progress`` events the server sends after each batch it evaluates.

        The server decides what it reuses (the longest prefix its slot holds): the stats
        are its report, not our belief. ``should_cancel`` is checked at each event; a
        cancel closes the stream and llama-server stops the task.

        Raises:
            GenerationError: no tokens, more than the slot's window, or the server failed.
            Cancelled: ``should_cancel`` returned True (the context then holds what the
                server reported evaluated).
        """
        total = len(tokens)
        if total == 0:
            raise GenerationError("There is nothing to read: the prompt is empty.")
        if total > self.n_ctx:
            raise GenerationError(
                f"The prompt has {total:,} tokens but the server at {self._backend.url} gives a request {self.n_ctx:,}."
            )
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        prompt = [int(t) for t in tokens]
        body = self._body(prompt, n_predict=0, stream=True, return_progress=True, return_tokens=True)
        start = time.perf_counter()
        held = 0
        events = self._backend.http.stream("/completion", body)
        try:
            for event in events:
                progress = event.get("prompt_progress")
                if isinstance(progress, dict):
                    cache, held = int(progress.get("cache", 0)), int(progress.get("processed", 0))
                    if on_progress is not None:
                        elapsed = time.perf_counter() - start
                        rate = (held - cache) / elapsed if elapsed > 0 else 0.0
                        eta = (total - held) / rate if rate > 0 else 0.0
                        on_progress(PrefillProgress(held, total, rate, eta, cache))
                if event.get("stop"):
                    report = self._record("prefill", total, event)
                    self._context = prompt
                    return PrefillStats(
                        evaluated=report.evaluated, reused=report.cached, seconds=time.perf_counter() - start
                    )
                if should_cancel is not None and should_cancel():
                    self._context = prompt[:held]
                    raise Cancelled()
        finally:
            events.close()
        self._context = prompt[:held]
        raise ServerLost(f"The server at {self._backend.url} stopped while reading the prompt.")

    def generate(
        self,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        should_cancel: CancelFn | None = None,
    ) -> Iterator[str]:
        """Stream the answer after the slot's context, piece by piece.

        Raises:
            Cancelled: ``should_cancel`` returned True (the stream is closed: the server stops).
            ServerLost: the server went away mid-answer (the pieces so far were yielded).
            GenerationError: the server refused the request.
        """
        room = self.n_ctx - len(self._context)
        if room <= 0 or max_tokens <= 0:
            return
        body = self._body(
            self._context,
            n_predict=min(max_tokens, room),
            temperature=temperature,
            seed=seed,
            stream=True,
            return_tokens=True,
        )
        sent = len(self._context)
        received = 0
        events = self._backend.http.stream("/completion", body)
        try:
            for event in events:
                if should_cancel is not None and should_cancel():
                    raise Cancelled()
                tokens = [int(t) for t in event.get("tokens", [])]
                self._context.extend(tokens)
                received += len(tokens)
                piece = event.get("content") or ""
                if piece:
                    yield piece
                if event.get("stop"):
                    self._record("generate", sent, event)
                    return
        except GeneratorExit:
            # The reader had what it wanted (a wave's note ended at its first sentence) and
            # closed the stream: the server stops, its report never comes; what this slot
            # wrote is recorded as seen here.
            self._record("generate", sent, {"timings": {"predicted_n": received}})
            raise
        finally:
            events.close()
        raise ServerLost(f"The server at {self._backend.url} ended the answer without finishing it.")

    def last_logits(self) -> np.ndarray:
        raise GenerationError(f"The server at {self._backend.url} does not send logits.")

    def save_sequence(self, path: Path) -> int:
        raise GenerationError(
            "a server keeps the document in its own prompt cache (and slot files with --slot-save-path), "
            "not on this disk"
        )

    def load_sequence(self, path: Path, *, max_tokens: int) -> list[int]:
        raise GenerationError("a server model cannot load a local snapshot")

    def clear(self) -> None:
        """Forget what the slot holds (the server's cache is overwritten by the next prompt)."""
        self._context = []

    # -- composing documents (issue 17): the server keeps its own cache ----------------

    @property
    def can_shift(self) -> str | None:
        return "a server keeps its cache on the server, where this computer cannot move it"

    def save_range(self, path: Path, start: int, end: int) -> int:
        raise GenerationError("a server model cannot save part of its cache on this disk")

    def logits_after_each(self, tokens: Sequence[int]) -> np.ndarray:
        raise GenerationError("a server model does not return the logits of every token")

    def compose(
        self,
        parts: Sequence[tuple[Path, int]],
        *,
        tokens: Sequence[int],
        recompute: Sequence[tuple[int, int]],
    ) -> PrefillStats:
        raise GenerationError("a server model cannot assemble local snapshots")

    # -- slot files (llama-server --slot-save-path) -------------------------------

    def save_slot(self, filename: str) -> SlotSnapshot:
        """Save the slot's cache on the server as ``filename`` (in its --slot-save-path).

        The slot is first made to hold exactly the context (the check: the greedy token
        that follows it, kept in the snapshot).

        Raises:
            GenerationError: the context is empty, or the server has no slot-save path or
                saved a different number of tokens than the slot holds.
        """
        tokens = tuple(self._context)
        if not tokens:
            raise GenerationError("There is nothing in the slot to save.")
        generated, _ = self.complete(tokens, n_predict=1)
        if not generated:
            raise GenerationError(f"The server at {self._backend.url} gave no token after the context.")
        out = self._backend.http.post(f"/slots/{self.slot}?action=save", {"filename": filename})
        saved = int(out.get("n_saved", -1))
        if saved < len(tokens):
            raise GenerationError(
                f"The server at {self._backend.url} saved {saved:,} tokens of the slot's {len(tokens):,}."
            )
        return SlotSnapshot(filename, tokens, generated[0], int(out.get("n_written", 0)))

    def restore_slot(self, snapshot: SlotSnapshot) -> ServerReport:
        """Restore ``snapshot`` into this slot and check the server really uses it.

        The check, as for local snapshots (engine/warm.py): the server must report that it
        reused all but the last token (``timings.cache_n``) and give the same greedy next
        token as when it was saved. A restore the server ignores or re-reads (llama.cpp
        with sliding-window or hybrid models, issues #26676, #27813, #28194) fails it.

        Returns:
            the server's report for the check request.

        Raises:
            SlotRestoreInvalid: the server did not restore it, re-read it, or answers otherwise.
            GenerationError: the server has no such file or no slot-save path.
        """
        self._context = []
        out = self._backend.http.post(f"/slots/{self.slot}?action=restore", {"filename": snapshot.filename})
        restored = int(out.get("n_restored", -1))
        tokens = list(snapshot.tokens)
        if restored < len(tokens):
            raise SlotRestoreInvalid(
                f"The server at {self._backend.url} restored {restored:,} of {len(tokens):,} tokens of "
                f"{snapshot.filename}."
            )
        generated, report = self.complete(tokens, n_predict=1)
        if report.cached < len(tokens) - 1:
            raise SlotRestoreInvalid(
                f"The server at {self._backend.url} said it restored {snapshot.filename} but then reused only "
                f"{report.cached:,} of its {len(tokens):,} tokens (known for sliding-window and hybrid models): "
                "it read the document again."
            )
        if generated[:1] != [snapshot.next_token]:
            raise SlotRestoreInvalid(
                f"The slot restored from {snapshot.filename} on {self._backend.url} answers differently than "
                "when it was saved."
            )
        self._context = tokens
        return report

    def slot_state(self) -> dict[str, Any]:
        """The server's view of this slot (``/slots``): whether it is working now."""
        listing = self._backend.http.get("/slots")
        for entry in listing.get("data", []):
            if isinstance(entry, dict) and int(entry.get("id", -1)) == self.slot:
                return entry
        raise GenerationError(f"The server at {self._backend.url} does not list slot {self.slot}.")


class ServerBackend:
    """A model on an OpenAI-compatible server (llama-server), behind the ``Backend`` protocol.

    Args:
        url: the server, http(s)://host:port.
        model: the model's name on the server (default: the first it serves).
        api_key: sent as a bearer token (never stored or logged).
        allow_plain_http: the user confirmed plain HTTP to a public address.

    Raises:
        ConfigError: the URL is not allowed (see ``check_server_url``).
        ModelError: the server is down, refuses the key, or does not serve ``model``.
    """

    name = "server"
    remote = True

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        allow_plain_http: bool = False,
    ) -> None:
        self.url = check_server_url(url, allow_plain_http=allow_plain_http)
        self.http = _Http(self.url, api_key)
        self.facts = _read_facts(self.http, model)
        self.version = self.facts.version
        self.slots = self.facts.slots
        self._next_slot = 0

    def __repr__(self) -> str:
        return f"ServerBackend({self.url!r}, model={self.facts.model_id!r})"

    @property
    def model_path(self) -> Path:
        """The model's name on the server as a path (for display; never opened)."""
        return Path(Path(self.facts.model_id).name)

    def model_sha256(self, path: Path) -> str:
        """What identifies this model on this server (token caches, calibrations)."""
        f = self.facts
        ident = f"{f.url}|{f.model_id}|{f.n_params}|{f.size}|{f.n_vocab}|{f.version}"
        return hashlib.sha256(ident.encode()).hexdigest()

    def describe_system(self) -> str:
        f = self.facts
        return f"{f.version} at {f.url}: {f.slots} slot(s) of {f.n_ctx_slot:,} tokens"

    def inspect_model(self, path: Path) -> ModelInfo:
        """The model's facts as the server reports them (layers and heads are unknown here:
        the server's memory is not this machine's, so nothing is planned from them)."""
        f = self.facts
        return ModelInfo(
            path=path,
            file_size=f.size,
            architecture="server",
            name=f.model_id,
            parameter_count=f.n_params,
            file_type="",
            context_length=f.n_ctx_slot,
            n_layers=0,
            n_head=0,
            n_head_kv=(),
            key_length=0,
            value_length=0,
            embedding_length=0,
            sliding_window=None,
            sliding_window_pattern=None,
            chat_template=f.chat_template,
            vocab_size=f.n_vocab,
            bos_token_id=None,
            eos_token_id=None,
            rope_scaling=None,
            metadata=MappingProxyType({}),
        )

    def load_tokenizer(self, path: Path) -> ServerTokenizer:
        return ServerTokenizer(self)

    def load_model(self, path: Path, settings: LoadSettings) -> ServerModel:
        """Slot 0 of the server, if its window holds ``settings.n_ctx`` tokens.

        Raises:
            ModelError: the server's per-slot window is smaller than the read needs.
        """
        return self.open_slot(0, settings)

    def open_slot(self, slot: int, settings: LoadSettings) -> ServerModel:
        """A model pinned to ``slot`` (0 .. ``slots`` - 1), for parallel work.

        Raises:
            ModelError: no such slot, or its window is smaller than ``settings.n_ctx``.
        """
        f = self.facts
        if not 0 <= slot < f.slots:
            raise ModelError(f"The server at {f.url} has {f.slots} slot(s); there is no slot {slot}.")
        if settings.n_ctx > f.n_ctx_slot:
            raise ModelError(
                f"The server at {f.url} gives each request a window of {f.n_ctx_slot:,} tokens; this read needs "
                f"{settings.n_ctx:,}. Start llama-server with a larger -c (it is split over its --parallel slots)."
            )
        return ServerModel(self, slot=slot, settings=settings)
