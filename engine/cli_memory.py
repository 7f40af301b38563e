"""``longread memory``: what earlier sessions found (issue 15, engine/memory.py).

``longread memory list [--session ID] [--search WORDS]`` lists entries (id, date, pinned,
where from, the question or note); ``show ID`` prints one whole; ``add TEXT [--pin]
[--session ID]`` writes a note tied to a session's documents or pinned (carried into every
session); ``pin ID`` / ``unpin ID``; ``edit ID TEXT``; ``forget ID`` removes it for good
(the store, its search index, the snapshots that held it). ``longread ask --no-memory``
reads without it.
"""

from __future__ import annotations

import argparse

from engine.errors import EngineError
from engine.library import Library
from engine.memory import MemoryEntry

SOURCE_NAMES = {"ask": "asked", "think": "deep thinking", "waves": "read in waves", "user": "your note"}


def add_memory_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``longread memory ...`` to the CLI's subcommands."""
    memory = sub.add_parser("memory", help="list, add, pin, edit or forget what earlier sessions found")
    actions = memory.add_subparsers(dest="memory_command", required=True)
    listing = actions.add_parser("list", help="list memory entries, oldest first")
    listing.add_argument("--session", type=int, help="only those a session on these documents carries")
    listing.add_argument("--search", default="", help="only entries holding every word")
    show = actions.add_parser("show", help="print one entry whole")
    show.add_argument("entry_id", type=int)
    add = actions.add_parser("add", help="write a note of your own ('I act for the tenant')")
    add.add_argument("text")
    add.add_argument("--pin", action="store_true", help="carry it into every session")
    add.add_argument("--session", type=int, help="tie it to this session's documents")
    for name, helptext in (("pin", "carry an entry into every session"), ("unpin", "carry it only with its documents")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("entry_id", type=int)
    edit = actions.add_parser("edit", help="replace an entry's text (its answer, or your note)")
    edit.add_argument("entry_id", type=int)
    edit.add_argument("text")
    forget = actions.add_parser("forget", help="remove an entry for good (store, search index, snapshots)")
    forget.add_argument("entry_id", type=int)


def _line(entry: MemoryEntry) -> str:
    pin = " pinned" if entry.pinned else ""
    return f"{entry.id:>4}  {entry.date}  {SOURCE_NAMES.get(entry.source, entry.source):<13}{pin:<7}  {entry.title()}"


def run_memory_command(args: argparse.Namespace, library: Library) -> int:
    """Run ``longread memory ...``; return the exit code.

    Raises:
        EngineError: no such entry or session, or an entry that cannot be written.
    """
    book = library.memory
    command = args.memory_command
    if command == "list":
        if args.session is not None:
            corpus = library.session_corpus(args.session)
            shas = [d.sha256 for d in corpus.documents] if corpus is not None else []
            entries = book.entries(documents=shas)
        else:
            entries = book.search(args.search) if args.search.strip() else book.entries()
        if args.session is not None and args.search.strip():
            found = {e.id for e in book.search(args.search)}
            entries = [e for e in entries if e.id in found]
        if not entries:
            print("No memory entries.")
            return 0
        for entry in entries:
            print(_line(entry))
        return 0
    if command == "show":
        entry = book.get(args.entry_id)
        print(_line(entry))
        if entry.source != "user":
            print(f"\nQuestion: {entry.question}\n\nAnswer: {entry.answer}")
            checked = [f"{c.document} p.{c.page}" + ("" if c.ok else " (failed)") for c in entry.citations]
            if checked:
                print("\nCitations: " + ", ".join(checked))
        else:
            print(f"\n{entry.answer}")
        print(
            f"\nDocuments: {len(entry.documents)}"
            + (" (" + ", ".join(d[:12] for d in entry.documents) + ")" if entry.documents else "")
        )
        return 0
    if command == "add":
        about: list[str] = []
        if args.session is not None:
            session_docs = library.session_corpus(args.session)
            if session_docs is None:
                raise EngineError(f"Session {args.session} has no documents to tie the note to.")
            about = [d.sha256 for d in session_docs.documents]
        entry_id = book.add(args.text, pinned=args.pin, documents=about)
        print(f"Remembered as entry {entry_id}.")
        return 0
    if command in ("pin", "unpin"):
        book.pin(args.entry_id, command == "pin")
        print(f"Entry {args.entry_id} {'pinned' if command == 'pin' else 'unpinned'}.")
        return 0
    if command == "edit":
        book.edit(args.entry_id, args.text)
        print(f"Entry {args.entry_id} changed; snapshots holding the old text were removed.")
        return 0
    book.forget(args.entry_id)
    print(f"Entry {args.entry_id} forgotten: removed from the store, its search index and every snapshot that held it.")
    return 0
