"""The ``Library`` facade and the run model on the fake backend: the fast tier.

Real SQLite files and real text documents; the model is ``engine.runtime.fake`` (scripted
replies, recorded prompts), so these run in seconds and test the engine's own logic:
runs and steps stored with one status vocabulary, one resume path for every kind, one
failure mapping, one export, one claim on runs another process is running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import Cancelled, CancelToken, EngineError, GenerationError, NoSuchSession
from engine.library import Library
from engine.reading.stepping import RunProgress
from engine.runs import RunKind, Status, Step, status_for
from engine.runtime.fake import FakeBackend
from engine.store import open_store

QUESTION = "What is the vault access code?"
FILLER = "The harbor office checks the mooring lines every morning and logs the tides. "


def _page(i: int, fact: str = "") -> str:
    return f"Page {i} of the handbook. {fact} " + FILLER * 30


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "fake-model.gguf"
    path.write_bytes(b"not weights: the fake backend reads nothing")
    return path


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


def _library(home: Path, model_file: Path, backend: FakeBackend, **settings: object) -> Library:
    values: dict[str, object] = {"max_answer_tokens": 32, "n_batch": 64}
    values.update(settings)
    return Library(
        home / "longread.db",
        model_path=model_file,
        backend=backend,
        settings=ReadSettings(**values),  # type: ignore[arg-type]
    )


@pytest.fixture
def library(home: Path, model_file: Path, backend: FakeBackend) -> Iterator[Library]:
    lib = _library(home, model_file, backend)
    yield lib
    lib.close()


def _corpus(library: Library, folder: Path, pages: list[str], name: str = "handbook.txt") -> Corpus:
    # Text files are cut into pages of 3,000 characters: one page of ours each.
    path = folder / name
    path.write_text("".join(p.ljust(2990)[:2990] + "\n\n" for p in pages), encoding="utf-8")
    docs, skipped = library.add_documents([path])
    assert not skipped
    return Corpus(tuple(docs))


def test_ask_is_a_run_of_one_stored_step(tmp_path: Path, library: Library, backend: FakeBackend) -> None:
    corpus = _corpus(library, tmp_path, [_page(1), _page(2, "The vault access code is 482913.")])
    backend.enqueue("The code is 482913 [handbook.txt p.2].")
    pieces: list[str] = []
    result = library.ask(corpus, QUESTION, on_text=pieces.append)

    assert result.answer == "The code is 482913 [handbook.txt p.2]." == "".join(pieces).strip()
    assert [c.ok for c in result.citations] == [True]
    [prompt] = backend.prompts
    assert QUESTION in prompt.text and "[handbook.txt p.2]" in prompt.text and "482913" in prompt.text
    [run] = library.runs(result.session_id)
    assert (run.id, run.kind, run.status, run.answer) == (result.run_id, RunKind.ASK, Status.DONE, result.answer)
    [step] = run.steps
    assert (step.kind, step.status, step.text) == ("answer", Status.DONE, result.answer)
    assert step.prompt_tokens == len(prompt.tokens) and step.output_tokens == result.answer_tokens > 0
    assert step.pid is not None and step.pid_started is not None
    assert library.count_questions(result.session_id) == 1
    assert [s.id for s in library.sessions("482913")] == [result.session_id]

    # A follow-up reads only its own tokens: the corpus stays in the context.
    backend.enqueue("Page 2.")
    second = library.ask(corpus, "On which page is it?", session_id=result.session_id)
    assert second.prefill.reused > 0 and second.prefill.evaluated < second.budget.prompt_tokens // 2
    assert [r.question for r in library.runs(result.session_id)] == [QUESTION, "On which page is it?"]


def test_deep_thinking_stores_five_steps_each_seeing_the_work_before(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913.")])
    replies = ["PLAN-1", "EXAMINE-2", "HYPOTHESES-3", "CRITIQUE-4", "The code is 482913 [handbook.txt p.1]."]
    backend.enqueue(*replies)
    events: list[Step] = []
    result = library.think(corpus, QUESTION, step_tokens=32, on_step=events.append)

    assert [s.text for s in result.steps] == replies and result.answer == replies[-1]
    assert [(e.position, e.status) for e in events] == [(i, s) for i in range(1, 6) for s in ("running", "done")]
    # Each step's prompt holds the corpus, the question and every earlier step's text.
    for i, prompt in enumerate(backend.prompts):
        assert "482913" in prompt.text and QUESTION in prompt.text
        assert all(r in prompt.text for r in replies[:i]) and replies[i] not in prompt.text
    run = library.get_run(result.run_id)
    assert run is not None and run.kind is RunKind.THINK and run.status is Status.DONE
    assert [s.kind for s in run.steps] == ["plan", "examine", "hypotheses", "critique", "answer"]
    assert run.answer == replies[-1]


def test_a_cancelled_run_resumes_through_the_one_resume_path(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913.")])
    backend.enqueue("PLAN", "EXAMINE")
    cancel = CancelToken()

    def cancel_in_step_3(p: RunProgress) -> None:
        if p.step == 3:
            cancel.cancel()

    with pytest.raises(Cancelled):
        library.think(corpus, QUESTION, step_tokens=16, on_progress=cancel_in_step_3, cancel=cancel)
    [run] = library.runs(library.sessions()[0].id)
    assert run.status is Status.CANCELLED
    assert [s.status for s in run.steps] == ["done", "done", "cancelled", "pending", "pending"]
    assert run.describe_stop() == "Stopped after 2 of 5 steps (cancelled)."
    assert library.run_to_resume(run.session_id).id == run.id

    backend.enqueue("HYPOTHESES", "CRITIQUE", "ANSWER")
    result = library.resume(run.id)
    assert result.ran == [3, 4, 5]  # type: ignore[union-attr]
    done = library.get_run(run.id)
    assert done is not None and done.status is Status.DONE and done.answer == "ANSWER"
    assert done.steps[:2] == run.steps[:2]  # never run again: same text, times, process
    # A done run resumes to its stored answer without running anything.
    calls = len(backend.prompts)
    again = library.resume(run.id)
    assert again.answer == "ANSWER" and len(backend.prompts) == calls


def test_waves_are_steps_and_a_failed_wave_resumes(
    tmp_path: Path, home: Path, model_file: Path, backend: FakeBackend
) -> None:
    library = _library(home, model_file, backend, n_ctx=2048)
    try:
        corpus = _corpus(library, tmp_path, [_page(i, "The code is 482913." if i == 4 else "") for i in range(1, 7)])
        failing = {"left": 1}

        def reply(prompt: str) -> str:
            # The third wave fails once (as llama.cpp might); everything else takes notes.
            if "p.3]" in prompt and failing["left"]:
                failing["left"] -= 1
                raise GenerationError("llama.cpp failed while reading the corpus: test.")
            return (
                "[handbook.txt p.4] Page 4 of the handbook."
                if "482913" in prompt.split("Passages kept")[0]
                else "Nothing relevant."
            )

        backend.enqueue(*[reply] * 20)
        with pytest.raises(GenerationError):
            library.read_in_waves(corpus, QUESTION, note_tokens=16)
        [run] = library.runs(library.sessions()[0].id)
        waves = run.waves
        assert len(waves) >= 3 and run.steps[-1].kind == "answer"
        assert run.status is Status.FAILED and run.error and "test" in run.error
        failed = [w for w in waves if w.status is Status.FAILED]
        assert len(failed) == 1 and failed[0].error == run.error
        assert all(w.done for w in waves[: waves.index(failed[0])])

        result = library.resume(run.id)
        done = library.get_run(run.id)
        assert done is not None and done.status is Status.DONE
        assert all(w.done for w in done.waves) and done.steps[-1].done
        assert result.ran == [w.position for w in waves if not w.done]  # type: ignore[union-attr]
        # Every page was read by exactly one wave.
        pages = [p for w in done.waves for s in w.detail["segments"] for p in range(s["first"], s["last"] + 1)]
        assert pages == list(range(1, len(corpus.documents[0].pages) + 1))
        markdown = library.export_markdown(done.session_id)
        assert f"### Wave {len(waves)} of {len(waves)}" in markdown and "### Answer" in markdown
    finally:
        library.close()


def test_status_for_is_the_one_failure_mapping() -> None:
    assert status_for(Cancelled()) == (Status.CANCELLED, None)
    assert status_for(GenerationError("llama.cpp failed.")) == (Status.FAILED, "llama.cpp failed.")
    assert status_for(KeyboardInterrupt()) == (Status.INTERRUPTED, None)
    assert status_for(RuntimeError("a bug")) == (Status.INTERRUPTED, None)


def test_an_interrupted_ask_is_answered_again_on_resume(
    tmp_path: Path, home: Path, library: Library, backend: FakeBackend
) -> None:
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913.")])
    run_id, _, _ = library.reader.start(corpus, QUESTION)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    library.store.update_run(run_id, status=Status.RUNNING, pid=int(dead.stdout))
    library.store.update_step(run_id, 1, status=Status.RUNNING, pid=int(dead.stdout), text="The code")
    reopened = open_store(home / "longread.db")  # the sweep of the next start
    try:
        run = reopened.get_run(run_id)
    finally:
        reopened.close()
    assert run is not None and run.status is Status.INTERRUPTED and run.steps[0].text == "The code"

    backend.enqueue("The code is 482913.")
    result = library.resume(run_id)
    assert result.answer == "The code is 482913."
    done = library.get_run(run_id)
    assert done is not None and done.status is Status.DONE and done.steps[0].text == "The code is 482913."


def test_a_run_another_live_process_is_running_is_refused(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    import psutil

    corpus = _corpus(library, tmp_path, [_page(1)])
    run_id = library.start_thinking(corpus, QUESTION, step_tokens=16)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = psutil.Process(other.pid).create_time()
        library.store.update_step(run_id, 1, status=Status.RUNNING, pid=other.pid, pid_started=started)
        with pytest.raises(EngineError, match=f"running in another Longread process \\(pid {other.pid}\\)"):
            library.resume(run_id)
    finally:
        other.kill()
        other.wait()
    assert backend.prompts == []  # nothing ran


def test_export_walks_every_run_in_the_order_asked(tmp_path: Path, library: Library, backend: FakeBackend) -> None:
    corpus = _corpus(library, tmp_path, [_page(1, "The vault access code is 482913.")])
    backend.enqueue("First answer [handbook.txt p.1].")
    first = library.ask(corpus, "First question?")
    backend.enqueue("P", "E", "H", "C", "Deep answer [handbook.txt p.9].")
    library.think(corpus, "Second question?", session_id=first.session_id, step_tokens=16)
    backend.enqueue("Third answer.")
    library.ask(corpus, "Third question?", session_id=first.session_id)

    markdown = library.export_markdown(first.session_id)
    order = [
        markdown.index(s) for s in ("## Q1: First question?", "## Deep thinking: Second question?", "## Q2: Third")
    ]
    assert order == sorted(order)
    assert "### 5. Answer" in markdown
    assert "[handbook.txt p.9] [\u26a0 unverified: handbook.txt has no page 9" in markdown
    assert library.count_questions(first.session_id) == 3


def test_an_unknown_session_is_named_without_the_cli(library: Library, home: Path) -> None:
    with pytest.raises(NoSuchSession) as raised:
        library.session(404)
    assert raised.value.message == "There is no session 404."
    with pytest.raises(NoSuchSession):
        library.export_markdown(404)
    # The CLI adds its own way out to the same error.
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", "show", "404"],
        env={**os.environ, "LONGREAD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "There is no session 404. `longread sessions` lists them." in out.stderr
