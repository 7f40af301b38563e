"""A process for the memory SIGKILL test: write memory entries until killed.

``python -m tests.engine.memory_worker DB FOLDER FIRST N`` stores FOLDER's documents, then
writes entries FIRST .. FIRST+N-1 in turn: even ones a long note of the user's (``note_text(i)``, thousands of words:
its search index takes a while to write), odd ones a finished ask on the fake backend (the
run marked done and its entry in one transaction). It prints ``writing I`` before and
``wrote I`` after each, so the test can aim its kill at a write.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.library import Library
from engine.runtime.fake import FakeBackend


def note_text(i: int) -> str:
    """The text of note ``i``: long enough that writing it (and indexing it) takes time."""
    return f"NOTE-{i} " + " ".join(f"word{i}x{j}" for j in range(100_000)) + f" END-{i}"


def main(argv: list[str]) -> int:
    db, folder, first, n = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    model = folder / "fake-model.gguf"
    model.write_bytes(b"not weights")
    library = Library(
        db, model_path=model, backend=FakeBackend(), settings=ReadSettings(max_answer_tokens=16, n_batch=64)
    )
    library.use_memory(False)  # the prompts stay small; only the writes matter here
    docs, _ = library.add_documents(sorted(folder.glob("*.txt")))
    corpus = Corpus(tuple(docs))
    for i in range(first, first + n):
        print(f"writing {i}", flush=True)
        if i % 2 == 0:
            library.memory.add(note_text(i), documents=[d.sha256 for d in docs])
        else:
            library.ask(corpus, f"Question {i}?")
        print(f"wrote {i}", flush=True)
    library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
