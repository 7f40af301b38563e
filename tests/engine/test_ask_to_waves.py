"""From ask to waves without a dead end (issue 13 item 6): a question that does not fit
the window is refused with the waves command and an estimate of its time, from this
machine's calibration when there is one, else a rough guess that says so.

Fast: real text documents, a real SQLite file, the fake backend's model facts.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli import _waves_command
from engine.corpus import Corpus
from engine.errors import ContextOverflowError
from engine.library import Library
from engine.planning import fit_speed_models
from engine.reading.waves import WaveReader
from engine.runtime.fake import FakeBackend
from engine.store.db import CalibrationRow
from tests.conftest import fake_library

QUESTION = "What is the archive access code?"
FILLER = "The harbor office checks the mooring lines every morning and logs the tides. "


@pytest.fixture
def library(home: Path, tmp_path: Path) -> Iterator[Library]:
    lib = fake_library(home, tmp_path, backend=FakeBackend(n_ctx_train=2048))
    yield lib
    lib.close()


def _big(library: Library, folder: Path) -> Corpus:
    path = folder / "handbook.txt"
    path.write_text("".join((f"Page {i}. " + FILLER * 40)[:2990] + "\n\n" for i in range(1, 21)), encoding="utf-8")
    docs, _ = library.add_documents([path])
    return Corpus(tuple(docs))


def test_the_refusal_names_waves_with_a_rough_estimate_then_a_measured_one(tmp_path: Path, library: Library) -> None:
    corpus = _big(library, tmp_path)
    with pytest.raises(ContextOverflowError) as refused:
        library.prepare_ask(corpus, QUESTION)
    rough = refused.value
    # Both costs (issue 13 item 3): the first question, and each next one restoring the waves' page blocks.
    assert rough.waves_eta is not None
    assert re.fullmatch(r"about \d+ min, each next question about \d+ min", rough.waves_eta), rough.waves_eta
    assert re.search(
        r"\(longread waves: first question about \d+ min, each next one about \d+ min, [\d.]+ [KMG]B of snapshots at f16",
        rough.message,
    ), rough.message
    assert "a rough guess: this machine's speed is not measured yet (longread plan measures it)" in rough.message
    waves = WaveReader(library.store, library.model_path, library.settings, lane=library.lane)
    estimate = waves.estimate(rough.corpus_tokens, QUESTION, n_pages=20, speed=None, answer_tokens=32)
    # The estimate's count of waves is close to the real plan's (made without tokenizing pages).
    assert abs(estimate.n_waves - len(waves.plan(corpus, QUESTION)[1])) <= 2
    assert f"({estimate.n_waves} waves of 2,048 tokens" in rough.message
    assert estimate.next_seconds is not None and estimate.next_seconds < estimate.seconds

    # A calibration of this machine (a slow one: 2 s per 64-token batch) is used when there is one.
    reader = library.reader
    row = CalibrationRow(
        model_sha256=reader.model_sha,
        kv_type="f16",
        n_threads=library.settings.threads(),
        batch_size=64,
        llama_cpp_version=library.lane.backend.version,
        batch_seconds=(2.0, 2.0),
        flash_attn=False,
    )
    library.store.put_calibration(row)
    with pytest.raises(ContextOverflowError) as measured:
        library.prepare_ask(corpus, QUESTION)
    assert "at this machine's measured reading speed" in measured.value.message
    speed = fit_speed_models(library.lane.info, [row], swa_full=False)["f16"]
    expected = waves.estimate(rough.corpus_tokens, QUESTION, n_pages=20, speed=speed, answer_tokens=32)
    assert measured.value.waves_eta == expected.about_both and expected.seconds > estimate.seconds


def test_the_cli_refusal_is_the_waves_command_for_the_same_files(tmp_path: Path, library: Library) -> None:
    corpus = _big(library, tmp_path)
    with pytest.raises(ContextOverflowError) as refused:
        library.prepare_ask(corpus, QUESTION)
    args = argparse.Namespace(
        paths=[tmp_path / "handbook.txt"], question=QUESTION, model=None, ctx=0, kv="q8_0", session=None
    )
    line = _waves_command(args, corpus, refused.value)
    assert line == (
        f"Read it in waves: longread waves {tmp_path / 'handbook.txt'} -q '{QUESTION}' --kv q8_0 "
        f"({refused.value.waves_eta})"
    )
