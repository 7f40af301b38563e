"""Get a model from the Hugging Face Hub: suggested models, any repository's GGUF files,
and downloads that resume, are checked, and are inspected before they are offered.

The contract:

- ``curated_models()`` is the short list Longread suggests (``curated.toml`` beside this
  module: data, not code), each with its trained window, licence and sizes per
  quantization. ``search_curated(query)`` filters it.
- ``Hub(endpoint=...)`` talks to the Hub through ``huggingface_hub`` (``HF_ENDPOINT`` when
  no endpoint is given). ``list_files(repo)`` lists a repository's GGUF models with their
  sizes and the SHA-256 the Hub publishes for each LFS file; the parts of a split model
  (``name-00001-of-00003.gguf``) are one ``HubFile``. ``search(query)`` asks the Hub for GGUF
  repositories. ``inspect(file)`` reads the model's GGUF header by HTTP ranges (a few MB,
  never the weights) so the planner can say what fits here before anything is
  downloaded (``describe_fit``).
- ``Hub.download(file, root=...)`` fetches every part into ``root/.partial/`` (a folder
  discovery skips) under a ``.part`` name, resuming from the bytes already there after a
  cut, a cancel or a restart (``huggingface_hub``'s ``http_get`` with a Range header;
  since huggingface_hub 1.x ``hf_hub_download`` deletes its partial file on failure, so it
  cannot resume across calls). Each part's SHA-256 is checked against the Hub's LFS oid
  (a mismatch removes the part: ``ChecksumError``), the model is inspected with
  ``inspect_gguf`` (all parts present), and only then are the parts renamed into
  ``root/<org>/<repo>/``, the first part last: nothing half-written or unchecked is ever
  where the model picker looks (``engine.models.discover`` lists ``models_dir()``).
- Free disk space is checked before a byte is fetched, and ENOSPC (or EFBIG past a file
  size limit) while writing becomes ``DiskFullError``; a Hub that cannot be reached is
  ``OfflineError``. Both keep the partial bytes for the next try.
- ``installed_models(root)`` and ``remove_model(name, root=...)`` manage what was
  downloaded; nothing outside ``root`` is ever removed.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import shutil
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, cast

from engine.config import data_dir
from engine.errors import (
    Cancelled,
    ChecksumError,
    DiskFullError,
    DownloadError,
    ModelFileError,
    OfflineError,
)
from engine.models.discover import is_model_file
from engine.models.gguf import ModelInfo, inspect_gguf, inspect_gguf_handle
from engine.planning import make_plan
from engine.units import format_bytes, format_duration

if TYPE_CHECKING:
    from engine.store.db import CalibrationRow

__all__ = [
    "CuratedFile",
    "CuratedModel",
    "DownloadProgress",
    "Hub",
    "HubFile",
    "HubPart",
    "InstalledModel",
    "curated_models",
    "describe_fit",
    "free_disk_bytes",
    "installed_models",
    "models_dir",
    "parse_spec",
    "remove_model",
    "search_curated",
    "stored_calibrations",
]

PARTIAL_DIR: Final = ".partial"
_SPLIT: Final = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_QUANT: Final = re.compile(
    r"(?:^|[-_.])((?:UD-)?(?:I?Q\d(?:_[0-9A-Z]+)*|F16|BF16|F32|MXFP4(?:_MOE)?|TQ\d_\d))(?=[-_.]|$)", re.IGNORECASE
)
_SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
# Disk left free beyond the download itself (the OS and the SQLite store need room too).
_DISK_MARGIN: Final = 64 << 20
# Bytes per Range request when reading a remote header (GGUF headers are 1-10 MB).
_REMOTE_BLOCK: Final = 2 << 20
# How often progress is reported to the caller (seconds).
_REPORT_EVERY: Final = 0.2
_DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_TIMEOUT: Final = 20.0


# --- the curated list ----------------------------------------------------------------


@dataclass(frozen=True)
class CuratedFile:
    """One quantization of a suggested model: file name, quantization, about how big."""

    file: str
    quant: str
    size_bytes: int


@dataclass(frozen=True)
class CuratedModel:
    """A model Longread suggests, and why."""

    repo: str
    title: str
    context: int
    licence: str
    why: str
    recommended: str
    files: tuple[CuratedFile, ...]

    def describe(self) -> str:
        """One line: title, window, licence, sizes."""
        sizes = ", ".join(f"{f.quant} about {format_bytes(f.size_bytes)}" for f in self.files)
        return f"{self.title} ({self.repo}): {self.context:,}-token window; {self.licence}; {sizes}"


@functools.cache
def curated_models() -> tuple[CuratedModel, ...]:
    """The models Longread suggests, from ``curated.toml``."""
    text = resources.files("engine.models").joinpath("curated.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return tuple(
        CuratedModel(
            repo=entry["repo"],
            title=entry["title"],
            context=int(entry["context"]),
            licence=entry["licence"],
            why=entry["why"],
            recommended=entry["recommended"],
            files=tuple(CuratedFile(f["file"], f["quant"], int(float(f["size_gb"]) * 1e9)) for f in entry["files"]),
        )
        for entry in data["model"]
    )


def search_curated(query: str = "") -> list[CuratedModel]:
    """The suggested models whose repository, title, licence or note mention every word of ``query``."""
    words = query.lower().split()
    found = []
    for model in curated_models():
        text = f"{model.repo} {model.title} {model.licence} {model.why}".lower()
        if all(word in text for word in words):
            found.append(model)
    return found


# --- what the Hub holds ----------------------------------------------------------------


@dataclass(frozen=True)
class HubPart:
    """One file in a repository: its path, size and (for LFS files) the Hub's SHA-256."""

    path: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class HubFile:
    """A GGUF model in a repository: one file, or the parts of a split model in order."""

    repo: str
    parts: tuple[HubPart, ...]

    @property
    def name(self) -> str:
        """The path of the (first) file in the repository."""
        return self.parts[0].path

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def quant(self) -> str:
        """The quantization its name says (``Q4_K_M``), or ``""``."""
        stem = Path(self.name).name[: -len(".gguf")]
        split = _SPLIT.match(Path(self.name).name)
        if split:
            stem = split.group("prefix")
        found = _QUANT.findall(stem)
        return found[-1].upper() if found else ""

    def describe(self) -> str:
        parts = f" in {len(self.parts)} parts" if len(self.parts) > 1 else ""
        return f"{self.name} — {format_bytes(self.size)}{parts}"


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split ``org/repo`` or ``org/repo/path/to/file.gguf`` (a Hub URL works too).

    Raises:
        DownloadError: the text does not name a repository.
    """
    text = spec.strip()
    for prefix in ("https://huggingface.co/", "http://huggingface.co/", "hf://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = re.sub(r"/(?:blob|resolve|tree)/[^/]+/", "/", text).strip("/")
    pieces = text.split("/")
    if len(pieces) < 2 or not all(pieces[:2]):
        raise DownloadError(
            f"{spec!r} does not name a Hugging Face repository: write it as org/name (or org/name/file.gguf)."
        )
    repo = "/".join(pieces[:2])
    file = "/".join(pieces[2:]) or None
    return repo, file


def group_gguf_files(repo: str, parts: Sequence[HubPart]) -> list[HubFile]:
    """Group a repository's files into models: single GGUFs, and split models whose parts
    are all there (an incomplete split cannot be loaded and is left out); vision
    projectors and non-GGUF files are left out."""
    singles: list[HubFile] = []
    splits: dict[tuple[str, int], dict[int, HubPart]] = {}
    for part in parts:
        name = Path(part.path).name
        if not name.lower().endswith(".gguf") or "mmproj" in name.lower():
            continue
        pieces = part.path.split("/")
        if part.path.startswith("/") or "\\" in part.path or any(p in ("", ".", "..") for p in pieces):
            continue  # a path that would land outside the model's folder: never from a real Hub
        match = _SPLIT.match(name)
        if match:
            folder = str(Path(part.path).parent)
            key = (f"{folder}/{match.group('prefix')}", int(match.group("count")))
            splits.setdefault(key, {})[int(match.group("index"))] = part
        else:
            singles.append(HubFile(repo, (part,)))
    for (_, count), found in splits.items():
        if sorted(found) == list(range(1, count + 1)):
            singles.append(HubFile(repo, tuple(found[i] for i in range(1, count + 1))))
    return sorted(singles, key=lambda f: f.name.lower())


class Hub:
    """The Hugging Face Hub (or a mirror: ``endpoint``), through ``huggingface_hub``.

    Args:
        endpoint: the Hub's address (default: ``HF_ENDPOINT`` or huggingface.co).
        token: a Hub token for gated repositories (default: the one ``hf auth login`` saved).
    """

    def __init__(self, *, endpoint: str | None = None, token: str | None = None) -> None:
        from huggingface_hub import constants

        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self.token = token

    # - listing -

    def list_files(self, repo: str) -> list[HubFile]:
        """The GGUF models in ``repo`` (sizes and SHA-256 from the Hub's file list).

        Raises:
            OfflineError: the Hub cannot be reached.
            DownloadError: no such repository, a gated one, or another answer from the Hub.
        """
        from huggingface_hub import HfApi
        from huggingface_hub.hf_api import RepoFile

        api = HfApi(endpoint=self.endpoint, token=self.token)
        with self._hub_errors(repo):
            # model_info makes one request without retries: offline, a missing or a gated
            # repository is said at once (list_repo_tree retries for half a minute).
            api.model_info(repo)
            entries = list(api.list_repo_tree(repo, recursive=True))
        # A gated repository's listing may redact hashes ("*" x 64): then the file's own
        # X-Linked-Etag (its SHA-256) is used when it is fetched.
        parts = [
            HubPart(e.path, int(e.size), _sha_or_none(e.lfs.sha256 if e.lfs is not None else None))
            for e in entries
            if isinstance(e, RepoFile)
        ]
        return group_gguf_files(repo, parts)

    def find_file(self, repo: str, name: str) -> HubFile:
        """The model ``name`` (a file's path, or a split model's first part) in ``repo``.

        Raises:
            DownloadError: the repository has no such GGUF model (the message lists those it has).
        """
        files = self.list_files(repo)
        for f in files:
            if name in (f.name, Path(f.name).name) or any(name == p.path for p in f.parts):
                return f
        offered = ", ".join(f.name for f in files) or "none"
        raise DownloadError(f"{repo} has no GGUF model named {name}. Its GGUF models: {offered}.")

    def search(self, query: str, *, limit: int = 20) -> list[str]:
        """Repositories on the Hub with GGUF files matching ``query``, most downloaded first.

        Raises:
            OfflineError: the Hub cannot be reached.
        """
        from huggingface_hub import get_session, hf_raise_for_status

        # One request (HfApi.list_models retries a dead connection for half a minute).
        params: dict[str, str | int] = {"search": query, "filter": "gguf", "sort": "downloads", "limit": limit}
        with self._hub_errors(None):
            response = get_session().get(
                f"{self.endpoint}/api/models", params=params, headers=self._headers(), timeout=_TIMEOUT
            )
            hf_raise_for_status(response)
            return [str(m["id"]) for m in response.json() if isinstance(m, dict) and "id" in m]

    # - reading a header remotely -

    def inspect(self, file: HubFile) -> ModelInfo:
        """Read the model's GGUF header from the Hub by HTTP ranges, without its weights.

        Raises:
            OfflineError, DownloadError: the Hub failed.
            ModelFileError: the file is not a usable GGUF model.
        """
        sizes = {Path(p.path).name: p for p in file.parts}

        def open_part(name: str) -> tuple[BinaryIO, int]:
            part = sizes.get(name)
            if part is None:
                raise ModelFileError(
                    f"{name} is missing from {file.repo}: the model is split into parts and one is gone."
                )
            return cast(BinaryIO, _RangeFile(self, file.repo, part.path, part.size)), part.size

        first = file.parts[0]
        with self._hub_errors(file.repo):
            return inspect_gguf_handle(
                cast(BinaryIO, _RangeFile(self, file.repo, first.path, first.size)),
                file_size=first.size,
                path=Path(first.path),
                open_part=open_part if len(file.parts) > 1 else None,
            )

    # - downloading -

    def download(
        self,
        file: HubFile,
        *,
        root: Path,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        free_space: Callable[[Path], int] | None = None,
    ) -> Path:
        """Download ``file`` into ``root/<org>/<repo>/``, checked and inspected first.

        Args:
            file: what ``list_files`` or ``find_file`` returned.
            root: the models folder (``models_dir()``).
            on_progress: called with a ``DownloadProgress`` a few times a second.
            cancel: returns True to stop; the partial bytes stay for a later resume.
            free_space: bytes free on the disk holding a folder (default: ``shutil.disk_usage``).

        Returns:
            The path of the model (its first part, for a split model).

        Raises:
            Cancelled: ``cancel`` returned True.
            OfflineError: the Hub cannot be reached (partial bytes are kept).
            DiskFullError: not enough free space (checked first), or the disk filled up.
            ChecksumError: a part's SHA-256 is not the Hub's (that part was removed).
            ModelFileError: the download is not a GGUF model Longread can use (removed).
            DownloadError: another answer from the Hub.
        """
        free_space = free_space or _free_bytes
        target = root / _repo_folder(file.repo)
        finals = [target / p.path for p in file.parts]
        if all(f.is_file() and f.stat().st_size == p.size for f, p in zip(finals, file.parts, strict=True)):
            return finals[0]  # already here (it was checked before it was moved in)
        staging = root / PARTIAL_DIR / file.repo.replace("/", "--")
        staged = [staging / (p.path + ".part") for p in file.parts]
        for path, part in zip(staged, file.parts, strict=True):
            checked = staging / part.path  # fetched and renamed for inspection, then interrupted
            if checked.is_file() and not path.exists():
                os.replace(checked, path)
            _forget_stale_partial(path, part)
        have = sum(min(_size_of(p), part.size) for p, part in zip(staged, file.parts, strict=True))
        need = file.size - have + _DISK_MARGIN
        free = free_space(_existing_ancestor(root))
        if free < need:
            raise DiskFullError(
                f"Not enough disk space for {Path(file.name).name}: it needs {format_bytes(file.size - have)} more "
                f"and {format_bytes(free)} is free on the disk that holds {root}. Free some space and try again."
            )
        tracker = _Tracker(file, already=have, on_progress=on_progress, cancel=cancel)
        try:
            for path, part in zip(staged, file.parts, strict=True):
                self._fetch(file.repo, part, path, tracker)
            tracker.stage("verify")
            for path, part in zip(staged, file.parts, strict=True):
                _verify(path, part, sha256=part.sha256 or _saved_sha(path), cancel=cancel)
            tracker.stage("inspect")
            staged_first = staging / file.parts[0].path
            # Inspect under the real names (the split loader looks for "-0000N-of-" names).
            for path, part in zip(staged, file.parts, strict=True):
                os.replace(path, staging / part.path)
            try:
                inspect_gguf(staged_first)
            except ModelFileError as exc:
                for part in file.parts:
                    (staging / part.path).unlink(missing_ok=True)
                    _meta_path(staging / (part.path + ".part")).unlink(missing_ok=True)
                _remove_empty_dirs((staging / file.parts[0].path).parent, stop=root)
                raise ModelFileError(
                    f"{Path(file.name).name} was downloaded but is not a model Longread can use: {exc.message} "
                    "It was removed.",
                    detail=exc.detail,
                ) from exc
            # Later parts first: discovery offers a split model by its first part only.
            for part, final in reversed(list(zip(file.parts, finals, strict=True))):
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / part.path, final)
                _meta_path(staging / (part.path + ".part")).unlink(missing_ok=True)
        except OSError as exc:
            if exc.errno in _DISK_FULL_ERRNOS:
                raise DiskFullError(
                    f"The disk filled up while downloading {Path(file.name).name} "
                    f"({exc.strerror or exc}). Free some space and try again: the download resumes where it stopped."
                ) from exc
            raise DownloadError(f"Could not write the download to {root}: {exc.strerror or exc}.") from exc
        _remove_empty_dirs((staging / file.parts[0].path).parent, stop=root)
        tracker.stage("done")
        return finals[0]

    def _fetch(self, repo: str, part: HubPart, partial: Path, tracker: _Tracker) -> None:
        """Fetch one part into ``partial``, resuming from its current size."""
        from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
        from huggingface_hub.file_download import http_get

        # huggingface_hub reads the body in chunks of this size; a smaller one lets a
        # cancel stop within a megabyte rather than ten.
        constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, 1 << 20)
        partial.parent.mkdir(parents=True, exist_ok=True)
        resume = _size_of(partial)
        if resume >= part.size and part.size > 0:
            return
        url = hf_hub_url(repo, part.path, endpoint=self.endpoint)
        with self._hub_errors(repo):
            meta = get_hf_file_metadata(url, token=self.token, endpoint=self.endpoint)
        expected = part.sha256 or _sha_or_none(meta.etag)
        if meta.etag and part.sha256 and _SHA256.match(meta.etag) and meta.etag != part.sha256:
            raise DownloadError(
                f"{part.path} changed on the Hub while it was being listed. List the repository again and retry."
            )
        saved = _saved_sha(partial)
        if resume and saved and expected and saved != expected:
            partial.unlink()  # the bytes kept belong to another version of the file
            resume = 0
        _meta_path(partial).write_text(json.dumps({"sha256": expected, "size": part.size}))
        tracker.begin_part(part)
        with open(partial, "ab") as fh, self._hub_errors(repo):
            try:
                http_get(
                    meta.location,
                    fh,
                    resume_size=resume,
                    headers=self._headers(),
                    expected_size=part.size,
                    displayed_filename=Path(part.path).name,
                    tqdm_class=tracker.bar_class(),  # type: ignore[arg-type]
                )
            except OSError as exc:
                if exc.errno is not None:
                    raise  # the disk (ENOSPC and the like): handled by download()
                # huggingface_hub's "Consistency check failed": the body ended early.
                raise DownloadError(
                    f"The download of {Path(part.path).name} ended before the whole file came. "
                    "Try again: it resumes where it stopped."
                ) from exc

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

        headers: dict[str, str] = build_hf_headers(token=self.token, library_name="longread")
        return headers

    @contextmanager
    def _hub_errors(self, repo: str | None) -> Iterator[None]:
        """Turn huggingface_hub's and httpx's exceptions into plain ``DownloadError``\\ s."""
        import httpx2
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            OfflineModeIsEnabled,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        offline = (
            f"Cannot reach the Hugging Face Hub ({self.endpoint}): check the internet connection and try again. "
            "Models already on this computer still work."
        )
        try:
            yield
        except OfflineModeIsEnabled as exc:
            raise OfflineError(
                "Hugging Face Hub access is switched off (HF_HUB_OFFLINE is set). "
                "Models already on this computer still work."
            ) from exc
        except (
            httpx2.ConnectError,
            httpx2.TimeoutException,
            httpx2.RemoteProtocolError,
            LocalEntryNotFoundError,
        ) as exc:
            raise OfflineError(offline) from exc
        except GatedRepoError as exc:
            raise DownloadError(
                f"{repo} is gated: accept its licence on its Hugging Face page, then log in with `hf auth login`."
            ) from exc
        except RepositoryNotFoundError as exc:
            raise DownloadError(f"There is no repository {repo} on the Hub (or it is private).") from exc
        except (RemoteEntryNotFoundError, RevisionNotFoundError) as exc:
            raise DownloadError(f"{repo} has no such file on the Hub: {exc}".split("\n")[0]) from exc
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "an error"
            raise DownloadError(f"The Hub answered {status} for {repo}: {str(exc).splitlines()[0]}") from exc
        except httpx2.HTTPError as exc:
            raise OfflineError(offline) from exc


class _RangeFile:
    """A read-only, seekable view of a file on the Hub, read by HTTP Range requests in
    blocks of ``_REMOTE_BLOCK`` bytes (enough for ``inspect_gguf_handle``'s reads)."""

    def __init__(self, hub: Hub, repo: str, path: str, size: int) -> None:
        from huggingface_hub import hf_hub_url

        self._hub = hub
        self._url = hf_hub_url(repo, path, endpoint=hub.endpoint)
        self._size = size
        self._pos = 0
        self._block_start = -1
        self._block = b""

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self._size if n < 0 else min(self._size, self._pos + n)
        out = bytearray()
        while self._pos < end:
            if not (self._block_start <= self._pos < self._block_start + len(self._block)):
                self._load(self._pos, max(end - self._pos, _REMOTE_BLOCK))
            offset = self._pos - self._block_start
            take = self._block[offset : offset + end - self._pos]
            if not take:
                break
            out += take
            self._pos += len(take)
        return bytes(out)

    def _load(self, start: int, length: int) -> None:
        from huggingface_hub import get_session, hf_raise_for_status

        stop = min(self._size, start + length) - 1
        headers = {**self._hub._headers(), "Range": f"bytes={start}-{stop}", "Accept-Encoding": "identity"}
        response = get_session().get(self._url, headers=headers, timeout=_TIMEOUT)
        hf_raise_for_status(response)
        data = response.content
        if response.status_code == 200:  # the server ignored the range
            data = data[start : stop + 1]
        self._block_start, self._block = start, data

    def close(self) -> None:
        self._block = b""

    def __enter__(self) -> _RangeFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- progress ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands: ``stage`` is "download", "verify", "inspect" or "done"."""

    name: str
    done_bytes: int
    total_bytes: int
    bytes_per_s: float | None
    eta_s: float | None
    stage: str = "download"
    part: int = 1
    parts: int = 1

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 1.0

    def describe(self) -> str:
        """ "412 MB of 1.1 GB · 5.2 MB/s · about 2 min left"."""
        if self.stage == "verify":
            return f"Checking {self.name} against the Hub's SHA-256…"
        if self.stage == "inspect":
            return f"Reading {self.name}'s header…"
        if self.stage == "done":
            return f"{self.name} is ready."
        text = f"{format_bytes(self.done_bytes)} of {format_bytes(self.total_bytes)}"
        if self.parts > 1:
            text += f" (part {self.part} of {self.parts})"
        if self.bytes_per_s:
            text += f" · {format_bytes(self.bytes_per_s)}/s"
        if self.eta_s is not None:
            text += f" · about {format_duration(self.eta_s)} left"
        return text


class _Tracker:
    """Adds up bytes over the parts, reports progress with a speed and an ETA, and raises
    ``Cancelled`` from inside huggingface_hub's read loop when asked to stop (before the
    chunk is written: the partial file stays whole)."""

    def __init__(
        self,
        file: HubFile,
        *,
        already: int,
        on_progress: Callable[[DownloadProgress], None] | None,
        cancel: Callable[[], bool] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.file = file
        self.done = already
        self.session = 0  # bytes fetched by this call: the speed ignores resumed bytes
        self._on_progress = on_progress
        self._cancel = cancel
        self._clock = clock
        self._start = clock()
        self._last = 0.0
        self._part = 1
        self._lock = threading.Lock()

    def begin_part(self, part: HubPart) -> None:
        self._part = self.file.parts.index(part) + 1

    def bar_class(self) -> type:
        tracker = self

        class _Bar:
            # huggingface_hub builds its tqdm with these keyword arguments and calls update().
            def __init__(self, **kwargs: Any) -> None:
                self.n = int(kwargs.get("initial") or 0)

            def update(self, n: int | float = 1) -> None:
                self.n += int(n)
                tracker.add(int(n))

            def close(self) -> None:
                pass

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

        return _Bar

    def add(self, n: int) -> None:
        if self._cancel is not None and self._cancel():
            raise Cancelled()
        with self._lock:
            self.done += n
            self.session += n
        now = self._clock()
        if now - self._last >= _REPORT_EVERY or self.done >= self.file.size:
            self._last = now
            self._report("download")

    def stage(self, stage: str) -> None:
        if self._cancel is not None and self._cancel() and stage != "done":
            raise Cancelled()
        self._report(stage)

    def _report(self, stage: str) -> None:
        if self._on_progress is None:
            return
        elapsed = self._clock() - self._start
        speed = self.session / elapsed if elapsed > 0.5 and self.session > 0 else None
        eta = (self.file.size - self.done) / speed if speed else None
        self._on_progress(
            DownloadProgress(
                name=Path(self.file.name).name,
                done_bytes=min(self.done, self.file.size),
                total_bytes=self.file.size,
                bytes_per_s=speed,
                eta_s=eta if stage == "download" else None,
                stage=stage,
                part=self._part,
                parts=len(self.file.parts),
            )
        )


# --- checking ----------------------------------------------------------------------------


def _verify(path: Path, part: HubPart, *, sha256: str | None, cancel: Callable[[], bool] | None) -> None:
    """Check a fetched part's size and SHA-256 (the listing's, else the file's ETag);
    remove it when they are wrong."""
    size = _size_of(path)
    if size != part.size:
        path.unlink(missing_ok=True)
        _meta_path(path).unlink(missing_ok=True)
        raise ChecksumError(
            f"{Path(part.path).name} came down as {size:,} bytes, not the {part.size:,} the Hub lists; "
            "it was removed. Try again."
        )
    if sha256 is None:
        return  # not an LFS file: the Hub publishes no SHA-256 for it
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            if cancel is not None and cancel():
                raise Cancelled()
            digest.update(block)
    if digest.hexdigest() != sha256:
        path.unlink(missing_ok=True)
        _meta_path(path).unlink(missing_ok=True)
        raise ChecksumError(
            f"{Path(part.path).name} does not match the SHA-256 the Hub published for it "
            f"({digest.hexdigest()[:12]}… instead of {sha256[:12]}…): it was damaged on the way and "
            "was removed. Try again."
        )


def _forget_stale_partial(path: Path, part: HubPart) -> None:
    """Drop a partial file left by a download of another version of the file."""
    meta = _meta_path(path)
    if not path.exists():
        meta.unlink(missing_ok=True)
        return
    try:
        saved = json.loads(meta.read_text())
    except (OSError, ValueError):
        saved = None
    same = (
        isinstance(saved, dict)
        and saved.get("size") == part.size
        and (part.sha256 is None or saved.get("sha256") in (part.sha256, None))
    )
    if not same or _size_of(path) > part.size:
        path.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)


def _saved_sha(partial: Path) -> str | None:
    """The SHA-256 recorded beside a partial file when it was fetched (from the ETag)."""
    try:
        saved = json.loads(_meta_path(partial).read_text())
    except (OSError, ValueError):
        return None
    return _sha_or_none(saved.get("sha256")) if isinstance(saved, dict) else None


def _sha_or_none(value: str | None) -> str | None:
    return value.lower() if value and _SHA256.match(value.lower()) else None


def _meta_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".json")


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def free_disk_bytes(folder: Path) -> int:
    """Bytes free on the disk that holds ``folder`` (or its nearest existing parent)."""
    return _free_bytes(_existing_ancestor(folder))


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def _repo_folder(repo: str) -> Path:
    org, name = repo.split("/", 1)
    return Path(org) / name


def _remove_empty_dirs(folder: Path, *, stop: Path) -> None:
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


# --- the plan before downloading ---------------------------------------------------------


def describe_fit(
    info: ModelInfo,
    *,
    available_bytes: int | None,
    calibrations: Sequence[CalibrationRow] = (),
    reference_tokens: int = 8192,
) -> str:
    """The planner's line about a model on this machine: the longest window that fits the
    memory free now at each KV cache type and, when this file's prefill speed has been
    measured here (calibrations are keyed by the file's SHA-256, the Hub's LFS oid), how
    fast it reads.

    Args:
        info: the model's header (``Hub.inspect`` or ``inspect_gguf``).
        available_bytes: memory free now (``engine.machine.read_available_memory``).
        calibrations: stored calibrations for this file, if any.
        reference_tokens: the corpus size the reading speed is quoted for.

    Returns:
        One or two sentences.
    """
    if available_bytes is None:
        return (
            f"Trained on {info.context_length:,}-token windows; this computer's free memory is unknown, "
            "so the planner cannot say how much fits."
        )
    plan = make_plan(info, reference_tokens, available_bytes=available_bytes, calibrations=calibrations)
    fitting = [r for r in plan.rows if r.max_ctx_fitting >= 256]
    if not fitting:
        return (
            f"Does not fit in the memory free now ({format_bytes(available_bytes)}) at any window: "
            "choose a smaller model or quantization."
        )
    windows = ", ".join(f"{r.kv_type} up to {r.max_ctx_fitting:,} tokens" for r in fitting)
    text = (
        f"Fits in the memory free now ({format_bytes(available_bytes)}): {windows} "
        f"(trained window {info.context_length:,})."
    )
    timed = [r for r in fitting if r.est_prefill_s]
    if timed:
        fastest = min(timed, key=lambda r: r.est_prefill_s or 0.0)
        rate = reference_tokens / (fastest.est_prefill_s or 1.0)
        text += f" Reads about {rate:,.0f} tokens/s here at {fastest.kv_type} (measured)."
    else:
        text += " Reading speed: not measured here yet (`longread plan` measures it once the model is here)."
    return text


def stored_calibrations(file: HubFile, db: Path) -> list[CalibrationRow]:
    """This machine's stored prefill measurements for ``file`` (calibrations are keyed by
    the model file's SHA-256, which is the Hub's LFS oid), so ``describe_fit`` can say how
    fast it reads before it is downloaded again. Empty for a split model or a new file."""
    sha = file.parts[0].sha256
    if sha is None or len(file.parts) > 1 or not db.exists():
        return []
    from engine.config import default_threads
    from engine.store import open_store

    store = open_store(db)
    try:
        return list(store.get_calibrations(sha, n_threads=default_threads()))
    finally:
        store.close()


# --- what was downloaded -------------------------------------------------------------------


def models_dir() -> Path:
    """Where downloaded models live: ``<data folder>/models/<org>/<repo>/<file>``."""
    return data_dir() / "models"


@dataclass(frozen=True)
class InstalledModel:
    """A downloaded model: its name (``org/repo/file.gguf``), first file and every part."""

    name: str
    path: Path
    parts: tuple[Path, ...] = field(default=())

    @property
    def size_bytes(self) -> int:
        return sum(_size_of(p) for p in self.parts or (self.path,))


def installed_models(root: Path) -> list[InstalledModel]:
    """The models under ``root`` (partial downloads excluded), by name."""
    found = []
    if not root.is_dir():
        return []
    for path in sorted(root.rglob("*.gguf")):
        rel = path.relative_to(root)
        if rel.parts[0] == PARTIAL_DIR or not is_model_file(path):
            continue
        match = _SPLIT.match(path.name)
        parts: tuple[Path, ...] = (path,)
        if match:
            count = int(match.group("count"))
            parts = tuple(
                path.with_name(f"{match.group('prefix')}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)
            )
        found.append(InstalledModel(rel.as_posix(), path, parts))
    return found


def remove_model(name: str, *, root: Path) -> InstalledModel:
    """Delete a downloaded model (every part) from ``root``.

    Args:
        name: its name (``org/repo/file.gguf``), its file name, or its repository when
            that holds one model only.
        root: the models folder.

    Returns:
        What was removed.

    Raises:
        DownloadError: no such model, or the name matches several (they are listed).
    """
    models = installed_models(root)
    matches = [m for m in models if name in (m.name, m.path.name)]
    if not matches:
        matches = [m for m in models if m.name.startswith(name.rstrip("/") + "/")]
    if not matches:
        have = ", ".join(m.name for m in models) or "none"
        raise DownloadError(f"No downloaded model is called {name}. Downloaded models: {have}.")
    if len(matches) > 1:
        raise DownloadError(f"{name} matches several models: {', '.join(m.name for m in matches)}. Name one.")
    model = matches[0]
    for part in model.parts:
        part.unlink(missing_ok=True)
    _remove_empty_dirs(model.path.parent, stop=root)
    return model
