"""Deep thinking with the real SmolLM2, a real PDF and a real SQLite file: steps stored as
they finish, a cancel and a SIGKILL mid-step, resumes that never redo a finished step,
corpus prefix reuse between steps, and the Markdown export."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import Cancelled, CancelToken, ContextOverflowError
from engine.ingest import read_documents
from engine.reading.deep import STEPS, DeepThinker
from engine.reading.export import export_markdown
from engine.reading.stepping import RunProgress
from engine.runs import Step
from engine.store import Store, open_store
from tests.conftest import fact_pages, poll_store, write_pdf

ROOT = Path(__file__).parents[2]
# Tests use every core (the default): pytest runs one model at a time, and a killed
# CLI child runs while the test only polls the store.
QUESTION = "What is the vault access code?"
KINDS = [s.kind for s in STEPS]


def _corpus(paths: list[Path], store: Store) -> Corpus:
    docs, skipped = read_documents(paths, store=store)
    assert not skipped
    return Corpus(tuple(docs))


def test_cancelled_session_resumes_at_the_step_it_stopped(fact_pdf: Path, store: Store, smollm2_path: Path) -> None:
    corpus = _corpus([fact_pdf], store)
    settings = ReadSettings(n_ctx=2048)
    thinker = DeepThinker(store, smollm2_path, settings, step_tokens=24)
    cancel = CancelToken()
    events: list[Step] = []

    def cancel_in_step_3(p: RunProgress) -> None:
        if p.step == 3:
            cancel.cancel()

    try:
        with pytest.raises(Cancelled):
            thinker.think(corpus, QUESTION, on_progress=cancel_in_step_3, on_step=events.append, cancel=cancel)
        deep_id = events[0].run_id
        stopped = store.get_run(deep_id)
        assert stopped is not None and stopped.status == "cancelled"
        assert [s.status for s in stopped.steps] == ["done", "done", "cancelled", "pending", "pending"]
        assert [s.kind for s in stopped.steps] == KINDS
        first_two = stopped.steps[:2]
        assert all(s.text and s.output_tokens and 0 < s.output_tokens <= 24 for s in first_two)
        # Step 2 read only its own tokens: the corpus prefix stayed in context from step 1.
        plan, examine = first_two
        assert plan.prefill_tokens == plan.prompt_tokens
        assert examine.reused_tokens is not None and examine.prefill_tokens is not None
        assert examine.reused_tokens > examine.prefill_tokens
        assert examine.reused_tokens >= plan.prompt_tokens - 80

        progress: list[RunProgress] = []
        pieces: list[str] = []
        result = thinker.run(deep_id, on_progress=progress.append, on_text=pieces.append, on_step=events.append)
    finally:
        thinker.close()
    assert result.ran == [3, 4, 5]
    done = store.get_run(deep_id)
    assert done is not None and done.status == "done"
    assert [s.status for s in done.steps] == ["done"] * 5
    for before, after in zip(first_two, done.steps[:2], strict=True):
        assert after == before  # never generated again
    assert {p.step for p in progress} == {3, 4, 5}
    assert progress[-1].describe().startswith("Step 5 of 5 (answer)")
    assert result.answer == done.steps[4].text == done.answer
    assert "".join(pieces).replace(" ", "") == "".join(s.text for s in done.steps[2:]).replace(" ", "")
    markdown = export_markdown(store, result.session_id)
    for i, step in enumerate(done.steps, start=1):
        assert f"### {i}. {step.heading}" in markdown
        assert step.text.splitlines()[0] in markdown


def test_a_corpus_that_does_not_fit_is_refused_before_anything_is_stored(
    tmp_path: Path, store: Store, smollm2_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "long.pdf", fact_pages(12))
    corpus = _corpus([pdf], store)
    thinker = DeepThinker(store, smollm2_path, ReadSettings(n_ctx=1024), step_tokens=64)
    try:
        with pytest.raises(ContextOverflowError, match="Read them in waves instead"):
            thinker.start(corpus, QUESTION)
    finally:
        thinker.close()
    assert store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


@pytest.mark.slow  # a CLI child process reads with the bundled model
def test_killed_session_resumes_without_redoing_finished_steps(fact_pdf: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "longread.db"
    env = {**os.environ, "LONGREAD_HOME": str(home)}
    args = ["--ctx", "2048", "--step-tokens", "32"]
    cmd = [sys.executable, "-m", "engine.cli", "think"]
    first = subprocess.Popen(
        [*cmd, str(fact_pdf), "-q", QUESTION, *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Kill while a step after the first is being generated.
        poll_store(db, "SELECT count(*) FROM steps WHERE status = 'running' AND position >= 2", until=time.monotonic() + 600)
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
            r[0]: r[1:] for r in conn.execute("SELECT position, status, text, pid, started_at, finished_at FROM steps")
        }
    finally:
        conn.close()
    done_before = sorted(p for p, row in before.items() if row[0] == "done")
    assert done_before and done_before == list(range(1, len(done_before) + 1))
    assert [row[0] for p, row in sorted(before.items()) if p > len(done_before)][0] == "running"

    # The stopped session is listed, and shown with the way to go on.
    listed = subprocess.run([*cmd[:3], "sessions"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=120)
    assert listed.returncode == 0 and "1 question " in listed.stdout, listed.stdout
    shown = subprocess.run([*cmd[:3], "show", "1"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert f"Thought deeply: {QUESTION}" in shown.stdout
    assert f"[interrupted: {len(done_before)} of 5 steps done; go on with `longread think --resume 1`]" in shown.stdout

    second = subprocess.run(
        [*cmd, "--resume", "1", *args], cwd=ROOT, env=env, text=True, capture_output=True, timeout=900
    )
    assert second.returncode == 0, second.stderr
    n_now = 5 - len(done_before)
    assert (
        f"Deep thinking done: {n_now} step(s) now, {len(done_before)} already done before. Session 1." in second.stderr
    )
    assert f"Step {len(done_before) + 1} of 5" in second.stderr
    assert "## 5. Answer" in second.stdout

    store = open_store(db)
    try:
        assert store.integrity_check() == "ok"
        deep = store.get_run(1)
        assert deep is not None and deep.status == "done"
        for step in deep.steps:
            assert step.status == "done" and step.text
            if step.position in done_before:
                assert (step.status, step.text, step.pid, step.started_at, step.finished_at) == before[step.position]
            else:
                assert step.pid != before[done_before[0]][2]
    finally:
        store.close()

    exported = subprocess.run(
        [*cmd[:3], "export", "1", "--markdown"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=120
    )
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith(f"# {QUESTION}")
    shown = subprocess.run([*cmd[:3], "show", "1"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=120)
    assert f"Answer: {deep.answer}" in shown.stdout
    assert "## Deep thinking: What is the vault access code?" in exported.stdout
    assert "### 5. Answer" in exported.stdout


def test_show_and_sessions_name_a_stopped_run_by_its_session(
    fact_pdf: Path, home: Path, smollm2_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine import cli

    store = open_store(home / "longread.db")
    try:
        corpus = Corpus(tuple(read_documents([fact_pdf], store=store)[0]))
        store.create_session(title="an earlier question", corpus_id=store.save_corpus(corpus))
        thinker = DeepThinker(store, smollm2_path, ReadSettings(n_ctx=4096))
        try:
            deep_id = thinker.start(corpus, QUESTION)  # planned, not run: resumable
        finally:
            thinker.close()
        session_id = store.get_run(deep_id).session_id  # type: ignore[union-attr]
    finally:
        store.close()
    assert (deep_id, session_id) == (1, 2)  # run and session ids differ: --resume takes the session

    assert cli.main(["show", str(session_id)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"Thought deeply: {QUESTION}" in out
    assert f"[planned: 0 of 5 steps done; go on with `longread think --resume {session_id}`]" in out
    assert cli.main(["sessions"]) == cli.EXIT_OK
    listed = capsys.readouterr().out.splitlines()
    assert any(line.endswith(QUESTION) and "  1 question " in line for line in listed), listed
    assert any(line.endswith("an earlier question") and "  0 questions" in line for line in listed), listed
