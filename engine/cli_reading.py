"""``longread think``, ``longread waves`` and ``longread export``: the headless side of
deep thinking and waves (issue 6). ``engine/cli.py`` adds these subcommands and
dispatches to ``run_reading_command``.

``think FILES... -q Q`` works a question in stored steps; ``waves FILES... -q Q`` reads
the documents window by window (``--map``: waves carry no notes, one pass answers from
them all; ``--carry``: waves carry notes onward); both take ``--resume SESSION`` to finish a session that
was stopped (killed, cancelled, crashed), never redoing a finished step or wave. Steps,
notes and answers stream to stdout; progress ("Wave 3 of 12, about 2 min left") and
citations that fail their check, facts on no page and an answer citing nothing go to stderr. ``export SESSION --markdown`` prints a
session as Markdown.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from engine.cli_server import add_server_options
from engine.corpus import Corpus
from engine.errors import CancelToken, EngineError
from engine.reading.citations import Citation
from engine.reading.deep import DeepResult
from engine.reading.facts import AnswerCheck, Unfounded
from engine.reading.notes import quoted_line
from engine.reading.stepping import RunProgress
from engine.reading.waves import DEFAULT_WAVE_MODE, WaveMode, WaveResult, dropped_notes
from engine.runs import RunKind, Status, Step
from engine.runtime.backend import KvType

if TYPE_CHECKING:
    from engine.library import Library

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
        p.add_argument("--no-memory", action="store_true", help="read without what earlier sessions found")
        add_server_options(p)
        if name == "think":
            p.add_argument("--step-tokens", type=int, default=256, help="most tokens per step (default 256)")
        else:
            p.add_argument("--note-tokens", type=int, default=96, help="most tokens of notes per wave (default 96)")
            p.add_argument(
                "--wave-tokens",
                type=int,
                default=None,
                help="most tokens per wave (default: the length at which this model was measured to find a "
                "single fact, see longread probe; 0: the whole window)",
            )
            modes = p.add_mutually_exclusive_group()
            modes.add_argument(
                "--map",
                dest="mode",
                action="store_const",
                const=WaveMode.MAP,
                help="waves carry no notes (each reads its pages and the question), then one pass answers from all",
            )
            modes.add_argument(
                "--carry", dest="mode", action="store_const", const=WaveMode.CARRY, help="waves carry notes onward"
            )
            p.set_defaults(mode=DEFAULT_WAVE_MODE)
    export = sub.add_parser("export", help="print a session (questions, steps, waves) as Markdown")
    export.add_argument("session_id", type=int)
    export.add_argument("--markdown", action="store_true", help="Markdown (the only format, and the default)")
    export.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")


def run_reading_command(args: argparse.Namespace, library: Library) -> int:
    """Run ``think``, ``waves`` or ``export``; return the exit code."""
    if args.command == "export":
        text = library.export_markdown(args.session_id)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
            _err(f"Wrote session {args.session_id} to {args.output}.")
        else:
            _out(text)
        return 0
    cancel = CancelToken()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        _err("\nCancelling... (run again with --resume to finish; Ctrl-C again to stop at once)")

    library.use_memory(not args.no_memory)
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return _run(args, library, cancel)
    finally:
        signal.signal(signal.SIGINT, previous)


def read_corpus(args: argparse.Namespace, library: Library, *, password: str | None = None) -> Corpus:
    """The documents named on the command line, added to the library (progress on stderr).

    Raises:
        EngineError: none named, or one cannot be read.
    """
    if not args.paths:
        raise EngineError(
            f'Name the files or folders to read, for example: longread {args.command} filing.pdf -q "..."'
        )

    def on_file(i: int, n: int, path: Path) -> None:
        _err(f"Adding {path.name} ({i + 1} of {n})")

    def on_pages(done: int, total: int, stage: str) -> None:
        if total >= 50 and (done == total or done % 50 == 0):
            _err(f"  {'OCR, ' if stage == 'ocr' else ''}page {done} of {total}")

    docs, skipped = library.add_documents(
        args.paths, password=password, on_file=on_file, on_progress=on_pages, on_notice=_err
    )
    for path, why in skipped:
        _err(f"Skipped {path}: {why}")
    return Corpus(tuple(docs))


def _question_corpus(args: argparse.Namespace, library: Library) -> Corpus:
    if not args.paths:
        raise EngineError(
            f'Name the files or folders to read, for example: longread {args.command} filing.pdf -q "..."'
        )
    if not args.question:
        raise EngineError("Give the question with -q, or --resume SESSION to finish one.")
    return read_corpus(args, library)


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


def _report_problems(citations: list[Citation], unfounded: list[Unfounded]) -> None:
    """Failed citations, facts on no page, an answer citing nothing (engine/reading/facts.py)."""
    for line in AnswerCheck(citations, unfounded).problems():
        _err(line)


def _blocks(result: WaveResult) -> str | None:
    """``Wave pages: 3 restored from snapshots, 1 read.``: how the waves read now got
    their pages (warm waves, issue 13 item 3); None when none was read now."""
    sources = Counter(str(w.detail.get("block")) for w in result.waves if w.position in result.ran)
    parts = []
    if sources["snapshot"]:
        parts.append(f"{sources['snapshot']} restored from snapshots")
    if sources["prefill"]:
        parts.append(f"{sources['prefill']} read")
    if sources["notes"]:
        parts.append(f"{sources['notes']} not needed (their notes for these questions were kept)")
    return f"Wave pages: {', '.join(parts)}." if parts else None


def _run(args: argparse.Namespace, library: Library, cancel: CancelToken) -> int:
    """``think`` or ``waves``: start a run (or take the session's one to resume) and run it."""
    kind = RunKind.THINK if args.command == "think" else RunKind.WAVES
    if args.resume is not None:
        run_id = library.run_to_resume(args.resume, kind).id
        _err(f"Resuming {'deep thinking' if kind is RunKind.THINK else 'the read in waves'} in session {args.resume}.")
    elif kind is RunKind.THINK:
        run_id = library.start_thinking(_question_corpus(args, library), args.question, step_tokens=args.step_tokens)
    else:
        run_id = library.start_waves(
            _question_corpus(args, library), args.question, note_tokens=args.note_tokens, mode=args.mode
        )
        _err(library.describe_waves(run_id))
    progress = _Throttled()
    answering = False

    def on_step(step: Step) -> None:
        if step.status is Status.RUNNING:
            if step.kind == "wave":
                _out(f"\n## Wave {step.position}: {step.label}\n")
            elif kind is RunKind.THINK:
                _out(f"\n## {step.position}. {step.heading}\n")
        elif step.status is Status.DONE and step.kind == "wave":
            # What the wave carries: the page's own sentences its pointers found (issue 13 item 1).
            dropped = dropped_notes(step)
            gone = f"; {dropped} dropped (not on their pages)" if dropped else ""
            _out(f"\n-> carried{gone}:\n{step.text}\n")
        elif step.status is Status.DONE and (step.kind != "answer" or kind is RunKind.THINK):
            _out("\n")

    def on_progress(p: RunProgress) -> None:
        nonlocal answering
        if p.stage == "answer" and not answering:
            answering = True
            _out("\n## Answer\n")
        progress((p.step, p.stage), p.describe())

    result = library.resume(run_id, on_progress=on_progress, on_text=_out, on_step=on_step, cancel=cancel)
    if isinstance(result, DeepResult):
        if not result.ran:  # finished before: show the stored answer
            _out(f"\n## {len(result.steps)}. Answer\n{result.answer}\n")
        head, ran, total = f"Deep thinking done: {len(result.ran)} step(s) now", len(result.ran), len(result.steps)
    else:
        assert isinstance(result, WaveResult)
        if not answering:  # finished before: show the stored answer
            _out("\n## Answer\n" + result.answer)
        _out("\n")
        head, ran, total = (
            f"Read {len(result.waves)} wave(s): {len(result.ran)} now",
            len(result.ran),
            len(result.waves),
        )
    if isinstance(result, WaveResult):
        run = library.get_run(result.run_id)
        looked = run.answer_step.detail.get("looked_up") if run and run.answer_step else None
        if looked:  # look before answering (issue 13 item 2)
            _err(f"Read again in full before answering: {', '.join(looked)}.")
        if run and run.answer_step and (quoted := quoted_line(run.answer_step.detail, run.question)):
            _err(quoted)
        if blocks := _blocks(result):
            _err(blocks)
    skipped = total - ran
    _err(head + (f", {skipped} already done before" if skipped else "") + f". Session {result.session_id}.")
    _report_problems(result.citations, result.unfounded)
    return 0
