"""Measure a model's effective context on this machine: RULER-style probes (issue 14).

A trained window is a claim; this module measures what the model reads reliably, with
the user's model file, KV cache type and machine, and stores it for the planner.

The contract:

- Five tasks after RULER (Hsieh et al. 2024, "RULER: What's the real context size of your
  long-context language models?"), generated offline and deterministically from a seed:
  ``niah_single`` (one key, one 7-digit value), ``niah_multikey`` (the key among three
  distractor keys), ``niah_multivalue`` (four values under one key), ``vt`` (variable
  tracking: a chain of four assignments, multi-hop) and ``cwe`` (aggregation: the five most
  frequent words of a numbered word list). ``make_sample`` builds one; its haystack is a
  distinct run of real prose for every cell (a seed derived from the task, length and
  depth picks where in the prose it starts), so no prefix or snapshot cache can help.
- The prose (``load_prose``) is Python's own documentation as CPython ships it: the
  language reference's topics (``pydoc_data.topics``, what ``help()`` shows) and the
  docstrings of some fifty standard-library modules (``_DOC_MODULES``), with indented
  code, doctests, lists and short fragments dropped, plus the sample lease dispute under
  ``resources/sample/`` when it is there. No download.
- ``score_answer`` is exact: the fraction of expected strings (numbers, variable names,
  words) found in the answer as whole words, after lower-casing and dropping thousands
  separators; one digit changed is not found.
- ``run_probe`` runs a grid (``ProbeGrid``: lengths x depths x tasks) through a
  ``ModelLane`` (the runtime interface, never ``llama_cpp``), one prompt per cell: the
  model's chat frame with the haystack and question, then RULER's answer prefix in the
  assistant turn (it keeps small models from repeating the question), greedy generation
  of at most the task's ``max_tokens``. Each finished cell is stored at once
  (``Store.put_probe_cell``), keyed by the model file's sha256, KV type, window, suite
  key (``suite_key``: the generators' version and a digest of the prose, which is the
  running Python's documentation), task, length, depth and sample; a cell already
  stored is not run again, so a cancelled probe resumes where it stopped. Progress with an ETA goes to ``on_progress``;
  a ``CancelToken`` stops between prefill batches and generated tokens (``Cancelled``).
- ``effective_context(cells)`` is the longest tested length at which every task's mean
  score (over depths and samples), at that length and every shorter one, is at least
  ``THRESHOLD`` (85.6%: RULER's threshold, the Llama-2-7B score at 4k), per KV type; 0
  when the shortest length already fails. It is a ``engine.planning.MeasuredContext``,
  which the planner and the gauge use.
- Drawing the heatmap is ``engine/probe_plot.py`` (the one importer of matplotlib).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from engine.errors import CancelToken, EngineError
from engine.planning import MeasuredContext
from engine.reading.prompts import build_prompt, render_frame
from engine.runtime.backend import KvType, PrefillProgress, Tokenizer, align_ctx
from engine.store.db import ProbeCell

if TYPE_CHECKING:
    from engine.lane import ModelLane
    from engine.store import Store

__all__ = [
    "SPREAD",
    "SUITE",
    "TASKS",
    "THRESHOLD",
    "ProbeGrid",
    "ProbeProgress",
    "ProbeReport",
    "Sample",
    "default_grid",
    "describe_report",
    "effective_context",
    "reading_span",
    "stored_effective_context",
    "stored_reading_span",
    "load_prose",
    "make_sample",
    "run_probe",
    "score_answer",
    "suite_key",
    "task_means",
]

#: Bump when a generator or the scoring changes: stored cells of another suite are not reused.
#: The key cells are stored under adds a digest of the prose (``suite_key``).
SUITE: Final = "ruler-lite-1"
#: RULER's threshold: Llama-2-7B's mean score at 4k tokens (85.6%).
THRESHOLD: Final = 0.856
TASKS: Final = ("niah_single", "niah_multikey", "niah_multivalue", "vt", "cwe")
TASK_LABELS: Final = {
    "niah_single": "single needle",
    "niah_multikey": "multi-key needle",
    "niah_multivalue": "multi-value needle",
    "vt": "variable tracking",
    "cwe": "most frequent words",
}
#: The depth stored for a task whose evidence is spread over the whole context (cwe).
SPREAD: Final = -1.0

_SYSTEM = "You are a careful reader. Answer from the text given, briefly."
_INTRO = "Read this text carefully; you will be asked about it.\n\n"
_MAX_TOKENS: Final = {"niah_single": 30, "niah_multikey": 30, "niah_multivalue": 48, "vt": 32, "cwe": 32}
_CWE_COMMON: Final = 5
_VT_HOPS: Final = 4
_MV_VALUES: Final = 4
_MK_DISTRACTORS: Final = 3


# -- the prose ---------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"\b[a-z]{4,10}\b")


#: Standard-library modules whose docstrings join the prose (plain English, shipped with
#: every Python; none of them has import side effects).
_DOC_MODULES: Final = (
    "argparse collections concurrent.futures configparser contextlib csv dataclasses datetime decimal "
    "difflib email.message enum fractions functools http.client inspect ipaddress itertools json logging "
    "mailbox pathlib pickle random re shutil socket sqlite3 statistics string subprocess tarfile tempfile "
    "textwrap threading unittest.case urllib.parse zipfile asyncio.events imaplib smtplib ftplib "
    "calendar locale gettext heapq bisect codecs io shlex trace wave"
).split()


def _docstrings() -> list[str]:
    import importlib
    import inspect
    import warnings

    docs: list[str] = []
    for name in _DOC_MODULES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a deprecated module is still prose
                module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - a Python built without it
            continue
        docs.append(inspect.getdoc(module) or "")
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or getattr(obj, "__module__", "") != module.__name__:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                docs.append(inspect.getdoc(obj) or "")
            if inspect.isclass(obj):
                docs.extend(
                    inspect.getdoc(f) or ""
                    for n, f in sorted(vars(obj).items())
                    if not n.startswith("_") and inspect.isfunction(f)
                )
    return docs


@cache
def load_prose() -> tuple[str, ...]:
    """Sentences of real English prose shipped with Python (and the repo's sample), in order.

    Raises:
        EngineError: no prose could be found (a Python built without ``pydoc_data``).
    """
    texts: list[str] = []
    try:
        import pydoc_data.topics  # CPython's language reference, as pydoc shows it

        topics: dict[str, str] = dict(pydoc_data.topics.topics)
    except ImportError:  # pragma: no cover - a stripped Python
        topics = {}
    texts.extend(topics[k] for k in sorted(topics))
    texts.extend(_docstrings())
    sample = Path(__file__).resolve().parent.parent / "resources" / "sample" / "harbor-lease-dispute.md"
    if sample.is_file():
        texts.append(sample.read_text(encoding="utf-8"))
    sentences: list[str] = []
    for text in texts:
        lines = [
            ln.strip()
            for ln in text.splitlines()
            if ln.strip() and not ln.startswith((" ", "\t", ">>>", "#", "*", "|", "-", "="))
        ]
        for paragraph in " ".join(lines).split("  "):
            for s in _SENTENCE_END.split(paragraph):
                s = s.strip()
                words = s.split()
                letters = sum(c.isalpha() for c in s)
                if 6 <= len(words) <= 60 and letters > 0.65 * len(s) and "::" not in s:
                    sentences.append(s)
    if len(sentences) < 500:
        raise EngineError("Longread found no prose to build its probes from (Python's pydoc_data is missing).")
    return tuple(dict.fromkeys(sentences))  # docstrings repeat (inherited methods): once each


@cache
def suite_key() -> str:
    """The key probe cells are stored under: the generators' version (``SUITE``) and a digest
    of the prose the haystacks are cut from. The prose is the running Python's own
    documentation, which changes between Python versions, so a probe run under another
    Python (or with another sample text) builds other haystacks: its cells are kept apart
    rather than mixed with these, and the grid is measured again."""
    digest = hashlib.sha256("\n".join(load_prose()).encode()).hexdigest()[:12]
    return f"{SUITE}+prose-{digest}"


@cache
def _vocabulary() -> tuple[str, ...]:
    words = sorted({w for s in load_prose() for w in _WORD.findall(s.lower())})
    return tuple(words)


# -- samples -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One probe prompt: the context (haystack with what was planted), the question, the
    answer prefix put in the model's mouth, the expected strings and the answer budget."""

    task: str
    length: int
    depth: float
    seed: int
    context: str
    question: str
    answer_prefix: str
    answers: tuple[str, ...]
    max_tokens: int


def cell_seed(seed: int, task: str, length: int, depth: float, sample: int = 0) -> int:
    """A seed of its own for each cell (so each cell has a distinct haystack)."""
    digest = hashlib.sha256(f"{SUITE}|{seed}|{task}|{length}|{depth:.4f}|{sample}".encode()).digest()
    return int.from_bytes(digest[:7], "big")  # fits SQLite's signed 64-bit integers


def _fit(make: Callable[[int], str], budget: int, count: Callable[[str], int], *, guess: int) -> str:
    """The text ``make(n)`` for the largest ``n`` whose tokens fit ``budget`` (``make`` grows with n)."""
    lo, hi = 0, max(guess, 1)
    while count(make(hi)) <= budget:
        lo, hi = hi, hi * 2
        if hi > 1 << 20:
            break
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(make(mid)) <= budget:
            lo = mid
        else:
            hi = mid
    return make(lo)


def _key(rng: random.Random) -> str:
    vocab = _vocabulary()
    return f"{rng.choice(vocab)}-{rng.choice(vocab)}"


def _number(rng: random.Random) -> str:
    return str(rng.randrange(1_000_000, 10_000_000))


def _var(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))


def _band(depth: float, n: int, width: float) -> list[float]:
    """``n`` depths spread evenly over a band of ``width`` centred on ``depth`` (within 0..1)."""
    if n == 1:
        return [depth]
    lo = min(max(depth - width / 2, 0.0), 1.0 - width)
    return [lo + width * i / (n - 1) for i in range(n)]


def _haystack(
    rng: random.Random, planted: Sequence[tuple[float, str]], budget: int, count: Callable[[str], int]
) -> str:
    """Real prose from a random start, with each ``(depth, line)`` planted at its depth."""
    prose = load_prose()
    start = rng.randrange(len(prose))

    def make(n: int) -> str:
        sentences = [prose[(start + i) % len(prose)] for i in range(n)]
        # Plant from the deepest so earlier indices stay valid; equal depths keep their order.
        for depth, line in sorted(planted, key=lambda p: p[0], reverse=True):
            sentences.insert(round(depth * n), line)
        return " ".join(sentences)

    return _fit(make, budget, count, guess=max(budget // 24, 1))


def make_sample(task: str, *, length: int, depth: float, seed: int, budget: int, count: Callable[[str], int]) -> Sample:
    """Generate one cell's prompt parts, deterministically from ``seed``.

    Args:
        task: one of ``TASKS``.
        length: the cell's length in tokens (recorded; the caller derives ``budget``).
        depth: where the evidence goes, 0 (start) .. 1 (end); ignored by ``cwe``.
        seed: the cell's seed (``cell_seed``).
        budget: the most tokens the context may take.
        count: counts the tokens of a text (the model's tokenizer).

    Raises:
        ValueError: an unknown task.
    """
    rng = random.Random(seed)
    max_tokens = _MAX_TOKENS.get(task)
    if max_tokens is None:
        raise ValueError(f"unknown probe task {task!r}")
    if task == "niah_single" or task == "niah_multikey":
        key, value = _key(rng), _number(rng)
        planted = [(depth, f"One of the special magic numbers for {key} is: {value}.")]
        if task == "niah_multikey":
            for _ in range(_MK_DISTRACTORS):
                other = _key(rng)
                while other == key:
                    other = _key(rng)
                planted.append((rng.random(), f"One of the special magic numbers for {other} is: {_number(rng)}."))
        context = _haystack(rng, planted, budget, count)
        question = f"What is the special magic number for {key} mentioned in the provided text?"
        prefix = f"The special magic number for {key} mentioned in the provided text is"
        answers: tuple[str, ...] = (value,)
    elif task == "niah_multivalue":
        key = _key(rng)
        values = tuple(dict.fromkeys(_number(rng) for _ in range(_MV_VALUES)))
        depths = _band(depth, len(values), 0.2)
        planted = [
            (d, f"One of the special magic numbers for {key} is: {v}.") for d, v in zip(depths, values, strict=True)
        ]
        context = _haystack(rng, planted, budget, count)
        question = f"What are all the special magic numbers for {key} mentioned in the provided text?"
        prefix = f"The special magic numbers for {key} mentioned in the provided text are"
        answers = values
    elif task == "vt":
        value = str(rng.randrange(10_000, 100_000))
        names: list[str] = []
        while len(names) < _VT_HOPS + 1:
            name = _var(rng)
            if name not in names:
                names.append(name)
        lines = [f"VAR {names[0]} = {value}."] + [f"VAR {names[i]} = VAR {names[i - 1]}." for i in range(1, len(names))]
        depths = _band(depth, len(lines), 0.3)
        context = _haystack(rng, list(zip(depths, lines, strict=True)), budget, count)
        question = f"Find all variables that are assigned the value {value} in the text above."
        prefix = f"Answer: According to the chain(s) of variable assignment in the text above, {len(names)} variables are assigned the value {value}, they are:"
        answers = tuple(names)
    else:  # cwe
        vocab = _vocabulary()
        words = rng.sample(vocab, k=min(len(vocab), 4000))
        common, rare = words[:_CWE_COMMON], words[_CWE_COMMON:]

        def make(n: int) -> str:
            # n entries: the common words each ``freq`` times, the rest once or twice.
            freq = max(4, min(30, n // 20))
            entries = [w for w in common for _ in range(freq)]
            r = random.Random(seed ^ 0x5EED)
            i = 0
            while len(entries) < n and i < len(rare):
                entries.extend([rare[i]] * min(r.choice((1, 2)), n - len(entries)))
                i += 1
            r.shuffle(entries)
            return " ".join(f"{k + 1}. {w}" for k, w in enumerate(entries))

        context = _fit(make, budget, count, guess=max(budget // 5, _CWE_COMMON * 8))
        question = f"What are the {_CWE_COMMON} most common words in the numbered list above?"
        prefix = f"Answer: The top {_CWE_COMMON} words that appear most often in the list are:"
        answers = tuple(common)
        depth = SPREAD
    return Sample(task, length, depth, seed, context, question, prefix, answers, max_tokens)


# -- scoring -----------------------------------------------------------------------------

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")


def score_answer(output: str, answers: Iterable[str]) -> float:
    """The fraction of ``answers`` found in ``output`` as whole words (case-insensitive;
    thousands separators dropped). Exact: a number with one digit changed is not found."""
    wanted = list(answers)
    if not wanted:
        return 0.0
    text = _THOUSANDS.sub("", output.lower())
    found = sum(
        1 for a in wanted if re.search(r"(?<![a-z0-9])" + re.escape(a.lower()) + r"(?![a-z0-9])", text) is not None
    )
    return found / len(wanted)


# -- the grid and the run ----------------------------------------------------------------


@dataclass(frozen=True)
class ProbeGrid:
    """Lengths (tokens, prompt and answer together) x depths x tasks, ``samples`` per cell."""

    lengths: tuple[int, ...]
    depths: tuple[float, ...]
    tasks: tuple[str, ...] = TASKS
    samples: int = 1

    def cells(self) -> list[tuple[str, int, float, int]]:
        """``(task, length, depth, sample)`` in the order they run: shortest lengths first."""
        out: list[tuple[str, int, float, int]] = []
        for length in sorted(self.lengths):
            for task in self.tasks:
                depths = (SPREAD,) if task == "cwe" else self.depths
                for depth in depths:
                    for sample in range(self.samples):
                        out.append((task, length, depth, sample))
        return out


def default_grid(window: int, *, quick: bool = False) -> ProbeGrid:
    """Powers of two from 1,024 tokens up to the window (and the window), three depths;
    ``quick``: 1k tokens and half the window (at most 4k), at mid-depth: ten cells, a few
    minutes on the bundled model."""
    lengths: list[int] = []
    n = 1024
    while n < window:
        lengths.append(n)
        n *= 2
    lengths.append(window)
    if quick:
        half = min(window // 2, 4096)
        return ProbeGrid(lengths=tuple(sorted({min(1024, window), max(half, min(1024, window))})), depths=(0.5,))
    return ProbeGrid(lengths=tuple(lengths), depths=(0.1, 0.5, 0.9))


@dataclass(frozen=True)
class ProbeProgress:
    """Where a probe is: cells done of total (those stored before count as done), the cell
    now running, tokens per second and seconds left (the whole probe). ``reading`` is the
    running cell's prefill (tokens read of its prompt), reported after each batch: a cell
    of 8k tokens and more reads for minutes. ``last_score`` is set once a cell finished."""

    done: int
    total: int
    kv_type: str
    task: str
    length: int
    depth: float
    tokens_per_s: float
    eta_s: float
    last_score: float | None = None
    reading: PrefillProgress | None = None


@dataclass(frozen=True)
class ProbeReport:
    """A finished probe: every cell of the grid (stored ones included) and the effective
    context per KV type."""

    model_sha256: str
    n_ctx: int
    grid: ProbeGrid
    cells: tuple[ProbeCell, ...]
    effective: dict[KvType, MeasuredContext]
    ran: int


def run_probe(
    lane: ModelLane,
    store: Store,
    *,
    model_sha256: str,
    kv_types: Sequence[str] = (KvType.F16,),
    grid: ProbeGrid | None = None,
    n_ctx: int = 0,
    quick: bool = False,
    seed: int = 0,
    on_progress: Callable[[ProbeProgress], None] | None = None,
    cancel: CancelToken | None = None,
) -> ProbeReport:
    """Run the probe grid for each KV type, storing each cell as it finishes.

    Args:
        lane: the model lane (its backend loads the model; its settings give threads).
        store: where the cells are kept.
        model_sha256: the model file's hash (the key of its results).
        kv_types: the KV cache types to measure.
        grid: the grid (default: ``default_grid`` for the window).
        n_ctx: the window to load (default: the model's trained window, or the lane's).
        quick: the quick default grid.
        seed: the base seed of the generators.
        on_progress: called before each cell and after it.
        cancel: set from any thread to stop; the cells finished stay stored.

    Returns:
        The ``ProbeReport``.

    Raises:
        Cancelled: cancelled (resume by running the same probe again).
        PlanRefused, ModelError, GenerationError: the model could not be loaded or run.
    """
    window = align_ctx(n_ctx) if n_ctx else lane.full_window()
    grid = grid or default_grid(window, quick=quick)
    if max(grid.lengths) > window:
        raise EngineError(f"The probe's longest length ({max(grid.lengths):,}) is beyond the window ({window:,}).")
    kinds = [KvType(k) for k in kv_types]
    suite = suite_key()
    todo: list[tuple[KvType, str, int, float, int]] = []
    stored: dict[tuple[str, str, int, float, int], ProbeCell] = {}
    for kv in kinds:
        for c in store.get_probe_cells(model_sha256, kv_type=kv, n_ctx=window, suite=suite):
            stored[(c.kv_type, c.task, c.length, c.depth, c.sample)] = c
        for task, length, depth, sample in grid.cells():
            if (kv.value, task, length, depth, sample) not in stored:
                todo.append((kv, task, length, depth, sample))
    total = sum(len(grid.cells()) for _ in kinds)
    done = total - len(todo)
    tokens_left = sum(length for _, _, length, _, _ in todo)
    spent_s, spent_tokens = 0.0, 0
    should_cancel = cancel  # a CancelToken is its own should_cancel
    ran = 0
    for kv, task, length, depth, sample in todo:
        model = lane.ensure(window, kv)
        rate = spent_tokens / spent_s if spent_s > 0 else 0.0
        if on_progress is not None:
            on_progress(
                ProbeProgress(done, total, kv.value, task, length, depth, rate, tokens_left / rate if rate else 0.0)
            )
        started = time.perf_counter()
        sample_ = _sample_for(
            model, task, length=length, depth=depth, seed=cell_seed(seed, task, length, depth, sample)
        )
        tokens = _prompt_tokens(model, sample_)
        on_reading = None
        if on_progress is not None:
            on_reading = _reading_reporter(
                on_progress, ProbeProgress(done, total, kv.value, task, length, depth, rate, 0.0), tokens_left, rate
            )
        t0 = time.perf_counter()
        model.prefill(tokens, on_progress=on_reading, should_cancel=should_cancel)
        t1 = time.perf_counter()
        output = "".join(model.generate(max_tokens=sample_.max_tokens, should_cancel=should_cancel))
        t2 = time.perf_counter()
        score = score_answer(output, sample_.answers)
        cell = ProbeCell(
            model_sha256=model_sha256,
            kv_type=kv.value,
            n_ctx=window,
            suite=suite,
            task=task,
            length=length,
            depth=depth,
            sample=sample,
            seed=sample_.seed,
            prompt_tokens=len(tokens),
            expected=sample_.answers,
            output=output,
            score=score,
            prefill_s=t1 - t0,
            generate_s=t2 - t1,
            runtime_version=model.runtime_version,
        )
        store.put_probe_cell(cell)
        stored[(kv.value, task, length, depth, sample)] = cell
        ran += 1
        done += 1
        tokens_left -= length
        spent_s += time.perf_counter() - started
        spent_tokens += length
        rate = spent_tokens / spent_s if spent_s > 0 else 0.0
        if on_progress is not None:
            on_progress(
                ProbeProgress(
                    done, total, kv.value, task, length, depth, rate, tokens_left / rate if rate else 0.0, score
                )
            )
    cells = tuple(
        stored[(kv.value, t, n, d, s)]
        for kv in kinds
        for t, n, d, s in grid.cells()
        if (kv.value, t, n, d, s) in stored
    )
    return ProbeReport(model_sha256, window, grid, cells, effective_context(cells), ran)


def _reading_reporter(
    on_progress: Callable[[ProbeProgress], None], cell: ProbeProgress, tokens_left: int, rate: float
) -> Callable[[PrefillProgress], None]:
    """The prefill callback of one cell: its progress as a ``ProbeProgress`` with ``reading``
    set and the whole probe's time left (the rate of the cells so far, or of this prefill
    while none has finished)."""

    def report(p: PrefillProgress) -> None:
        speed = rate or p.tokens_per_s
        left = max(tokens_left - p.done, 0)
        eta = left / speed if speed else 0.0
        on_progress(replace(cell, tokens_per_s=speed, eta_s=eta, reading=p))

    return report


def _sample_for(tok: Tokenizer, task: str, *, length: int, depth: float, seed: int) -> Sample:
    """The cell's sample, its context sized so the whole prompt plus the answer fit ``length``."""
    probe = make_sample(task, length=length, depth=depth, seed=seed, budget=0, count=lambda t: 1 << 30)
    frame_tokens = len(_prompt_tokens(tok, probe)) - len(tok.tokenize_text(probe.context))
    budget = max(length - frame_tokens - probe.max_tokens - 8, 16)
    return make_sample(task, length=length, depth=depth, seed=seed, budget=budget, count=_counter(tok))


def _counter(tok: Tokenizer) -> Callable[[str], int]:
    return lambda text: len(tok.tokenize_text(text))


def _prompt_tokens(tok: Tokenizer, sample: Sample) -> list[int]:
    frame = render_frame(tok.chat_template, system=_SYSTEM, intro=_INTRO)
    prompt = build_prompt(tok, [tok.tokenize_text(sample.context)], sample.question, frame=frame)
    return prompt.tokens + tok.tokenize_text(sample.answer_prefix)


# -- the effective context ---------------------------------------------------------------


def task_means(cells: Iterable[ProbeCell]) -> dict[tuple[str, str, int], float]:
    """Mean score per ``(kv_type, task, length)`` over depths and samples."""
    sums: dict[tuple[str, str, int], float] = {}
    counts: Counter[tuple[str, str, int]] = Counter()
    for c in cells:
        key = (c.kv_type, c.task, c.length)
        sums[key] = sums.get(key, 0.0) + c.score
        counts[(c.kv_type, c.task, c.length)] += 1
    return {k: sums[k] / counts[k] for k in counts}


def effective_context(cells: Iterable[ProbeCell], *, threshold: float = THRESHOLD) -> dict[KvType, MeasuredContext]:
    """Per KV type: the longest tested length at which every task, at it and every shorter
    length, scores at least ``threshold`` on average (0 when the shortest one fails).

    Cells of several windows count under the largest window measured."""
    cells = list(cells)
    out: dict[KvType, MeasuredContext] = {}
    for kv in KvType:
        mine = [c for c in cells if c.kv_type == kv.value]
        if not mine:
            continue
        window = max(c.n_ctx for c in mine)
        mine = [c for c in mine if c.n_ctx == window]
        means = task_means(mine)
        tasks = [t for t in TASKS if any(c.task == t for c in mine)]
        lengths = sorted({c.length for c in mine})
        effective = 0
        weakest = ""
        for length in lengths:
            scores = {t: means[(kv.value, t, length)] for t in tasks if (kv.value, t, length) in means}
            if len(scores) < len(tasks):
                break  # a length not measured for every task ends what is known
            failing = [f"{TASK_LABELS.get(t, t)} {scores[t]:.0%}" for t in tasks if scores[t] < threshold]
            if failing:
                weakest = ", ".join(failing) + f" at {length:,} tokens"
                break
            effective = length
        out[kv] = MeasuredContext(
            kv_type=kv,
            tokens=effective,
            shortest_tested=lengths[0],
            longest_tested=lengths[-1],
            window=window,
            threshold=threshold,
            weakest=weakest,
        )
    return out


def reading_span(cells: Iterable[ProbeCell], kv_type: KvType | str) -> MeasuredContext | None:
    """How many tokens one wave may take (engine/reading/waves.py): the longest tested
    length at which the model found a single fact at every depth (the single needle's
    mean over depths at least ``THRESHOLD``, at that length and every shorter one), at
    this KV type. None when never probed at it, or when even the shortest length failed
    (smaller waves than any measured would be a guess).

    Waves need no more than this: each wave is asked to find facts in its own pages, and
    the notes carry them. SmolLM2-135M finds one at every depth at 1k and 2k tokens and
    at no depth at 8k (docs/effective-context.md): waves of its whole 8k window found
    none of three planted facts, waves of 2k tokens most of them (waves_scale.py)."""
    single = [c for c in cells if c.task == "niah_single"]
    m = effective_context(single).get(KvType(kv_type))
    return m if m is not None and m.tokens else None


def stored_reading_span(store: Store, model_sha256: str, kv_type: KvType | str) -> MeasuredContext | None:
    """``reading_span`` of a model's stored cells."""
    return reading_span(store.get_probe_cells(model_sha256, suite=suite_key()), kv_type)


def stored_effective_context(store: Store, model_sha256: str) -> dict[KvType, MeasuredContext]:
    """The effective context per KV type from a model's stored cells (empty: never probed)."""
    return effective_context(store.get_probe_cells(model_sha256, suite=suite_key()))


def describe_report(report: ProbeReport, *, model: str = "") -> list[str]:
    """Lines a user can read: mean score per task and length, per KV type, and the
    effective context with the threshold it used."""
    means = task_means(report.cells)
    lengths = sorted({c.length for c in report.cells})
    tasks = [t for t in TASKS if any(c.task == t for c in report.cells)]
    lines = [
        f"Effective context of {model or 'the model'} (window {report.n_ctx:,}; every task at least "
        f"{THRESHOLD:.1%}, RULER's threshold; {report.ran} cell{'s' if report.ran != 1 else ''} run now)",
    ]
    for kv, m in report.effective.items():
        lines.append("")
        verdict = f"{m.tokens:,} tokens" if m.tokens else "none"
        lines.append(f"KV cache {kv}: effective context {verdict}" + (f" (ended by {m.weakest})" if m.weakest else ""))
        lines.append(f"  {'task':<20}" + "".join(f"{n:>9,}" for n in lengths))
        for task in tasks:
            row = [means.get((kv.value, task, n)) for n in lengths]
            lines.append(
                f"  {TASK_LABELS.get(task, task):<20}"
                + "".join(f"{v:>9.0%}" if v is not None else f"{'-':>9}" for v in row)
            )
    return lines
