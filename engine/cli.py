"""``longread``: the headless commands.

``longread ask FILE_OR_FOLDER... -q QUESTION`` streams the answer to stdout and progress
to stderr (a question that does not fit the window is refused with the ``longread waves``
command for the same files and question, and about how long it would take); ``longread sessions`` lists sessions; ``longread show ID`` prints one;
``longread plan FILE_OR_FOLDER... [--model PATH] [--ctx N]`` prints what reading them
will cost (memory and time per KV cache type) and the settings to use.
``longread snapshots [--clear] [--budget GB]`` lists, clears or caps the saved corpus
snapshots; ``ask`` says on stderr when a corpus was restored from one.
``longread probe [--model PATH] [--kv f16 q8_0 q4_0] [--quick]`` measures what the model
reads reliably (its effective context, engine/probe.py), stores it for ``plan`` and the
window, prints the table and saves a heatmap PNG; Ctrl-C keeps the cells done and the
same command resumes.
``longread models search|get|list|remove`` finds and downloads GGUF models
(engine/cli_models.py). ``longread think``, ``longread waves`` and ``longread export`` (deep thinking, reading in
waves, Markdown export, all resumable: engine/cli_reading.py).
The password of encrypted PDFs never goes on the command line, where ``ps`` and the
shell history would show it: ``--password`` alone asks for it without echo,
``--password-fd N`` reads one line from file descriptor N, and otherwise
``$LONGREAD_PDF_PASSWORD`` is used when set.
Exit codes: 0 done, 1 a user-facing error (message on stderr, no traceback), 130
cancelled by Ctrl-C. A first Ctrl-C cancels cooperatively (the partial answer is kept,
marked cancelled); a second one stops at once.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from engine import __version__
from engine.cli_memory import add_memory_parser, run_memory_command
from engine.cli_models import add_models_parser, run_models_command
from engine.cli_reading import COMMANDS as READING_COMMANDS
from engine.cli_reading import add_reading_parsers, read_corpus, run_reading_command
from engine.cli_server import add_server_options, server_backend
from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import Cancelled, CancelToken, ContextOverflowError, EngineError, NoSuchSession
from engine.library import Library, describe_documents
from engine.probe import TASKS as PROBE_TASKS
from engine.probe import ProbeGrid, ProbeProgress, default_grid, describe_report
from engine.reading.ask import AskResult
from engine.reading.facts import AnswerCheck
from engine.runs import RunKind, Status
from engine.runtime.backend import KvType, PrefillProgress
from engine.units import format_bytes, format_duration

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 130
PASSWORD_ENV = "LONGREAD_PDF_PASSWORD"


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _ProgressPrinter:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.printed = False

    def __call__(self, p: PrefillProgress) -> None:
        line = (
            f"Reading: {p.done:,}/{p.total:,} tokens"
            + (f" ({p.reused:,} already in context)" if p.reused else "")
            + f", {p.tokens_per_s:,.0f} tokens/s, about {format_duration(p.eta_s)} left"
        )
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.printed = True

    def finish(self) -> None:
        if self.tty and self.printed:
            sys.stderr.write("\n")
            sys.stderr.flush()


#: A probe cell this long (prompt tokens) gets its reading logged by quarters (minutes on a small CPU).
_LONG_CELL = 3000


class _ProbePrinter:
    """``longread probe``'s progress: a line per cell; inside a cell, the tokens read so far
    (one updating line on a terminal; in a log, a line at each quarter of a long cell)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.reading = False
        self.quarter = 0

    def __call__(self, p: ProbeProgress) -> None:
        eta = f", about {format_duration(p.eta_s)} left" if p.eta_s else ""
        cell = f"Probe cell {p.done}/{p.total}: {p.kv_type} {p.task} {p.length:,} tokens"
        if p.reading is None:
            self.finish()
            self.quarter = 0
            score = f" -> {p.last_score:.0%}" if p.last_score is not None else ""
            _err(f"{cell}{score}{eta}")
            return
        r = p.reading
        line = (
            f"{cell}: read {r.done:,}/{r.total:,} ({r.done / max(r.total, 1):.0%}), {r.tokens_per_s:,.0f} tokens/s{eta}"
        )
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
            sys.stderr.flush()
            self.reading = True
        elif r.total >= _LONG_CELL and (quarter := 4 * r.done // r.total) > self.quarter and r.done < r.total:
            self.quarter = quarter
            _err(line)

    def finish(self) -> None:
        if self.reading:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.reading = False


class _PromptOnly(argparse.Action):
    """``--password`` alone: a value after it would show in ``ps`` and the shell history."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        if values is not None:
            # The value itself is not repeated: it may be the password.
            parser.error(
                f"{option_string} takes no value: a password on the command line shows in `ps` and the shell "
                f"history. Give {option_string} alone (after the files) to be asked for it, set "
                f"{PASSWORD_ENV}, or use --password-fd N."
            )
        setattr(namespace, self.dest, True)


class _AskHelpFormatter(argparse.HelpFormatter):
    """Show ``--password`` as the bare flag it is: it takes a value only to refuse it."""

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action, _PromptOnly):
            return ""
        return super()._format_args(action, default_metavar)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, _PromptOnly):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longread", description="Read whole documents with a local model.")
    parser.add_argument("--version", action="version", version=f"longread {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log llama.cpp and engine details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a question from whole documents", formatter_class=_AskHelpFormatter)
    ask.add_argument("paths", nargs="*", type=Path, metavar="FILE_OR_FOLDER")
    ask.add_argument("-q", "--question", required=True)
    ask.add_argument("--model", type=Path, help="a GGUF model file (default: the bundled SmolLM2-135M-Instruct)")
    ask.add_argument("--ctx", type=int, default=0, help="context window in tokens (default: what the corpus needs)")
    ask.add_argument("--kv", choices=list(KvType), default="f16", help="KV cache type (default f16)")
    ask.add_argument("--threads", type=int, default=0, help="threads (default: every core)")
    ask.add_argument("--max-answer", type=int, default=256, help="most tokens in the answer (default 256)")
    ask.add_argument("--session", type=int, help="continue this session (its documents are used if none given)")
    ask.add_argument("--no-memory", action="store_true", help="read without what earlier sessions found")
    ask.add_argument(
        "--no-assemble",
        action="store_true",
        help="read a changed corpus fresh rather than assemble it from its documents' snapshots "
        "(an assembled corpus answers close to a fresh read, not always the same)",
    )
    add_server_options(ask)
    secret = ask.add_mutually_exclusive_group()
    secret.add_argument(
        "--password",
        nargs="?",
        action=_PromptOnly,
        help=f"ask for the password of encrypted PDFs, without echo (never stored; scripts: ${PASSWORD_ENV})",
    )
    secret.add_argument(
        "--password-fd", type=int, metavar="N", help="read the password of encrypted PDFs from file descriptor N"
    )

    sub.add_parser("sessions", help="list sessions, most recent first")
    show = sub.add_parser("show", help="print a session's questions and answers")
    show.add_argument("session_id", type=int)

    plan = sub.add_parser("plan", help="show what reading documents will cost, before loading anything")
    plan.add_argument("paths", nargs="+", type=Path, metavar="FILE_OR_FOLDER")
    plan.add_argument("--model", type=Path, help="a GGUF model file (default: the bundled SmolLM2-135M-Instruct)")
    plan.add_argument("--ctx", type=int, default=0, help="context window in tokens (default: what the corpus needs)")
    plan.add_argument("--rope", choices=["linear", "yarn"], help="allow a window beyond the trained length")
    plan.add_argument("--threads", type=int, default=0, help="threads (default: every core)")
    plan.add_argument("--max-answer", type=int, default=256, help="most tokens in the answer (default 256)")
    plan.add_argument(
        "--no-calibrate", action="store_true", help="do not measure reading speed (a few seconds per cache type)"
    )
    plan.set_defaults(session=None)

    snaps = sub.add_parser("snapshots", help="list the saved corpus snapshots (KV caches on disk)")
    snaps.add_argument("--clear", action="store_true", help="delete every snapshot")
    snaps.add_argument("--budget", type=float, metavar="GB", help="cap their total size (0: no snapshots)")
    probe = sub.add_parser("probe", help="measure what the model reads reliably (its effective context)")
    probe.add_argument("--model", type=Path, help="a GGUF model file (default: the bundled SmolLM2-135M-Instruct)")
    probe.add_argument("--kv", nargs="+", choices=list(KvType), default=["f16"], help="KV cache types (default f16)")
    probe.add_argument("--quick", action="store_true", help="a small grid: 1k tokens and half the window, mid-depth")
    probe.add_argument("--ctx", type=int, default=0, help="window to load (default: the model's trained window)")
    probe.add_argument(
        "--lengths", type=int, nargs="+", help="lengths to test in tokens (default: 1k, 2k, ... the window)"
    )
    probe.add_argument("--depths", type=float, nargs="+", help="depths to test, 0..1 (default 0.1 0.5 0.9)")
    probe.add_argument("--tasks", nargs="+", choices=list(PROBE_TASKS), help="tasks (default: all five)")
    probe.add_argument("--threads", type=int, default=0, help="threads (default: every core)")
    probe.add_argument("--png", type=Path, help="where to save the heatmap (default: in the data folder)")
    add_reading_parsers(sub)  # think, waves, export (issue 6)
    add_memory_parser(sub)  # memory list/show/add/pin/unpin/edit/forget (issue 15)
    add_models_parser(sub)  # models search|get|list|remove (issue 18)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("longread.llama").setLevel(logging.WARNING)
    if args.command == "models":  # no library: getting models opens no store (issue 18)
        return run_models_command(args)
    try:
        library = Library(
            model_path=getattr(args, "model", None), settings=_settings(args), backend=server_backend(args)
        )
        try:
            if args.command == "ask":
                return _ask(args, library)
            if args.command == "sessions":
                return _sessions(library)
            if args.command == "plan":
                return _plan(args, library)
            if args.command == "snapshots":
                return _snapshots(args, library)
            if args.command == "probe":
                return _probe(args, library)
            if args.command == "memory":
                return run_memory_command(args, library)
            if args.command in READING_COMMANDS:
                return run_reading_command(args, library)
            return _show(library, args.session_id)
        finally:
            library.close()
    except Cancelled:
        _err("Cancelled.")
        return EXIT_CANCELLED
    except NoSuchSession as exc:
        _err(f"longread: {exc.message} `longread sessions` lists them.")
        return EXIT_ERROR
    except EngineError as exc:
        _err(f"longread: {exc.message}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("Cancelled.")
        return EXIT_CANCELLED


def _settings(args: argparse.Namespace) -> ReadSettings:
    kv = getattr(args, "kv", None)
    if isinstance(kv, list):  # ``probe --kv`` takes several; the first loads first
        kv = kv[0]
    return ReadSettings(
        n_ctx=getattr(args, "ctx", 0) or 0,
        kv_type=KvType(kv or KvType.F16),
        n_threads=getattr(args, "threads", 0) or 0,
        max_answer_tokens=getattr(args, "max_answer", None) or 256,
        wave_tokens=getattr(args, "wave_tokens", None),
        assemble=not getattr(args, "no_assemble", False),
    )


def _corpus_for(args: argparse.Namespace, library: Library) -> Corpus:
    stored: Corpus | None = None
    if args.session is not None:
        stored = library.session_corpus(args.session)
        if not args.paths:
            if stored is None:
                raise EngineError(f"Session {args.session} has no documents; name the files to read.")
            return stored
    corpus = read_corpus(args, library, password=_read_password(args))
    if args.session is not None and stored is not None and stored.fingerprint != corpus.fingerprint:
        raise EngineError(
            f"Session {args.session} reads other documents. Leave out the files to use its own, or start a new session."
        )
    return corpus


def _read_password(args: argparse.Namespace) -> str | None:
    """Return the PDF password from the prompt, ``--password-fd`` or the environment."""
    if getattr(args, "password", None):
        return getpass.getpass("PDF password: ")
    fd = getattr(args, "password_fd", None)
    if fd is not None:
        try:
            with open(fd, encoding="utf-8", closefd=True) as source:
                line = source.readline()
        except (OSError, UnicodeDecodeError) as exc:
            raise EngineError(
                f"Cannot read the password from file descriptor {fd} ({exc}). "
                "Pass an open descriptor, for example --password-fd 3 3< password.txt"
            ) from exc
        return line.removesuffix("\n").removesuffix("\r") or None
    return os.environ.get(PASSWORD_ENV) or None


def _ask(args: argparse.Namespace, library: Library) -> int:
    corpus = _corpus_for(args, library)
    library.use_memory(not args.no_memory)
    settings = library.settings
    cancel = CancelToken()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        _err("\nCancelling... (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    progress = _ProgressPrinter()
    try:
        try:
            prompt, budget = library.prepare_ask(corpus, args.question)
        except ContextOverflowError as exc:
            _err(f"longread: {exc.message}")
            if exc.waves_eta:  # waves can read it in this window (else the message says why not)
                _err(_waves_command(args, corpus, exc))
            return EXIT_ERROR
        _err(
            f"Corpus: {describe_documents(corpus.documents)}, {budget.corpus_tokens:,} tokens; "
            f"window {budget.n_ctx:,} tokens, KV cache {settings.kv_type}; model {library.model_path.name}"
        )
        if budget.memory.included or budget.memory.left_out:
            n = len(budget.memory.included)
            _err(f"Memory: {n} entr{'ies' if n != 1 else 'y'} from earlier sessions, {budget.memory_tokens:,} tokens.")
        if budget.memory.left_out:
            _err(budget.memory.describe_left_out() + " (`longread memory pin ID` keeps one in.)")

        def on_text(piece: str) -> None:
            progress.finish()
            progress.printed = False
            sys.stdout.write(piece)
            sys.stdout.flush()

        result = library.ask(
            corpus, args.question, session_id=args.session, on_progress=progress, on_text=on_text, cancel=cancel
        )
        sys.stdout.write("\n")
        sys.stdout.flush()
        _report(result)
        return EXIT_OK
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.finish()


def _waves_command(args: argparse.Namespace, corpus: Corpus, exc: ContextOverflowError) -> str:
    """The way on from a refusal: the waves command for the same files and question,
    with its estimate (issue 13 item 6)."""
    paths = [str(p) for p in args.paths] or [d.path or d.name for d in corpus.documents]
    files = " ".join(shlex.quote(p) for p in paths)
    options = "".join(
        f" {flag} {value}"
        for flag, value in (
            ("--model", args.model),
            ("--ctx", args.ctx or None),
            ("--kv", None if args.kv == "f16" else args.kv),
        )
        if value
    )
    eta = f" ({exc.waves_eta})" if exc.waves_eta else ""
    return f"Read it in waves: longread waves {files} -q {shlex.quote(args.question)}{options}{eta}"


def _report(result: AskResult) -> None:
    _report_warm(result)
    p = result.prefill
    rate = p.evaluated / p.seconds if p.seconds > 0 else 0.0
    reused = f", {p.reused:,} reused from context" if p.reused else ""
    _err(
        f"Read {p.evaluated:,} tokens in {p.seconds:.1f} s ({rate:,.0f} tokens/s{reused}); "
        f"answered {result.answer_tokens} tokens in {result.generate_s:.1f} s. "
        f"Session {result.session_id}, question {result.run_id}."
    )
    for line in AnswerCheck(result.citations, result.unfounded).problems():
        _err(line)


def _report_warm(result: AskResult) -> None:
    warm = result.warm
    if warm is None:
        return
    if warm.notice:
        _err(warm.notice)
    if warm.restored:
        cold = f" instead of {format_duration(warm.cold_prefill_s)}" if warm.cold_prefill_s else ""
        took = f"{warm.restore_s:.1f}" if warm.restore_s >= 1 else f"{warm.restore_s:.2f}"
        _err(f"Corpus restored from its snapshot in {took} s{cold}.")
    elif warm.composed:
        _err(f"Corpus {warm.describe_composition()}; --no-assemble reads it fresh.")
    elif warm.restored_tokens:  # the documents restored (or still loaded), the memory block read on top
        took = f" in {warm.restore_s:.1f} s" if warm.restore_s >= 1 else f" in {warm.restore_s:.2f} s"
        saved = " and saved with them" if warm.saved else ""
        _err(
            f"Documents restored{took} ({warm.restored_tokens:,} tokens); the memory block "
            f"({warm.corpus_tokens - warm.restored_tokens:,} tokens) read on top{saved}."
        )
    elif warm.saved:
        _err(f"Saved a snapshot of the corpus ({format_bytes(warm.snapshot_bytes)}): next time it opens at once.")


def _snapshots(args: argparse.Namespace, library: Library) -> int:
    cache = library.snapshots
    if args.budget is not None:
        cache.set_budget_bytes(int(args.budget * 1e9))
    if args.clear:
        print(f"Deleted every snapshot and the notes waves kept; freed {format_bytes(cache.clear())}.")
        return EXIT_OK
    snaps = cache.list_snapshots()
    for s in snaps:
        what = f"document {s.label or '(unnamed)'}, KV" if s.kind == "document" else f"window {s.n_ctx:,}, KV"
        print(
            f"{s.last_used_at[:16].replace('T', ' ')}  {format_bytes(s.size_bytes):>9}  {s.n_tokens:>7,} tokens  "
            f"{what} {s.kv_type}  {s.model_name}  (read in {format_duration(s.prefill_s)})"
        )
    docs = sum(s.kind == "document" for s in snaps)
    print(
        f"{len(snaps)} snapshot{'s' if len(snaps) != 1 else ''} ({docs} of single documents), "
        f"{format_bytes(cache.total_bytes())} "
        f"of a {format_bytes(cache.budget_bytes)} budget, in {cache.folder}"
    )
    return EXIT_OK


def _sessions(library: Library) -> int:
    sessions = library.sessions()
    if not sessions:
        print("No sessions yet. Start one with: longread ask FILE -q QUESTION")
        return EXIT_OK
    for s in sessions:
        n = library.count_questions(s.id)
        when = s.updated_at[:16].replace("T", " ")
        print(f"{s.id:>5}  {when}  {n:>3} question{'s' if n != 1 else ' '}  {s.title}")
    return EXIT_OK


def _show(library: Library, session_id: int) -> int:
    session = library.session(session_id)
    corpus = library.session_corpus(session_id)
    print(f"Session {session.id}: {session.title}")
    print(f"Started {session.created_at}, last used {session.updated_at}")
    if corpus is not None:
        print("Documents: " + ", ".join(f"{d.name} ({d.n_pages} p.)" for d in corpus.documents))
    asked = 0
    for run in library.runs(session_id):
        print()
        if run.kind is RunKind.ASK:
            asked += 1
            step = run.answer_step
            print(f"Q{asked}: {run.question}")
            status = "" if run.status is Status.DONE else f" [{run.status.value}]"
            print(f"A{asked}{status}: {run.answer or (step.text if step else '')}")
            if step is not None and step.prefill_tokens is not None:
                print(
                    f"   ({run.model}, window {run.settings.get('n_ctx')}, KV {run.settings.get('kv_type')}; "
                    f"read {step.prefill_tokens:,} tokens in {step.prefill_s or 0:.1f} s)"
                )
            continue
        # --resume takes the session: it goes on with the session's latest run not done.
        command = "think" if run.kind is RunKind.THINK else "waves"
        print(f"{run.kind.label}: {run.question}")
        if run.status is Status.DONE:
            print(f"Answer: {run.answer}")
        else:
            # A run stored but not started yet reads "planned", as before the run model.
            status = "planned" if run.status is Status.PENDING else run.status.value
            print(f"   [{status}: {run.progress()} done; go on with `longread {command} --resume {session_id}`]")
    return EXIT_OK


def _plan(args: argparse.Namespace, library: Library) -> int:
    """``longread plan``: exact token counts, then the planner's table (issue 5)."""
    corpus = _corpus_for(args, library)
    plan = library.plan(
        corpus,
        n_ctx=args.ctx,
        rope_scaling=args.rope,
        answer_tokens=args.max_answer,
        calibrate_missing=not args.no_calibrate,
        on_calibrate=lambda kv: _err(f"Measuring reading speed with a {kv} KV cache (once for this model)..."),
    )
    print(f"Documents: {describe_documents(corpus.documents)}")
    print("\n".join(plan.describe()))
    if plan.needed_tokens > plan.max_ctx or plan.waves is not None:  # both costs of waves (issue 13 item 3)
        waves = library.estimate_waves(corpus, corpus_tokens=plan.corpus_tokens)
        if waves is not None:
            print(f"Read in waves (longread waves): {waves.describe()}.")
    return EXIT_OK if plan.ok else EXIT_ERROR


def _probe(args: argparse.Namespace, library: Library) -> int:
    """``longread probe``: run (or resume) the probe grid, print the table, save the heatmap."""
    grid: ProbeGrid | None = None
    if args.lengths or args.depths or args.tasks or args.quick:
        base = default_grid(args.ctx or library.lane.full_window(), quick=args.quick)
        grid = ProbeGrid(
            lengths=tuple(args.lengths or base.lengths),
            depths=tuple(args.depths or base.depths),
            tasks=tuple(args.tasks or base.tasks),
        )
    cancel = CancelToken()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        _err("\nCancelling... the cells done are kept; run the same command to go on.")

    on_progress = _ProbePrinter()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        report = library.probe(kv_types=args.kv, grid=grid, quick=args.quick, on_progress=on_progress, cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
        on_progress.finish()
    print("\n".join(describe_report(report, model=library.model_path.name)))
    drawn = library.draw_probe(args.png)
    if drawn is not None:
        print(f"Heatmap: {drawn}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
