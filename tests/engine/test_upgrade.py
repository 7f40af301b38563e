"""Upgrading a store written by the 0.1.0 release (tests/fixtures/store-0.1.0.db, written
by that release's own code: see tests/fixtures/make_store_0_1_0.py.txt) to the run model.

Every question, answer, step text, status and timestamp of the old ``turns``,
``deep_sessions``/``deep_steps`` and ``wave_reads``/``waves`` tables must come through
m006 into ``runs``/``steps``; the expected values are read from the fixture's own old
tables, not written out here. The read in waves stopped after one wave must resume
without reading that wave again (real SmolLM2).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.library import Library
from engine.runs import RunKind, Status
from engine.store import open_store
from tests.conftest import read_old_store

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-0.1.0.db"


def _old(sql: str) -> list[dict[str, Any]]:
    return read_old_store(FIXTURE, sql)


@pytest.fixture
def upgraded(tmp_path: Path) -> Path:
    path = tmp_path / "longread.db"
    shutil.copy(FIXTURE, path)
    return path


def test_every_question_answer_step_status_and_time_survives(upgraded: Path) -> None:
    turns = _old("SELECT * FROM turns ORDER BY id")
    deep = _old("SELECT * FROM deep_sessions")
    deep_steps = _old("SELECT * FROM deep_steps ORDER BY position")
    reads = _old("SELECT * FROM wave_reads")
    waves = _old("SELECT * FROM waves ORDER BY position")
    assert len(turns) == 2 and len(deep) == 1 and len(reads) == 1 and len(deep_steps) == 5 and len(waves) == 4

    store = open_store(upgraded)
    try:
        assert store.integrity_check() == "ok"
        tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "steps", "runs_fts"} <= tables
        assert not tables & {"turns", "turns_fts", "deep_sessions", "deep_steps", "wave_reads", "waves"}

        # The plain ask: two turns in one session, in order; the second was running in a
        # process that died, so the orphan sweep marks it interrupted with its partial answer.
        asks = store.list_runs(turns[0]["session_id"])
        assert [r.kind for r in asks] == [RunKind.ASK, RunKind.ASK]
        for run, turn in zip(asks, turns, strict=True):
            step = run.steps[0]
            assert (run.question, run.created_at, run.finished_at) == (
                turn["question"],
                turn["created_at"],
                turn["finished_at"],
            )
            assert step.text == turn["answer"] and step.kind == "answer"
            assert (step.prefill_tokens, step.output_tokens, step.prefill_s) == (
                turn["prefill_tokens"],
                turn["answer_tokens"],
                turn["prefill_s"],
            )
        assert asks[0].status is Status.DONE and asks[0].answer == turns[0]["answer"]
        assert turns[1]["status"] == "running"
        assert asks[1].status is Status.INTERRUPTED and asks[1].steps[0].status is Status.INTERRUPTED

        # The deep run: five done steps with their texts and times, its answer on the run.
        [think] = store.list_runs(deep[0]["session_id"])
        assert think.kind is RunKind.THINK and think.status is Status.DONE
        assert (think.question, think.created_at, think.finished_at) == (
            deep[0]["question"],
            deep[0]["created_at"],
            deep[0]["finished_at"],
        )
        assert [(s.kind, s.status, s.text, s.started_at, s.finished_at) for s in think.steps] == [
            (s["kind"], s["status"], s["text"], s["started_at"], s["finished_at"]) for s in deep_steps
        ]
        assert think.answer == deep_steps[-1]["text"]
        assert json.loads(deep[0]["settings"]) == think.settings

        # The read in waves: four waves (done, cancelled, pending, pending) and a pending answer.
        [read] = store.list_runs(reads[0]["session_id"])
        assert read.kind is RunKind.WAVES and read.status is Status.CANCELLED
        assert read.plan == json.loads(reads[0]["plan"])
        assert [(w.label, w.status, w.text, w.started_at, w.finished_at) for w in read.waves] == [
            (w["pages"], w["status"], w["notes"], w["started_at"], w["finished_at"]) for w in waves
        ]
        assert [w.detail["segments"] for w in read.waves] == [json.loads(w["segments"]) for w in waves]
        assert read.steps[-1].kind == "answer" and read.steps[-1].status is Status.PENDING

        # Every session counts its questions; search finds the migrated answers.
        assert [store.count_questions(s.id) for s in sorted(store.list_sessions(), key=lambda s: s.id)] == [2, 1, 1]
        assert [s.id for s in store.search_sessions("termination")] == [reads[0]["session_id"]]
        assert turns[0]["session_id"] in {s.id for s in store.search_sessions("award reference")}
    finally:
        store.close()


@pytest.mark.slow
def test_the_stopped_read_resumes_after_the_upgrade(upgraded: Path, smollm2_path: Path) -> None:
    [old_read] = _old("SELECT * FROM wave_reads")
    [first_wave] = _old("SELECT * FROM waves WHERE position = 1")
    library = Library(upgraded, model_path=smollm2_path, use_snapshots=False)
    try:
        run = library.run_to_resume(old_read["session_id"], RunKind.WAVES)
        result = library.resume(run.id)
        done = library.get_run(run.id)
    finally:
        library.close()
    assert done is not None and done.status is Status.DONE and done.answer
    assert result.ran == [2, 3, 4]  # type: ignore[union-attr]
    wave = done.waves[0]
    assert (wave.text, wave.started_at, wave.finished_at) == (
        first_wave["notes"],
        first_wave["started_at"],
        first_wave["finished_at"],
    )
    assert all(w.status is Status.DONE and w.text for w in done.waves)
