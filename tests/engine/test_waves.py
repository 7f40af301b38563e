"""Reading in waves with the real SmolLM2, real PDFs and a real SQLite file: the plan,
stored waves, a SIGKILL mid-read and a resume that never reads a finished wave again."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus, layout_document
from engine.errors import Cancelled, CancelToken, ContextOverflowError
from engine.ingest import read_documents
from engine.reading.export import export_markdown
from engine.reading.stepping import RunProgress
from engine.reading.waves import WaveReader, plan_waves, sub_document
from engine.runs import Step
from engine.runtime.llama import load_tokenizer
from engine.store import Store, open_store
from tests.conftest import FILLER, poll_store, write_pdf

ROOT = Path(__file__).parents[2]
# Tests use every core (the default): pytest runs one model at a time, and a killed
# CLI child runs while the test only polls the store.
QUESTION = "What is the vault access code?"
CODE = "482913"


def corpus_pages(n_pages: int, *, fact_page: int) -> list[str]:
    """Distinct pages of about 250 tokens each; page ``fact_page`` holds the vault code."""
    pages = []
    for i in range(1, n_pages + 1):
        body = f"Page {i} of the harbor office handbook, section {i * 7 % 31}. " + FILLER * 3
        if i == fact_page:
            body = f"Page {i} of the harbor office handbook. The vault access code is {CODE}. " + FILLER * 2
        pages.append(body)
    return pages


def _corpus(paths: list[Path], store: Store) -> Corpus:
    docs, skipped = read_documents(paths, store=store)
    assert not skipped
    return Corpus(tuple(docs))


def test_plan_splits_at_page_boundaries_and_reads_every_page_once(
    tmp_path: Path, store: Store, smollm2_path: Path
) -> None:
    a = write_pdf(tmp_path / "a.pdf", corpus_pages(7, fact_page=3))
    b = write_pdf(tmp_path / "b.pdf", corpus_pages(5, fact_page=2))
    corpus = _corpus([a, b], store)
    tok = load_tokenizer(smollm2_path)
    try:
        room = 700
        plans = plan_waves(corpus, tok, page_room=room)
        read = [(s.name, p) for plan in plans for s in plan.segments for p in range(s.first, s.last + 1)]
        assert read == [("a.pdf", p) for p in range(1, 8)] + [("b.pdf", p) for p in range(1, 6)]
        assert len(plans) >= 4
        for plan in plans:
            assert plan.tokens <= room
            # The wave reads the true page markers of its pages, nothing else.
            for s in plan.segments:
                text = layout_document(sub_document(corpus.documents[s.doc], s.first, s.last))
                assert f"[{s.name} p.{s.first}]" in text and f"[{s.name} p.{s.last}]" in text
                assert f"p.{s.last + 1}]" not in text

        # Greedy: each wave ends only because the next page would not have fitted in it.
        def cost(name: str, number: int) -> int:
            doc = corpus.find(name)
            assert doc is not None
            return len(tok.tokenize_text(layout_document(sub_document(doc, number, number))))

        for plan, following in zip(plans, plans[1:], strict=False):
            used = sum(cost(s.name, p) for s in plan.segments for p in range(s.first, s.last + 1))
            nxt = following.segments[0]
            assert used + cost(nxt.name, nxt.first) > room

        with pytest.raises(ContextOverflowError, match="Page 1 of a.pdf takes"):
            plan_waves(corpus, tok, page_room=100)
    finally:
        tok.close()


def test_orphaned_running_waves_become_interrupted(tmp_path: Path, store: Store) -> None:
    pdf = write_pdf(tmp_path / "h.pdf", corpus_pages(2, fact_page=1))
    corpus = _corpus([pdf], store)
    session = store.create_session(title="t", corpus_id=store.save_corpus(corpus), kind="waves")
    read_id = store.create_run(
        session,
        kind="waves",
        question="q",
        model="m",
        settings={},
        steps=[{"kind": "wave", "label": "h.pdf p.1"}, {"kind": "wave", "label": "h.pdf p.2"}, {"kind": "answer"}],
    )
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    store.update_run(read_id, status="running", pid=dead_pid)
    store.update_step(read_id, 1, status="done", text="n", pid=dead_pid)
    store.update_step(read_id, 2, status="running", pid=dead_pid)
    again = open_store(store.path)
    try:
        read = again.get_run(read_id)
        assert read is not None
        assert [w.status for w in read.waves] == ["done", "interrupted"]
        assert read.status == "interrupted"
        # Deleting the session deletes its reads and waves with it (foreign keys cascade).
        again.delete_session(session)
        assert again.db.execute("SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM steps)").fetchone()[0] == 0
    finally:
        again.close()


def test_cancel_marks_the_wave_cancelled(tmp_path: Path, store: Store, smollm2_path: Path) -> None:
    pdf = write_pdf(tmp_path / "h.pdf", corpus_pages(6, fact_page=2))
    corpus = _corpus([pdf], store)
    reader = WaveReader(store, smollm2_path, ReadSettings(n_ctx=1024, max_answer_tokens=16), max_note_tokens=16)
    cancel = CancelToken()
    steps: list[Step] = []
    try:
        with pytest.raises(Cancelled):
            reader.read(corpus, QUESTION, on_progress=lambda p: cancel.cancel(), on_step=steps.append, cancel=cancel)
    finally:
        reader.close()
    assert [(w.position, w.status) for w in steps] == [(1, "running"), (1, "cancelled")]
    [read] = store.list_runs(store.list_sessions()[0].id)
    assert read is not None and read.status == "cancelled"
    assert [w.status for w in read.waves][:2] == ["cancelled", "pending"]


def _cli(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LONGREAD_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_and_resume_waves(tmp_path: Path, *, n_pages: int, ctx: int, note_tokens: int, timeout: float) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "longread.db"
    fact_page = n_pages * 2 // 3
    pdf = write_pdf(tmp_path / "handbook.pdf", corpus_pages(n_pages, fact_page=fact_page))
    args = ["--ctx", str(ctx), "--note-tokens", str(note_tokens), "--max-answer", "32"]
    first = _cli(home, "waves", str(pdf), "-q", QUESTION, *args)
    try:
        # Kill while a wave after a finished one is being read (not in the gap between waves).
        poll_store(
            db,
            "SELECT count(*) FROM steps WHERE kind = 'wave' AND status = 'running' AND position >= 2",
            until=time.monotonic() + timeout,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        before = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT position, status, text, pid, started_at, finished_at FROM steps WHERE kind = 'wave'"
            )
        }
        n_waves = conn.execute("SELECT count(*) FROM steps WHERE kind = 'wave'").fetchone()[0]
    finally:
        conn.close()
    done_before = {p for p, row in before.items() if row[0] == "done"}
    assert done_before and len(done_before) < n_waves, "killed mid-read"
    assert any(row[0] == "running" for row in before.values()), "a wave was in progress when killed"

    second = _cli(home, "waves", "--resume", "1", *args)
    out, err = second.communicate(timeout=timeout * 3)
    assert second.returncode == 0, err
    ran_now = n_waves - len(done_before)
    assert f"Read {n_waves} wave(s): {ran_now} now, {len(done_before)} already done before. Session 1." in err
    assert f"Wave {max(done_before) + 1} of {n_waves}" in err
    # (A wave killed after its notes were written and kept, before it was marked done,
    # finds them kept on resume: "not needed".)
    pages = r"^Wave pages: (\d+ restored from snapshots(, )?)?(\d+ read(, )?)?(\d+ not needed \(.*\))?\.$"
    assert re.search(pages, err, re.MULTILINE), err
    assert "## Answer" in out

    store = open_store(db)
    try:
        assert store.integrity_check() == "ok"
        read = store.get_run(1)
        assert read is not None and read.status == "done" and read.answer
        assert all(w.status == "done" for w in read.waves)
        for w in read.waves:
            if w.position in done_before:
                # Never read again: same notes, same process, same times.
                assert (w.status, w.text, w.pid, w.started_at, w.finished_at) == before[w.position]
            else:
                assert w.pid == second.pid
            assert w.prompt_tokens is not None and w.prompt_tokens + note_tokens <= ctx
            assert w.text and w.output_tokens is not None and 0 < w.output_tokens <= note_tokens
        plan = read.plan
        assert len(plan) == n_waves
        pages = [p for wave in plan for s in wave["segments"] for p in range(s["first"], s["last"] + 1)]
        assert pages == list(range(1, n_pages + 1))
        markdown = export_markdown(store, 1)
        assert f"### Wave {n_waves} of {n_waves}" in markdown and "### Answer" in markdown
    finally:
        store.close()


@pytest.mark.slow  # a CLI child process reads with the bundled model
def test_killed_read_resumes_without_reading_finished_waves_again(tmp_path: Path) -> None:
    # About 2.9k tokens in a 1,024-token window: five or six waves.
    _kill_and_resume_waves(tmp_path, n_pages=18, ctx=1024, note_tokens=24, timeout=900)


@pytest.mark.slow
def test_30k_token_corpus_read_in_waves_survives_a_kill(tmp_path: Path) -> None:
    # About 30k tokens (185 pages): four times SmolLM2's 8k window (issue 6's required run).
    _kill_and_resume_waves(tmp_path, n_pages=185, ctx=8192, note_tokens=48, timeout=3600)


def test_progress_says_wave_i_of_n_with_an_eta(tmp_path: Path, store: Store, smollm2_path: Path) -> None:
    pdf = write_pdf(tmp_path / "h.pdf", corpus_pages(6, fact_page=5))
    corpus = _corpus([pdf], store)
    reader = WaveReader(store, smollm2_path, ReadSettings(n_ctx=1024, max_answer_tokens=24), max_note_tokens=24)
    seen: list[RunProgress] = []
    steps: list[Step] = []
    pieces: list[str] = []
    try:
        result = reader.read(corpus, QUESTION, on_progress=seen.append, on_step=steps.append, on_text=pieces.append)
    finally:
        reader.close()
    n = len(result.waves)
    assert n >= 2 and result.ran == list(range(1, n + 1))
    assert [(w.position, w.status) for w in steps if w.kind == "wave"] == [
        (i, s) for i in range(1, n + 1) for s in ("running", "done")
    ]
    assert [(w.position, w.status) for w in steps if w.kind == "answer"] == [(n + 1, "running"), (n + 1, "done")]
    reading = [p for p in seen if p.stage == "reading"]
    assert {p.wave for p in reading} == set(range(1, n + 1))
    assert all(p.n_waves == n for p in seen)
    # After the first wave the speed is known: every later line has an ETA.
    later = [p for p in seen if p.wave >= 2]
    assert later and all(p.eta_s is not None for p in later)
    assert later[0].describe().startswith(f"Wave 2 of {n}, about ")
    assert any(p.stage == "answer" for p in seen)
    assert "".join(pieces).strip().endswith(result.answer)
    stored = store.get_run(result.run_id)
    assert stored is not None and stored.answer == result.answer
    assert [w.text for w in stored.waves] == [w.text for w in result.waves]
