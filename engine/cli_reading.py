"""``longread think``, ``longread waves`` and ``longread export``: the headless side of
deep thinking and waves (issue 6). ``engine/cli.py`` adds these subcommands and
dispatches to ``run_reading_command``.

``think FILES... -q Q`` works a question in stored steps; ``waves FILES... -q Q`` reads
the documents window by window; both take ``--resume SESSION`` to finish a session that
was stopped (killed, cancelled, crashed), never redoing a finished step or wave. Steps,
notes and answers stream to stdout; progress ("Wave 3 of 12, about 2 min left") and
citations that fail their check go to stderr. ``export SESSION --markdown`` prints a
session as Markdown.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import EngineError
from engine.ingest import read_documents
from engine.models.bundled import bundled_model_path
from engine.errors import CancelToken
from engine.reading.citations import Citation
from engine.reading.deep import DeepProgress, DeepSession, DeepStep, DeepThinker, list_deep
from engine.reading.export import export_markdown
from engine.reading.waves import WaveProgress, WaveRead, WaveReader, WaveRow, list_reads
from engine.runtime.backend import KvType
from engine.store import Store

COMMANDS = ("think", "waves", "export")


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def add_reading_parsers(sub: Any) -> None:
    """Add ``think``, ``waves`` and ``export`` to the CLI's subparsers."""
    for name, helptext in (
        ("think", "work a question over whole documents in stored, resumable steps"),
        ("waves", "read documents larger than the window in waves, keeping notes"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("paths", nargs="*", type=Path, metavar="FILE_OR_FOLDER")
        p.add_argument("-q", "--question", help="the question (not needed with --resume)")
        p.add_argument("--resume", type=int, metavar="SESSION", help="finish this session's unfinished run")
        p.add_argument("--model", type=Path, help="a GGUF model file (default: the bundled SmolLM2-135M-Instruct)")
        p.add_argument("--ctx", type=int, default=0, help="window in tokens (default: the model's full window)")
        p.add_argument("--kv", choices=list(KvType), default="f16", help="KV cache type (default f16)")
        p.add_argument("--threads", type=int, default=0, help="threads (default: every core)")
        p.add_argument("--max-answer", type=int, default=256, help="most tokens in the answer (default 256)")
        if name == "think":
            p.add_argument("--step-tokens", type=int, default=256, help="most tokens per step (default 256)")
        else:
            p.add_argument("--note-tokens", type=int, default=96, help="most tokens of notes per wave (default 96)")
    export = sub.add_parser("export", help="print a session (questions, steps, waves) as Markdown")
    export.add_argument("session_id", type=int)
    export.add_argument("--markdown", action="store_true", help="Markdown (the only format, and the default)")
    export.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")


def run_reading_command(args: argparse.Namespace, store: Store) -> int:
    """Run ``think``, ``waves`` or ``export``; return the exit code."""
    if args.command == "export":
        text = export_markdown(store, args.session_id)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
            _err(f"Wrote session {args.session_id} to {args.output}.")
        else:
            _out(text)
        return 0
    settings = ReadSettings(n_ctx=args.ctx, kv_type=args.kv, n_threads=args.threads, max_answer_tokens=args.max_answer)
    model_path = args.model or bundled_model_path()
    cancel = CancelToken()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        _err("\nCancelling... (run again with --resume to finish; Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        if args.command == "think":
            return _think(args, store, model_path, settings, cancel)
        return _waves(args, store, model_path, settings, cancel)
    finally:
        signal.signal(signal.SIGINT, previous)


def _corpus(args: argparse.Namespace, store: Store) -> Corpus:
    if not args.paths:
        raise EngineError(f'Name the files or folders to read, for example: longread {args.command} filing.pdf -q "..."')
    if not args.question:
        raise EngineError("Give the question with -q, or --resume SESSION to finish one.")

    def on_file(i: int, n: int, path: Path) -> None:
        _err(f"Adding {path.name} ({i + 1} of {n})")

    docs, skipped = read_documents(args.paths, store=store, on_file=on_file, on_notice=_err)
    for path, why in skipped:
        _err(f"Skipped {path}: {why}")
    return Corpus(tuple(docs))


class _Throttled:
    """Progress lines on stderr: on every change of wave or step, else every 2 s."""

    def __init__(self) -> None:
        self.last_key: object = None
        self.last_t = 0.0

    def __call__(self, key: object, line: str) -> None:
        now = time.monotonic()
        if key != self.last_key or now - self.last_t >= 2.0:
            _err(line)
            self.last_key, self.last_t = key, now


def _run_to_resume(runs: Sequence[DeepSession | WaveRead], session_id: int, what: str) -> int:
    """The id of the session's latest run not done (else its latest run, to show it again).

    Raises:
        EngineError: the session has no such run.
    """
    if not runs:
        raise EngineError(f"Session {session_id} has no {what} to resume.")
    return next((r.id for r in reversed(runs) if r.status != "done"), runs[-1].id)


def _report_done(head: str, ran: int, total: int, session_id: int) -> None:
    skipped = total - ran
    _err(head + (f", {skipped} already done before" if skipped else "") + f". Session {session_id}.")


def _report_citations(citations: list[Citation]) -> None:
    for c in citations:
        if not c.ok:
            _err(f"Unverified citation [{c.document} p.{c.page}]: {c.problem}.")


def _think(
    args: argparse.Namespace, store: Store, model_path: Path, settings: ReadSettings, cancel: CancelToken
) -> int:
    thinker = DeepThinker(store, model_path, settings, step_tokens=args.step_tokens)
    try:
        if args.resume is not None:
            deep_id = _run_to_resume(list_deep(store, args.resume), args.resume, "deep-thinking run")
            _err(f"Resuming deep thinking in session {args.resume}.")
        else:
            deep_id = thinker.start(_corpus(args, store), args.question)
        progress = _Throttled()

        def on_step(step: DeepStep) -> None:
            if step.status == "running":
                _out(f"\n## {step.position}. {step.heading}\n")
            elif step.status == "done":
                _out("\n")

        def on_progress(p: DeepProgress) -> None:
            progress((p.step, p.stage), p.describe())

        result = thinker.run(deep_id, on_progress=on_progress, on_text=_out, on_step=on_step, cancel=cancel)
        if not result.ran:  # finished before: show the stored answer
            _out(f"\n## {len(result.steps)}. Answer\n{result.answer}\n")
        _report_done(
            f"Deep thinking done: {len(result.ran)} step(s) now", len(result.ran), len(result.steps), result.session_id
        )
        _report_citations(result.citations)
        return 0
    finally:
        thinker.close()


def _waves(
    args: argparse.Namespace, store: Store, model_path: Path, settings: ReadSettings, cancel: CancelToken
) -> int:
    reader = WaveReader(store, model_path, settings, max_note_tokens=args.note_tokens)
    try:
        if args.resume is not None:
            read_id = _run_to_resume(list_reads(store, args.resume), args.resume, "read in waves")
            _err(f"Resuming the read in waves of session {args.resume}.")
        else:
            read_id = reader.start(_corpus(args, store), args.question)
        progress = _Throttled()
        answering = False

        def on_step(wave: WaveRow) -> None:
            if wave.status == "running":
                _out(f"\n## Wave {wave.position}: {wave.pages}\n")
            elif wave.status == "done":
                _out("\n")

        def on_progress(p: WaveProgress) -> None:
            nonlocal answering
            if p.stage == "answer" and not answering:
                answering = True
                _out("\n## Answer\n")
            progress((p.wave, p.stage), p.describe())

        result = reader.run(read_id, on_progress=on_progress, on_text=_out, on_step=on_step, cancel=cancel)
        if not answering:  # finished before: show the stored answer
            _out("\n## Answer\n" + result.answer)
        _out("\n")
        _report_done(
            f"Read {len(result.waves)} wave(s): {len(result.ran)} now", len(result.ran), len(result.waves), result.session_id
        )
        _report_citations(result.citations)
        return 0
    finally:
        reader.close()
