"""``longread``: the headless commands.

``longread ask FILE_OR_FOLDER... -q QUESTION`` streams the answer to stdout and progress
to stderr; ``longread sessions`` lists sessions; ``longread show ID`` prints one;
``longread plan FILE_OR_FOLDER... [--model PATH] [--ctx N]`` prints what reading them
will cost (memory and time per KV cache type) and the settings to use.
``longread snapshots [--clear] [--budget GB]`` lists, clears or caps the saved corpus
snapshots; ``ask`` says on stderr when a corpus was restored from one.
``longread think``, ``longread waves`` and ``longread export`` (deep thinking, reading in
waves, Markdown export, all resumable: engine/cli_reading.py).
Exit codes: 0 done, 1 a user-facing error (message on stderr, no traceback), 130
cancelled by Ctrl-C. A first Ctrl-C cancels cooperatively (the partial answer is kept,
marked cancelled); a second one stops at once.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from engine import __version__
from engine.cli_reading import COMMANDS as READING_COMMANDS
from engine.cli_reading import add_reading_parsers, run_reading_command
from engine.config import ReadSettings
from engine.corpus import Corpus, Document
from engine.errors import Cancelled, EngineError
from engine.ingest import read_documents
from engine.models.bundled import bundled_model_path
from engine.errors import CancelToken
from engine.reading.ask import AskResult, Reader
from engine.runtime.backend import KvType
from engine.runtime.llama import PrefillProgress
from engine.runtime.snapshot import SnapshotCache
from engine.store import Store, open_store
from engine.units import format_bytes, format_duration

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 130


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


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="longread", description="Read whole documents with a local model.")
    parser.add_argument("--version", action="version", version=f"longread {__version__}")
    parser.add_argument("--verbose", action="store_true", help="log llama.cpp and engine details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer a question from whole documents")
    ask.add_argument("paths", nargs="*", type=Path, metavar="FILE_OR_FOLDER")
    ask.add_argument("-q", "--question", required=True)
    ask.add_argument("--model", type=Path, help="a GGUF model file (default: the bundled SmolLM2-135M-Instruct)")
    ask.add_argument("--ctx", type=int, default=0, help="context window in tokens (default: what the corpus needs)")
    ask.add_argument("--kv", choices=list(KvType), default="f16", help="KV cache type (default f16)")
    ask.add_argument("--threads", type=int, default=0, help="threads (default: every core)")
    ask.add_argument("--max-answer", type=int, default=256, help="most tokens in the answer (default 256)")
    ask.add_argument("--session", type=int, help="continue this session (its documents are used if none given)")
    ask.add_argument(
        "--password",
        nargs="?",
        const="",
        help="password of encrypted PDFs (give the flag alone to be asked without echo; never stored)",
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
    add_reading_parsers(sub)  # think, waves, export (issue 6)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("longread.llama").setLevel(logging.WARNING)
    try:
        store = open_store()
        try:
            if args.command == "ask":
                return _ask(args, store)
            if args.command == "sessions":
                return _sessions(store)
            if args.command == "plan":
                return _plan(args, store)
            if args.command == "snapshots":
                return _snapshots(args, store)
            if args.command in READING_COMMANDS:
                return run_reading_command(args, store)
            return _show(store, args.session_id)
        finally:
            store.close()
    except Cancelled:
        _err("Cancelled.")
        return EXIT_CANCELLED
    except EngineError as exc:
        _err(f"longread: {exc.message}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("Cancelled.")
        return EXIT_CANCELLED


def _corpus_for(args: argparse.Namespace, store: Store) -> Corpus:
    stored: Corpus | None = None
    if args.session is not None:
        session = store.get_session(args.session)
        if session is None:
            raise EngineError(f"There is no session {args.session}. `longread sessions` lists them.")
        stored = store.get_corpus(session.corpus_id) if session.corpus_id else None
        if not args.paths:
            if stored is None:
                raise EngineError(f"Session {args.session} has no documents; name the files to read.")
            return stored
    if not args.paths:
        raise EngineError('Name the files or folders to read, for example: longread ask filing.pdf -q "..."')

    def on_file(i: int, n: int, path: Path) -> None:
        _err(f"Adding {path.name} ({i + 1} of {n})")

    def on_pages(done: int, total: int, stage: str) -> None:
        if total >= 50 and (done == total or done % 50 == 0):
            _err(f"  {'OCR, ' if stage == 'ocr' else ''}page {done} of {total}")

    password = getattr(args, "password", None)
    if password == "":
        password = getpass.getpass("PDF password: ")
    docs, skipped = read_documents(
        args.paths, store=store, password=password, on_file=on_file, on_progress=on_pages, on_notice=_err
    )
    for path, why in skipped:
        _err(f"Skipped {path}: {why}")
    corpus = Corpus(tuple(docs))
    if args.session is not None and stored is not None and stored.fingerprint != corpus.fingerprint:
        raise EngineError(
            f"Session {args.session} reads other documents. Leave out the files to use its own, or start a new session."
        )
    return corpus


def _describe(docs: Sequence[Document]) -> str:
    pages = sum(d.n_pages for d in docs)
    return f"{len(docs)} document{'s' if len(docs) != 1 else ''}, {pages} page{'s' if pages != 1 else ''}"


def _ask(args: argparse.Namespace, store: Store) -> int:
    corpus = _corpus_for(args, store)
    model_path = args.model or bundled_model_path()
    settings = ReadSettings(n_ctx=args.ctx, kv_type=args.kv, n_threads=args.threads, max_answer_tokens=args.max_answer)
    reader = Reader(store, model_path, settings)
    cancel = CancelToken()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        _err("\nCancelling... (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    progress = _ProgressPrinter()
    try:
        prompt, budget = reader.prepare(corpus, args.question)
        _err(
            f"Corpus: {_describe(corpus.documents)}, {budget.corpus_tokens:,} tokens; "
            f"window {budget.n_ctx:,} tokens, KV cache {settings.kv_type}; model {model_path.name}"
        )

        def on_text(piece: str) -> None:
            progress.finish()
            progress.printed = False
            sys.stdout.write(piece)
            sys.stdout.flush()

        result = reader.ask(
            corpus, args.question, session_id=args.session, on_progress=progress, on_text=on_text, cancel=cancel
        )
        sys.stdout.write("\n")
        sys.stdout.flush()
        _report(result)
        return EXIT_OK
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.finish()
        reader.close()


def _report(result: AskResult) -> None:
    _report_warm(result)
    p = result.prefill
    rate = p.evaluated / p.seconds if p.seconds > 0 else 0.0
    reused = f", {p.reused:,} reused from context" if p.reused else ""
    _err(
        f"Read {p.evaluated:,} tokens in {p.seconds:.1f} s ({rate:,.0f} tokens/s{reused}); "
        f"answered {result.answer_tokens} tokens in {result.generate_s:.1f} s. "
        f"Session {result.session_id}, turn {result.turn_id}."
    )
    for c in result.citations:
        if not c.ok:
            _err(f"Unverified citation [{c.document} p.{c.page}]: {c.problem}.")


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
    elif warm.saved:
        _err(f"Saved a snapshot of the corpus ({format_bytes(warm.snapshot_bytes)}): next time it opens at once.")


def _snapshots(args: argparse.Namespace, store: Store) -> int:
    cache = SnapshotCache(store)
    if args.budget is not None:
        cache.set_budget_bytes(int(args.budget * 1e9))
    if args.clear:
        print(f"Deleted every snapshot; freed {format_bytes(cache.clear())}.")
        return EXIT_OK
    snaps = cache.list_snapshots()
    for s in snaps:
        print(
            f"{s.last_used_at[:16].replace('T', ' ')}  {format_bytes(s.size_bytes):>9}  {s.n_tokens:>7,} tokens  "
            f"window {s.n_ctx:,}, KV {s.kv_type}  {s.model_name}  (read in {format_duration(s.prefill_s)})"
        )
    print(
        f"{len(snaps)} snapshot{'s' if len(snaps) != 1 else ''}, {format_bytes(cache.total_bytes())} "
        f"of a {format_bytes(cache.budget_bytes)} budget, in {cache.folder}"
    )
    return EXIT_OK


def _sessions(store: Store) -> int:
    sessions = store.list_sessions()
    if not sessions:
        print("No sessions yet. Start one with: longread ask FILE -q QUESTION")
        return EXIT_OK
    for s in sessions:
        n = store.count_questions(s.id)
        when = s.updated_at[:16].replace("T", " ")
        print(f"{s.id:>5}  {when}  {n:>3} question{'s' if n != 1 else ' '}  {s.title}")
    return EXIT_OK


def _show(store: Store, session_id: int) -> int:
    session = store.get_session(session_id)
    if session is None:
        raise EngineError(f"There is no session {session_id}. `longread sessions` lists them.")
    corpus = store.get_corpus(session.corpus_id) if session.corpus_id else None
    print(f"Session {session.id}: {session.title}")
    print(f"Started {session.created_at}, last used {session.updated_at}")
    if corpus is not None:
        print("Documents: " + ", ".join(f"{d.name} ({d.n_pages} p.)" for d in corpus.documents))
    for turn in store.list_turns(session_id):
        print()
        print(f"Q{turn.position}: {turn.question}")
        status = "" if turn.status == "done" else f" [{turn.status}]"
        print(f"A{turn.position}{status}: {turn.answer}")
        if turn.prefill_tokens is not None:
            print(
                f"   ({turn.model}, window {turn.settings.get('n_ctx')}, KV {turn.settings.get('kv_type')}; "
                f"read {turn.prefill_tokens:,} tokens in {turn.prefill_s or 0:.1f} s)"
            )
    from engine.reading.deep import list_deep
    from engine.reading.waves import list_reads

    # --resume takes the session: it goes on with the session's latest run not done.
    for deep in list_deep(store, session_id):
        done = sum(1 for step in deep.steps if step.status == "done")
        _show_run("Thought deeply", deep.question, deep.answer, deep.status, f"{done} of {len(deep.steps)} steps",
                  f"longread think --resume {session_id}")
    for read in list_reads(store, session_id):
        _show_run("Read in waves", read.question, read.answer, read.status, f"{read.done_waves} of {read.n_waves} waves",
                  f"longread waves --resume {session_id}")
    return EXIT_OK


def _show_run(how: str, question: str, answer: str, status: str, progress: str, resume: str) -> None:
    print()
    print(f"{how}: {question}")
    if status == "done":
        print(f"Answer: {answer}")
    else:
        print(f"   [{status}: {progress} done; go on with `{resume}`]")


def _plan(args: argparse.Namespace, store: Store) -> int:
    """``longread plan``: exact token counts, then the planner's table (issue 5)."""
    from engine.planner import plan_corpus

    corpus = _corpus_for(args, store)
    plan = plan_corpus(
        corpus,
        args.model or bundled_model_path(),
        store=store,
        n_ctx=args.ctx,
        n_threads=args.threads,
        rope_scaling=args.rope,
        answer_tokens=args.max_answer,
        calibrate_missing=not args.no_calibrate,
        on_calibrate=lambda kv: _err(f"Measuring reading speed with a {kv} KV cache (once for this model)..."),
    )
    print(f"Documents: {_describe(corpus.documents)}")
    print("\n".join(plan.describe()))
    return EXIT_OK if plan.ok else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
