"""A local stand-in for the Hugging Face Hub on 127.0.0.1, for the download tests.

It answers the endpoints huggingface_hub 2.x calls (read from its file_download.py and
hf_api.py): ``GET /api/models/{repo}`` (model_info), ``GET /api/models/{repo}/tree/main``
(list_repo_tree: path, size, oid, lfs {oid, size, pointerSize}), ``GET /api/models``
(search), and ``HEAD``/``GET /{repo}/resolve/main/{path}`` with the headers
``get_hf_file_metadata`` reads (``X-Repo-Commit``, ``X-Linked-Etag``, ``X-Linked-Size``,
``ETag``, ``Content-Length``) and Range requests (206 with ``Content-Range``). Unknown
repositories get 404 with ``X-Error-Code: RepoNotFound``, as the Hub answers.

Faults, for the tests: ``cut_after[path] = n`` sends the headers of a whole body, then
``n`` bytes, then closes the connection (once); ``published_sha[path]`` overrides the
SHA-256 the listing publishes; ``chunk_delay`` slows every file's body down. ``log`` records every request: method, path, Range
header, bytes of body sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    sent: int = 0


@dataclass
class FakeHub:
    """Repositories (repo -> {path in repo: file on disk}) served on 127.0.0.1."""

    repos: dict[str, dict[str, Path]] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)
    published_sha: dict[str, str] = field(default_factory=dict)
    #: Files whose hash the listing redacts ("*" x 64, as the Hub does for some gated repos).
    redacted: set[str] = field(default_factory=set)
    #: Seconds to wait after each 64 KiB of a file's body (a slow connection).
    chunk_delay: float = 0.0
    log: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _sha_cache: dict[Path, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def sha256(self, path: Path) -> str:
        if path not in self._sha_cache:
            self._sha_cache[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._sha_cache[path]

    def downloads(self, name: str) -> list[Request]:
        """GET requests of a file's bytes (not HEAD, not the API)."""
        return [r for r in self.log if r.method == "GET" and r.path.endswith("/resolve/main/" + name)]

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _json(self, body: object, status: int = 200, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _not_found(self, code: str) -> None:
                self._json({"error": code}, status=404, headers={"X-Error-Code": code, "X-Error-Message": code})

            def _serve(self, *, head: bool) -> None:
                url = urlsplit(self.path)
                path = unquote(url.path)
                record = Request(self.command, path, self.headers.get("Range"))
                hub.log.append(record)
                if path == "/api/models":
                    query = parse_qs(url.query).get("search", [""])[0].lower()
                    self._json([{"id": r, "modelId": r} for r in hub.repos if query in r.lower()])
                    return
                api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(/tree/main|/revision/main)?", path)
                if api:
                    repo = api.group(1)
                    if repo not in hub.repos:
                        self._not_found("RepoNotFound")
                        return
                    entries = [self._entry(name, file) for name, file in sorted(hub.repos[repo].items())]
                    if api.group(2) == "/tree/main":
                        self._json(entries)
                    else:
                        self._json({"id": repo, "sha": COMMIT, "siblings": [{"rfilename": e["path"]} for e in entries]})
                    return
                resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/main/(.+)", path)
                if not resolve or resolve.group(1) not in hub.repos:
                    self._not_found("RepoNotFound")
                    return
                files = hub.repos[resolve.group(1)]
                name = resolve.group(2)
                if name not in files:
                    self._not_found("EntryNotFound")
                    return
                self._send_file(name, files[name], head=head, record=record)

            def _entry(self, name: str, file: Path) -> dict[str, object]:
                size = file.stat().st_size
                sha = hub.published_sha.get(name, hub.sha256(file))
                if name in hub.redacted:
                    sha = "*" * 64
                return {
                    "type": "file",
                    "path": name,
                    "size": size,
                    "oid": hashlib.sha1(name.encode()).hexdigest(),
                    "lfs": {"oid": sha, "size": size, "pointerSize": 134},
                }

            def _send_file(self, name: str, file: Path, *, head: bool, record: Request) -> None:
                size = file.stat().st_size
                sha = hub.published_sha.get(name, hub.sha256(file))
                start, end = 0, size - 1
                status = 200
                wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
                if wanted and not head:
                    start = int(wanted.group(1))
                    end = min(int(wanted.group(2)), size - 1) if wanted.group(2) else size - 1
                    status = 206
                length = end - start + 1
                self.send_response(status)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                self.send_header("ETag", f'"{sha}"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(size))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.end_headers()
                if head:
                    return
                cut = hub.cut_after.pop(name, None)
                limit = length if cut is None else min(cut, length)
                with file.open("rb") as fh:
                    fh.seek(start)
                    while record.sent < limit:
                        chunk = fh.read(min(1 << 16, limit - record.sent))
                        if not chunk:
                            break
                        try:
                            self.wfile.write(chunk)
                        except (BrokenPipeError, ConnectionResetError):
                            return  # the client went away (a cancel)
                        record.sent += len(chunk)
                        if hub.chunk_delay:
                            time.sleep(hub.chunk_delay)
                if cut is not None:
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
