"""A process for the SIGKILL tests: ingest a folder, or answer a question, then exit.

Run as ``python -m tests.engine.crash_worker ingest DB FOLDER`` or
``python -m tests.engine.crash_worker ask DB MODEL FOLDER QUESTION``. It prints one line
per milestone (``ingesting``, ``file I NAME`` before each file, ``piece N`` after each
piece of the answer streams, ``done ...``) so the test can aim its kill.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.ingest import read_documents
from engine.reading.ask import Reader
from engine.store import open_store


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str]) -> int:
    mode, db = argv[0], Path(argv[1])
    store = open_store(db)
    if mode == "ingest":
        _say("ingesting")
        docs, _ = read_documents([Path(argv[2])], store=store, on_file=lambda i, n, p: _say(f"file {i} {p.name}"))
        _say(f"done {len(docs)}")
        return 0
    model, folder, question = Path(argv[2]), Path(argv[3]), argv[4]
    docs, _ = read_documents([folder], store=store)
    # 160 tokens stream for a few seconds: long enough that the partial answer, saved once
    # a second, is on disk when many of the kills land.
    reader = Reader(store, model, ReadSettings(max_answer_tokens=160, n_threads=1), use_snapshots=False)
    pieces = 0

    def on_text(piece: str) -> None:
        nonlocal pieces
        pieces += 1
        _say(f"piece {pieces}")

    try:
        result = reader.ask(Corpus(tuple(docs)), question, on_text=on_text)
    finally:
        reader.close()
    _say("done " + json.dumps(result.answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
