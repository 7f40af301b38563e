"""Effective-context probes (issue 14): the generators, the scorer, the runner on the fake
backend (storing, cancel and resume), the planner's use of a stored measurement, and a
real probe on SmolLM2 that stores its rows and draws a heatmap."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from engine.config import ReadSettings
from engine.errors import Cancelled, CancelToken
from engine.library import Library
from engine.models.gguf import ModelInfo
from engine.planning import MeasuredContext, make_plan
from engine.probe import (
    SPREAD,
    SUITE,
    TASKS,
    THRESHOLD,
    ProbeGrid,
    ProbeProgress,
    describe_report,
    effective_context,
    load_prose,
    make_sample,
    score_answer,
    suite_key,
)
from engine.runtime.backend import KvType
from engine.runtime.fake import FakeBackend
from engine.store import Store
from engine.store.db import ProbeCell


def _words(text: str) -> int:
    return len(text.split())


def _sample(task: str, seed: int = 7, depth: float = 0.5, budget: int = 600):
    return make_sample(task, length=1024, depth=depth, seed=seed, budget=budget, count=_words)


# -- generators and scorer ---------------------------------------------------------


def test_the_prose_is_real_text_not_filler() -> None:
    prose = load_prose()
    assert len(prose) > 2000
    assert len(set(prose)) > 0.9 * len(prose)  # not a repeated filler sentence


@pytest.mark.parametrize("task", TASKS)
def test_generators_are_deterministic_per_seed_and_fit_the_budget(task: str) -> None:
    a, b, c = _sample(task), _sample(task), _sample(task, seed=8)
    assert a == b
    assert a.context != c.context and a.answers != c.answers
    assert 500 < _words(a.context) <= 600
    for answer in a.answers:
        assert answer in a.context
    assert score_answer(a.question + " " + a.answer_prefix, a.answers) == 0  # repeating the question scores nothing


@pytest.mark.parametrize("task", TASKS)
def test_the_scorer_finds_planted_answers_and_not_perturbed_ones(task: str) -> None:
    s = _sample(task)
    assert score_answer(" " + ", ".join(s.answers) + ".", s.answers) == 1.0
    perturbed = []
    for answer in s.answers:
        last = answer[-1]
        swap = {"9": "0"}.get(last, chr(ord(last) + 1)) if last.isdigit() else ("a" if last != "a" else "b")
        perturbed.append(answer[:-1] + swap)
    assert score_answer(" ".join(perturbed), s.answers) == 0.0
    assert score_answer(" ".join(s.answers[:1]), s.answers) == pytest.approx(1 / len(s.answers))


def test_needles_go_at_their_depth() -> None:
    early, late = _sample("niah_single", depth=0.0), _sample("niah_single", depth=1.0)
    value = early.answers[0]
    assert early.context.index(value) < len(early.context) * 0.1
    assert late.context.index(late.answers[0]) > len(late.context) * 0.9


def test_numbers_with_thousands_separators_count() -> None:
    assert score_answer("It is 1,234,567.", ["1234567"]) == 1.0
    assert score_answer("It is 12345678.", ["1234567"]) == 0.0


# -- the runner on the fake backend ---------------------------------------------------


def oracle(prompt: str) -> str:
    """A perfect reader of the probe's prompts (what a scripted fake model answers)."""
    question = prompt.rsplit("<|im_start|>user", 1)[-1].split("Question:")[-1]
    if m := re.search(r"magic numbers? for (\S+) mentioned", question):
        return " " + ", ".join(re.findall(rf"for {re.escape(m.group(1))} is: (\d+)", prompt)) + "."
    if m := re.search(r"assigned the value (\d+)", question):
        names, value = [], m.group(1)
        assigned = dict(re.findall(r"VAR (\w+) = (?:VAR )?(\w+)\.", prompt))
        frontier = {value}
        while True:
            new = [n for n, v in assigned.items() if v in frontier and n not in names]
            if not new:
                return " " + " ".join(names)
            names += new
            frontier |= set(new)
    listed = re.findall(r"\d+\. ([a-z]+)", prompt.split("Question:")[0])
    return " " + ", ".join(w for w, _ in Counter(listed).most_common(5))


def forgetful(limit: int):
    """The oracle up to ``limit`` words of prompt, nonsense beyond."""

    def reply(prompt: str) -> str:
        return oracle(prompt) if len(prompt.split()) <= limit else " I do not know."

    return reply


def _library(store: Store, backend: FakeBackend, tmp_path: Path) -> Library:
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"not a real model: the fake backend reads nothing")
    return Library(store, model_path=model, settings=ReadSettings(n_threads=1), backend=backend)


GRID = ProbeGrid(lengths=(512, 1024), depths=(0.25, 0.75))


def test_a_perfect_model_reads_every_cell_and_the_whole_grid_is_effective(store: Store, tmp_path: Path) -> None:
    backend = FakeBackend(n_vocab=1 << 20, n_ctx_train=1024)
    n_cells = len(GRID.cells())
    backend.enqueue(*[oracle] * n_cells)
    progress: list[ProbeProgress] = []
    report = _library(store, backend, tmp_path).probe(grid=GRID, on_progress=progress.append)
    assert report.ran == n_cells == len(report.cells) == 2 * (4 * 2 + 1)
    assert all(c.score == 1.0 for c in report.cells), [(c.task, c.output) for c in report.cells if c.score < 1]
    assert all(c.prompt_tokens <= c.length for c in report.cells)
    assert {c.depth for c in report.cells if c.task == "cwe"} == {SPREAD}
    assert report.effective[KvType.F16].tokens == 1024
    assert progress[-1].done == progress[-1].total == n_cells and progress[-1].eta_s == 0
    stored = store.get_probe_cells(report.model_sha256, suite=suite_key())
    assert len(stored) == n_cells and stored[0].n_ctx == 1024
    # Each cell read its own haystack: no two prompts share a prefix beyond the frame.
    heads = {p.text[:400] for p in backend.prompts}
    assert len(heads) == n_cells


def test_the_effective_context_is_the_longest_length_every_task_passes(store: Store, tmp_path: Path) -> None:
    backend = FakeBackend(n_vocab=1 << 20, n_ctx_train=1024)
    backend.enqueue(*[forgetful(350)] * len(GRID.cells()))
    report = _library(store, backend, tmp_path).probe(grid=GRID)
    m = report.effective[KvType.F16]
    assert m.tokens == 512 and m.threshold == THRESHOLD and m.weakest.endswith("at 1,024 tokens")
    assert m.describe() == "measured 512 tokens at f16"
    text = "\n".join(describe_report(report, model="fake.gguf"))
    assert "KV cache f16: effective context 512 tokens (ended by single needle 0%, " in text
    assert "every task at least 85.6%, RULER's threshold" in text
    assert re.search(r"single needle\s+100%\s+0%", text)


def test_a_cancelled_probe_keeps_its_cells_and_resumes(store: Store, tmp_path: Path) -> None:
    backend = FakeBackend(n_vocab=1 << 20, n_ctx_train=1024)
    backend.enqueue(*[oracle] * 40)
    library = _library(store, backend, tmp_path)
    token = CancelToken()

    def on_progress(p: ProbeProgress) -> None:
        if p.done == 3:
            token.cancel()  # cancelled while the fourth cell prefills

    with pytest.raises(Cancelled):
        library.probe(grid=GRID, on_progress=on_progress, cancel=token)
    kept = library.probe_cells()
    assert len(kept) == 3
    asked = len(backend.prompts)
    report = library.probe(grid=GRID)
    assert report.ran == len(GRID.cells()) - 3
    assert len(backend.prompts) - asked == report.ran  # the three stored cells were not asked again
    assert len(library.probe_cells()) == len(GRID.cells())


def test_progress_inside_a_cell_reports_the_tokens_read(store: Store, tmp_path: Path) -> None:
    backend = FakeBackend(n_vocab=1 << 20, n_ctx_train=2048)
    grid = ProbeGrid(lengths=(2048,), depths=(0.5,), tasks=("niah_single", "vt"))
    backend.enqueue(*[oracle] * 2)
    library = _library(store, backend, tmp_path)
    library.use_settings(ReadSettings(n_threads=1, n_batch=256))
    progress: list[ProbeProgress] = []
    report = library.probe(grid=grid, on_progress=progress.append)
    reading = [p for p in progress if p.reading is not None]
    for task, cell in zip(("niah_single", "vt"), report.cells, strict=True):
        mine = [p.reading for p in reading if p.task == task]
        assert len(mine) >= cell.prompt_tokens // 256  # one report per batch of 256
        dones = [r.done for r in mine if r is not None]
        assert dones == sorted(dones) and dones[-1] == cell.prompt_tokens
        assert all(r is not None and r.total == cell.prompt_tokens for r in mine)
    # Inside a cell the count of cells does not move; a finished cell has its score and no reading.
    first_cell = [p for p in reading if p.task == "niah_single"]
    assert {(p.done, p.total) for p in first_cell} == {(0, 2)}
    finished = [p for p in progress if p.last_score is not None]
    assert [p.done for p in finished] == [1, 2] and all(p.reading is None for p in finished)


def test_the_cli_shows_a_long_cells_reading_in_quarters(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import _ProbePrinter
    from engine.runtime.backend import PrefillProgress

    printer = _ProbePrinter()
    printer.tty = False  # a log
    cell = ProbeProgress(3, 10, "q8_0", "vt", 8192, 0.5, 100.0, 600.0)
    printer(cell)
    for batch_end in range(512, 8150 + 512, 512):
        printer(replace(cell, reading=PrefillProgress(min(batch_end, 8150), 8150, 50.0, 1.0)))
    printer(replace(cell, done=4, last_score=0.4))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Probe cell 3/10: q8_0 vt 8,192 tokens, about 10 min 00 s left"
    assert [ln.split(": read ")[1].split(" (")[0] for ln in lines[1:-1]] == [
        "2,048/8,150",
        "4,096/8,150",
        "6,144/8,150",
    ]
    assert lines[-1] == "Probe cell 4/10: q8_0 vt 8,192 tokens -> 40%, about 10 min 00 s left"


def test_cells_measured_on_other_prose_are_kept_apart_and_measured_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The haystacks are cut from the running Python's documentation: another Python
    # version builds other prompts, so its cells must not count as this one's.
    import engine.probe as probe

    backend = FakeBackend(n_vocab=1 << 20, n_ctx_train=1024)
    backend.enqueue(*[oracle] * (2 * len(GRID.cells())))
    library = _library(store, backend, tmp_path)
    here = suite_key()
    assert here.startswith(SUITE + "+prose-")
    first = library.probe(grid=GRID)
    assert first.ran == len(GRID.cells())

    other_python = tuple(s.replace("the", "a") for s in load_prose())  # a release with other docstrings
    monkeypatch.setattr(probe, "load_prose", lambda: other_python)
    probe.suite_key.cache_clear()
    try:
        elsewhere = suite_key()
        assert elsewhere != here and elsewhere.startswith(SUITE + "+prose-")
        assert library.probe_cells() == [] and library.effective_context() == {}
        second = library.probe(grid=GRID)
        assert second.ran == len(GRID.cells())  # nothing reused from the other prose
        assert {c.suite for c in library.probe_cells()} == {elsewhere}
    finally:
        monkeypatch.undo()
        probe.suite_key.cache_clear()
    assert suite_key() == here
    assert len(store.get_probe_cells(first.model_sha256, suite=here)) == len(GRID.cells())
    assert len(store.get_probe_cells(first.model_sha256)) == 2 * len(GRID.cells())


def test_effective_context_is_zero_when_the_shortest_length_fails() -> None:
    def cell(task: str, length: int, score: float) -> ProbeCell:
        return ProbeCell(
            model_sha256="m", kv_type="q4_0", n_ctx=2048, suite=suite_key(), task=task, length=length, depth=0.5,
            sample=0, seed=1, prompt_tokens=length, expected=("1",), output="", score=score, prefill_s=0.0,
            generate_s=0.0, runtime_version="x",
        )  # fmt: skip

    cells = [cell("niah_single", 1024, 1.0), cell("vt", 1024, 0.5), cell("niah_single", 2048, 1.0)]
    m = effective_context(cells)[KvType.Q4_0]
    assert m.tokens == 0 and m.shortest_tested == 1024
    assert "below 85.6% even at 1,024 tokens at q4_0" == m.describe()


# -- the planner --------------------------------------------------------------------


def _info() -> ModelInfo:
    return FakeBackend(n_ctx_train=8192).inspect_model(Path("x.gguf"))


def test_the_plan_recommends_waves_when_the_corpus_is_beyond_the_effective_context() -> None:
    info = _info()
    plain = make_plan(info, 5000, available_bytes=None)
    assert plain.waves is None and plain.ok
    measured = {
        kv: MeasuredContext(kv, 2048, 1024, 8192, 8192, THRESHOLD, "single needle 50% at 4,096 tokens") for kv in KvType
    }
    plan = make_plan(info, 4800, available_bytes=None, measured=measured)  # 3 waves of 1,664 + frame
    assert plan.ok and plan.fits_window
    assert plan.waves is not None and plan.waves.wave_tokens == 2048 and plan.waves.n_waves == 3
    text = "\n".join(plan.describe())
    assert "fits the window, beyond what this model reliably reads (measured 2,048 tokens at f16)" in text
    assert "Recommended: read in 3 waves of about 2,048 tokens" in text
    # Within the measured length nothing changes.
    short = make_plan(info, 1000, available_bytes=None, measured=measured)
    assert short.waves is None and all(r.reliability is None for r in short.rows)


def test_longread_plan_reads_the_stored_measurement(store: Store, tmp_path: Path) -> None:
    from engine.corpus import Corpus, Document, Page

    backend = FakeBackend(n_vocab=1 << 20, n_ctx_train=1024)
    backend.enqueue(*[forgetful(350)] * len(GRID.cells()))
    library = _library(store, backend, tmp_path)
    library.probe(grid=GRID)
    # 150 words are 300 fake tokens; with the question and the answer's 256, beyond 512 and within 1,024.
    text = " ".join(" ".join(load_prose()[:40]).split()[:150])
    doc = Document(sha256="d" * 64, name="prose.txt", kind="txt", pages=(Page(1, text),))
    store.add_document(doc)
    from engine.planner import plan_corpus

    plan = plan_corpus(Corpus((doc,)), library.model_path, store=store, backend=backend, n_ctx=1024)
    assert plan.measured and plan.measured[0].tokens == 512
    assert plan.row(KvType.F16).reliability is not None
    assert "beyond what this model reliably reads (measured 512 tokens at f16)" in "\n".join(plan.describe())


# -- a real model ---------------------------------------------------------------------


def _check_png(path: Path) -> None:
    from matplotlib.image import imread

    pixels = imread(str(path))
    height, width = pixels.shape[:2]
    assert height >= 200 and width >= 400, pixels.shape
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05  # not blank
    colours = {tuple(round(float(x), 2) for x in px) for px in rgb[:: max(len(rgb) // 5000, 1)]}
    assert len(colours) > 20


def test_a_real_probe_on_smollm2_stores_its_rows_and_draws_a_heatmap(
    smollm2_path: Path, store: Store, tmp_path: Path
) -> None:
    grid = ProbeGrid(lengths=(512,), depths=(0.5,), tasks=("niah_single", "niah_multivalue"))
    with Library(store, model_path=smollm2_path, settings=ReadSettings(n_threads=2)) as library:
        report = library.probe(grid=grid, n_ctx=512)
        stored = library.probe_cells()
        assert [(c.task, c.length, c.depth, c.n_ctx) for c in stored] == [
            ("niah_multivalue", 512, 0.5, 512),
            ("niah_single", 512, 0.5, 512),
        ]
        single = next(c for c in stored if c.task == "niah_single")
        assert single.score == 1.0, single.output  # SmolLM2 finds one needle in 512 tokens
        assert 400 < single.prompt_tokens <= 512 and single.prefill_s > 0
        assert library.effective_context()[KvType.F16] == report.effective[KvType.F16]
        png = library.draw_probe(tmp_path / "probe.png")
    assert png is not None
    _check_png(png)


def test_longread_probe_prints_the_table_and_saves_the_heatmap(home: Path, tmp_path: Path, smollm2_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    png = tmp_path / "smollm2.png"
    args = ["probe", "--ctx", "512", "--lengths", "512", "--depths", "0.5", "--tasks", "niah_single"]
    out = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args, "--threads", "2", "--png", str(png)],
        cwd=root,
        env={**os.environ, "LONGREAD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Probe cell 1/1: f16 niah_single 512 tokens" in out.stderr
    assert "KV cache f16: effective context 512 tokens" in out.stdout
    assert "85.6%" in out.stdout and f"Heatmap: {png}" in out.stdout
    _check_png(png)


def test_a_missing_matplotlib_is_a_plain_message_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from engine.errors import EngineError
    from engine.probe_plot import draw_heatmap

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    cell = ProbeCell(
        model_sha256="m", kv_type="f16", n_ctx=1024, suite=suite_key(), task="niah_single", length=1024,
        depth=0.5, sample=0, seed=1, prompt_tokens=1000, expected=("1",), output=" 1", score=1.0,
        prefill_s=0.0, generate_s=0.0, runtime_version="x",
    )  # fmt: skip
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(EngineError, match="cannot draw the heatmap: matplotlib is missing") as raised:
        draw_heatmap([cell], tmp_path / "h.png")
    assert "measurements are stored" in raised.value.message
    assert not (tmp_path / "h.png").exists()
