"""``longread models``: find, get, list and remove GGUF models (engine/models/hub.py).

- ``longread models search [QUERY]`` prints the suggested models matching QUERY (all of
  them without one: trained window, licence, sizes, why) and, for a QUERY, the GGUF
  repositories the Hub finds (offline, only the suggestions, with a note).
- ``longread models get REPO[/FILE] [--dry-run]`` says, before downloading, the size, the
  disk space free and what the planner says for this machine (the file's header is read
  from the Hub by ranges), then downloads with progress and an ETA on stderr. Without a
  FILE: the suggested quantization of a listed model, the only GGUF of a repository, or
  the list to choose from. Ctrl-C stops; the same command resumes where it stopped.
- ``longread models list`` prints the downloaded models and the ones found in LM Studio's,
  GPT4All's and the Hugging Face cache's folders.
- ``longread models remove NAME`` deletes a downloaded model (never another app's file).

Exit codes as the rest of the CLI: 0 done, 1 a user-facing error, 130 cancelled.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from engine.config import db_path
from engine.errors import Cancelled, CancelToken, EngineError, OfflineError
from engine.machine import read_available_memory
from engine.models.discover import discover_models
from engine.models.hub import (
    DownloadProgress,
    Hub,
    HubFile,
    curated_models,
    describe_fit,
    free_disk_bytes,
    installed_models,
    models_dir,
    parse_spec,
    remove_model,
    search_curated,
    stored_calibrations,
)
from engine.units import format_bytes

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 130


def _err(message: str, *, end: str = "\n") -> None:
    print(message, file=sys.stderr, end=end, flush=True)


def add_models_parser(sub: Any) -> None:
    """Add ``models`` (search, get, list, remove) to the CLI's subparsers."""
    models = sub.add_parser("models", help="find, download, list and remove GGUF models")
    actions = models.add_subparsers(dest="models_command", required=True)
    search = actions.add_parser("search", help="suggested models, and GGUF repositories on the Hub")
    search.add_argument("query", nargs="?", default="", help="words to look for (e.g. 'qwen 3b')")
    get = actions.add_parser("get", help="download a model: REPO or REPO/FILE.gguf")
    get.add_argument("spec", metavar="REPO[/FILE]", help="e.g. Qwen/Qwen2.5-1.5B-Instruct-GGUF")
    get.add_argument("--dry-run", action="store_true", help="say what would be downloaded and stop")
    actions.add_parser("list", help="downloaded models and those other apps keep")
    remove = actions.add_parser("remove", help="delete a downloaded model")
    remove.add_argument("name", help="its name as `longread models list` prints it, or its file name")


def run_models_command(args: argparse.Namespace, *, hub: Hub | None = None, root: Path | None = None) -> int:
    """Run a ``models`` command; return the exit code. No ``Library`` is opened."""
    root = root if root is not None else models_dir()
    try:
        if args.models_command == "search":
            return _search(args.query, hub or Hub())
        if args.models_command == "get":
            return _get(args.spec, hub or Hub(), root=root, dry_run=args.dry_run)
        if args.models_command == "list":
            return _list(root)
        removed = remove_model(args.name, root=root)
        print(f"Removed {removed.name} ({format_bytes(removed.size_bytes)}).")
        return EXIT_OK
    except Cancelled:
        _err("\nCancelled. Run the same command to resume the download.")
        return EXIT_CANCELLED
    except EngineError as exc:
        _err(f"longread: {exc.message}")
        return EXIT_ERROR


def _search(query: str, hub: Hub) -> int:
    found = search_curated(query)
    if found:
        print("Suggested models (instruction-tuned, for long documents):")
    for model in found:
        sizes = ", ".join(f"{f.quant} about {format_bytes(f.size_bytes)}" for f in model.files)
        print(f"  {model.repo}")
        print(f"    {model.title}: {model.context:,}-token window; {model.licence}; {sizes}")
        print(f"    {model.why}")
    if query:
        try:
            repos = [r for r in hub.search(query) if r not in {m.repo for m in found}]
        except OfflineError as exc:
            _err(f"(Hub search skipped: {exc.message})")
            repos = []
        if repos:
            print("On the Hugging Face Hub (GGUF, most downloaded first):")
            for repo in repos:
                print(f"  {repo}")
    if not found and not query:
        print("No suggestions.")
    print("Get one with: longread models get REPO[/FILE]")
    return EXIT_OK


def _choose(spec: str, hub: Hub) -> HubFile | None:
    repo, name = parse_spec(spec)
    if name is not None:
        return hub.find_file(repo, name)
    files = hub.list_files(repo)
    curated = next((m for m in curated_models() if m.repo.lower() == repo.lower()), None)
    if curated is not None:
        match = [f for f in files if f.name == curated.recommended]
        if match:
            return match[0]
    if len(files) == 1:
        return files[0]
    if not files:
        raise EngineError(f"{repo} has no GGUF model files; Longread reads GGUF models only.")
    print(f"{repo} has {len(files)} GGUF models; name one (longread models get {repo}/FILE):")
    for f in files:
        print(f"  {f.describe()}")
    return None


def _get(spec: str, hub: Hub, *, root: Path, dry_run: bool) -> int:
    file = _choose(spec, hub)
    if file is None:
        return EXIT_ERROR
    print(f"{file.repo}: {file.describe()}")
    print(f"Free disk space: {format_bytes(free_disk_bytes(root))} (in {root})")
    info = hub.inspect(file)
    print(f"Model: {info.name} ({info.architecture}, {info.file_type})")
    print(
        "Here: "
        + describe_fit(info, available_bytes=read_available_memory(), calibrations=stored_calibrations(file, db_path()))
    )
    if dry_run:
        return EXIT_OK
    cancel = CancelToken()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        cancel.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        path = hub.download(file, root=root, on_progress=_print_progress, cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    _err("")
    print(f"Ready: {path}")
    print(f"Use it with --model {path}, or pick it in the window's model list.")
    return EXIT_OK


def _print_progress(progress: DownloadProgress) -> None:
    _err(f"\r{progress.describe():<72}", end="")


def _list(root: Path) -> int:
    downloaded = installed_models(root)
    print(f"Downloaded ({root}):")
    for model in downloaded:
        print(f"  {model.name}  {format_bytes(model.size_bytes)}")
    if not downloaded:
        print("  none (longread models search, then longread models get REPO)")
    own = {m.path.resolve() for m in downloaded}
    others = [m for m in discover_models() if m.path.resolve() not in own]
    if others:
        print("Found in other apps' folders:")
        for found in others:
            print(f"  {found.path}  {format_bytes(found.size_bytes)}  ({found.source})")
    return EXIT_OK
