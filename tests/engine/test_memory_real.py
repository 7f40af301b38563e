"""Long-term memory with the real SmolLM2 (slow tier): a real SQLite file, a real document,
real KV snapshots.

Session one answers from a lease; session two, in a new ``Library`` (a new model load, as
a new process would), carries that answer as a dated memory block after the corpus: the
block's tokens decode to the entry, the corpus snapshot is restored and only the memory is
read, and a corpus + memory snapshot is saved. A third library with the same memory
restores it whole and answers as the second did. A pinned note carried in a snapshot and
then forgotten takes exactly that snapshot's file with it, and its text is in no file of
the data folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.library import Library
from engine.memory import MEMORY_INTRO
from tests.conftest import text_pages_file

CODE = "QX-5512"
LEASE = (
    "Harbor lease summary. The tenant is Marlow Shipping Ltd and the landlord is the Port Authority. "
    f"The award reference code is {CODE}. The lease runs for ten years from 1 March 2021. "
    "Rent is paid monthly in advance. The tenant must keep the quay clean and report damage within seven days. "
)


def _library(home: Path, model: Path) -> Library:
    return Library(home / "longread.db", model_path=model, settings=ReadSettings(max_answer_tokens=24, n_threads=2))


def test_memory_is_carried_warm_and_forgotten_with_smollm2(home: Path, tmp_path: Path, smollm2_path: Path) -> None:
    path = text_pages_file(tmp_path / "lease.txt", [LEASE * 3, LEASE.replace("Harbor", "Second") * 3])
    with _library(home, smollm2_path) as first:
        docs, _ = first.add_documents([path])
        corpus = Corpus(tuple(docs))
        one = first.ask(corpus, "What is the award reference code?")
        [entry] = first.memory.entries()
        assert entry.run_id == one.run_id and entry.answer == one.answer and entry.source == "ask"

    with _library(home, smollm2_path) as second:
        prompt, budget = second.prepare_ask(corpus, "Which code did we find last time?")
        block = second.tokenizer().detokenize(prompt.tokens[prompt.corpus_only_end : prompt.corpus_end])
        assert (
            block.startswith(MEMORY_INTRO)
            and f"[{entry.date}] The user asked: What is the award reference code?" in block
        )
        assert one.answer.strip()[:20] in block
        assert budget.memory_tokens == prompt.memory_tokens == second.measure(corpus).memory_tokens > 0
        second.use_memory(True, pick=[entry.id])
        two = second.ask(corpus, "Which code did we find last time?")
        # The corpus came from its snapshot; only the memory block and the question were read.
        assert two.warm is not None and two.warm.restored_tokens == prompt.corpus_only_end
        assert two.prefill.evaluated < prompt.memory_tokens + 64
        [key] = second.memory.snapshot_keys(entry.id)
        file = next(s.path for s in second.snapshots.list_snapshots() if s.key == key)
        assert file.is_file()

    with _library(home, smollm2_path) as third:
        third.use_memory(True, pick=[entry.id])
        again = third.ask(corpus, "Which code did we find last time?")
        assert again.warm is not None and again.warm.restored and again.prefill.evaluated <= 32
        assert again.answer == two.answer  # the restored corpus + memory answers as the cold read did

        # A note of the user's, carried (and snapshotted), then forgotten: gone from every file.
        phrase = "ocelot-marmalade-4417"
        note = third.memory.add(f"My private reference is {phrase}.", pinned=True)
        third.use_memory(True, pick=[entry.id, note])
        loaded = third.warm(corpus)  # no question: no answer that could repeat the phrase
        assert loaded.source == "prefill" and loaded.saved
        [key] = third.memory.snapshot_keys(note)
        held = next(s.path for s in third.snapshots.list_snapshots() if s.key == key)
        third.memory.forget(note)
        assert not held.exists() and file.exists()  # exactly the snapshot that held it
    for p in home.rglob("*"):
        if p.is_file():
            assert phrase.encode() not in p.read_bytes(), p


def test_cli_ask_carries_memory_and_no_memory_leaves_it_out(
    home: Path, tmp_path: Path, smollm2_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    path = text_pages_file(tmp_path / "lease.txt", [LEASE])
    base = ["ask", str(path), "--model", str(smollm2_path), "--max-answer", "8", "--threads", "2"]
    assert main([*base, "-q", "What is the award reference code?"]) == 0
    first = capsys.readouterr()
    assert "Memory:" not in first.err  # nothing remembered yet
    assert main([*base, "-q", "Which code did we find last time?"]) == 0
    second = capsys.readouterr()
    assert "Memory: 1 entry from earlier sessions" in second.err
    assert main([*base, "-q", "Which code did we find last time?", "--no-memory"]) == 0
    third = capsys.readouterr()
    assert "Memory:" not in third.err
    assert main(["memory", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 3 and all("asked" in line for line in listed)
