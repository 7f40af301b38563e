"""Per-document snapshots composed in any order (issue 17), on the fake backend.

The fake's logits depend on the context's last 16 tokens here (``logits_window``), as a
real model's next token mostly does, so a correct composition passes the gate's cold
probe; ``compose_noise`` plays a composition gone wrong. The real-model tests are in
test_compose_real.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from engine.cli import _build_parser, _settings
from engine.compose import CHECK_TOKENS, HEAD_LABEL, PROBE_TOKENS, RECOMPUTE_FIRST, kl_divergence
from engine.config import ReadSettings, db_path
from engine.corpus import Corpus, Document
from engine.library import Library
from engine.runtime import kvstate
from engine.runtime.fake import FakeBackend, FakeModel
from engine.warm import crc32_file
from tests.conftest import text_pages_file

QUESTION = "What is the vault access code?"
FILLER = "The harbor office checks the mooring lines every morning and logs the tides. "


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend()
    backend.logits_window = 16
    # The fake's logits see only the last 16 tokens: a composition cannot read the check
    # tokens better than the gate's probe, as a real model's does (test_compose_real.py),
    # so here the gate asks for no more than the probe's reading.
    monkeypatch.setattr("engine.compose.GATE_NATS", 0.0)
    return backend


@pytest.fixture
def library(home: Path, tmp_path: Path, backend: FakeBackend) -> Iterator[Library]:
    model = tmp_path / "fake-model.gguf"
    model.write_bytes(b"not weights: the fake backend reads nothing")
    lib = Library(
        db_path(),
        model_path=model,
        backend=backend,
        settings=ReadSettings(max_answer_tokens=16, n_batch=64),
    )
    lib.use_memory(False)  # the documents alone here; with memory: the last test
    yield lib
    lib.close()


def _docs(library: Library, folder: Path, names: list[str]) -> dict[str, Document]:
    paths = []
    for i, name in enumerate(names):
        fact = f"The code of {name} is {100000 + 7919 * i}. "
        paths.append(text_pages_file(folder / name, [f"{name} page 1. {fact}" + FILLER * 20]))
    docs, skipped = library.add_documents(paths)
    assert not skipped
    return {d.name: d for d in docs}


def _corpus(docs: dict[str, Document], *names: str) -> Corpus:
    return Corpus(tuple(docs[n] for n in names))


def _covers(spans: tuple[tuple[int, int], ...], span: tuple[int, int]) -> bool:
    return any(a <= span[0] and span[1] <= b for a, b in spans)


def _model(backend: FakeBackend) -> FakeModel:
    return backend.models[-1]


def test_each_document_gets_its_own_snapshot_when_first_read(tmp_path: Path, library: Library) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt"])
    first = library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    assert first.warm is not None and first.warm.source == "prefill" and first.warm.saved

    snaps = library.snapshots.list_snapshots()
    assert sorted(s.kind for s in snaps) == ["corpus", "document", "document", "document", "document"]
    # The instructions before the documents get one too: they are the same in every corpus.
    assert sorted(s.label for s in snaps if s.kind == "document") == [HEAD_LABEL, "a.txt", "b.txt", "c.txt"]
    # A document's snapshot holds its own tokens only, whatever window it was read at.
    tokens = {s.label: s.n_tokens for s in snaps if s.kind == "document"}
    prompt, _ = library.prepare_ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    assert [b - a for a, b in prompt.document_spans] == [tokens[n] for n in ("a.txt", "b.txt", "c.txt")]
    assert tokens[HEAD_LABEL] == prompt.document_spans[0][0]
    assert all(s.n_ctx == 0 for s in snaps if s.kind == "document")


def test_a_reordered_corpus_is_assembled_from_its_documents_snapshots(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    cold_prompts = len(backend.prompts)

    result = library.ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    warm = result.warm
    assert warm is not None and warm.source == "composed", warm
    assert warm.documents == 3 and warm.notice is None
    prompt, _ = library.prepare_ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    # The answer read exactly the tokens a cold read of this order reads.
    assert list(backend.prompts[cold_prompts].tokens[: len(prompt.tokens)]) == prompt.tokens
    # The gate's probe: the instructions' snapshot and the PROBE_TOKENS before the corpus's
    # last CHECK_TOKENS read cold; the composition holds all but those, then reads them.
    probe, composition = _model(backend).compositions
    head = prompt.document_spans[0][0]
    assert [at for _, at in probe[0]] == [0] and probe[1] == ((head, head + PROBE_TOKENS),)
    parts, recompute = composition
    assert [at for _, at in parts] == [0] + [a for a, _ in prompt.document_spans]  # instructions, c, a, b
    assert list(recompute) == [(a, a + RECOMPUTE_FIRST) for a, _ in prompt.document_spans]
    read_again = 3 * RECOMPUTE_FIRST + PROBE_TOKENS + 2 * CHECK_TOKENS
    assert warm.reread_tokens == read_again < prompt.corpus_end // 5
    assert "assembled from 3 documents' snapshots in" in warm.describe_composition()
    assert f"({read_again:,} tokens read again)" in warm.describe_composition()


def test_a_last_document_shorter_than_the_gates_check_is_composed_and_kept(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt"])
    short, skipped = library.add_documents([text_pages_file(tmp_path / "short.txt", ["Signed."])])
    assert not skipped
    docs["short.txt"] = short[0]
    library.ask(_corpus(docs, "a.txt", "b.txt", "short.txt"), QUESTION)
    result = library.ask(_corpus(docs, "b.txt", "a.txt", "short.txt"), QUESTION)
    prompt, _ = library.prepare_ask(_corpus(docs, "b.txt", "a.txt", "short.txt"), QUESTION)
    a, b = prompt.document_spans[-1]
    assert b - a < CHECK_TOKENS  # all of it is in the gate's check
    assert result.warm is not None and result.warm.source == "composed" and result.warm.documents == 3
    assert result.warm.notice is None
    labels = [s.label for s in library.snapshots.list_snapshots() if s.kind == "document"]
    assert sorted(labels) == [HEAD_LABEL, "a.txt", "b.txt", "short.txt"]


def test_an_inserted_document_is_read_in_place_and_saved(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "new.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt"), QUESTION)
    result = library.ask(_corpus(docs, "a.txt", "new.txt", "b.txt"), QUESTION)
    assert result.warm is not None and result.warm.source == "composed" and result.warm.documents == 2
    prompt, _ = library.prepare_ask(_corpus(docs, "a.txt", "new.txt", "b.txt"), QUESTION)
    _, (_, recompute) = _model(backend).compositions
    assert _covers(recompute, prompt.document_spans[1])  # the new document, read whole in place
    labels = [s.label for s in library.snapshots.list_snapshots() if s.kind == "document"]
    assert sorted(labels) == [HEAD_LABEL, "a.txt", "b.txt", "new.txt"]


def test_the_same_documents_inside_another_corpus_of_another_window(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt", "d.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt", "d.txt"), QUESTION)
    library.close_model()  # a new model and window, as after a restart
    result = library.ask(_corpus(docs, "d.txt", "b.txt"), QUESTION)
    assert result.warm is not None and result.warm.source == "composed" and result.warm.documents == 2
    assert backend.loads[-1].settings.n_ctx != backend.loads[0].settings.n_ctx


def test_a_composition_that_fails_its_check_is_read_cold_and_says_so(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt"), QUESTION)
    backend.compose_noise = 20.0  # the composed context's logits are far from the probe's
    result = library.ask(_corpus(docs, "b.txt", "a.txt"), QUESTION)
    warm = result.warm
    assert warm is not None and warm.source == "prefill"
    assert warm.notice is not None and "failed its quality check" in warm.notice and "read cold" in warm.notice
    prompt, _ = library.prepare_ask(_corpus(docs, "b.txt", "a.txt"), QUESTION)
    assert result.prefill.evaluated >= prompt.corpus_end  # the whole corpus was read


def test_a_model_that_cannot_move_positions_reads_cold_with_the_reason(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt"), QUESTION)
    backend.shift_refusal = "it uses sliding-window attention"
    result = library.ask(_corpus(docs, "b.txt", "a.txt"), QUESTION)
    assert result.warm is not None and result.warm.source == "prefill"
    assert result.warm.notice is not None and "sliding-window attention" in result.warm.notice
    assert _model(backend).compositions == []  # not even the gate's probe


def test_a_damaged_document_snapshot_is_rebuilt_never_used(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    [b_snap] = [s for s in library.snapshots.list_snapshots() if s.label == "b.txt"]
    data = bytearray(b_snap.path.read_bytes())
    data[-4:] = b"\xff\xff\xff\x7f"  # one token changed: same size, other crc32
    b_snap.path.write_bytes(bytes(data))

    result = library.ask(_corpus(docs, "c.txt", "b.txt", "a.txt"), QUESTION)
    warm = result.warm
    assert warm is not None and warm.source == "composed" and warm.documents == 2
    assert warm.notice is not None and "b.txt was damaged" in warm.notice
    prompt, _ = library.prepare_ask(_corpus(docs, "c.txt", "b.txt", "a.txt"), QUESTION)
    _, (parts, recompute) = _model(backend).compositions
    assert b_snap.path.name not in [name for name, _ in parts]
    assert _covers(recompute, prompt.document_spans[1])  # b read again in place
    [rebuilt] = [s for s in library.snapshots.list_snapshots() if s.label == "b.txt"]
    assert crc32_file(rebuilt.path) == library.store.get_snapshot(rebuilt.key)["checksum"]  # type: ignore[index]
    assert rebuilt.path.read_bytes() != bytes(data)


def test_longread_snapshots_lists_each_documents_snapshot(
    tmp_path: Path, home: Path, library: Library, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    docs = _docs(library, tmp_path, ["a.txt", "b.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt"), QUESTION)
    library.close()
    assert main(["snapshots"]) == 0
    out = capsys.readouterr().out
    assert "document a.txt, KV f16" in out and "document b.txt, KV f16" in out
    assert f"document {HEAD_LABEL}, KV f16" in out
    assert "4 snapshots (3 of single documents)" in out


def test_composing_off_reads_cold(tmp_path: Path, library: Library, backend: FakeBackend) -> None:
    docs = _docs(library, tmp_path, ["a.txt", "b.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt"), QUESTION)
    library.reader.compose_k = None
    result = library.ask(_corpus(docs, "b.txt", "a.txt"), QUESTION)
    assert result.warm is not None and result.warm.source == "prefill"


def test_the_setting_not_to_assemble_reads_a_changed_corpus_fresh(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    """``ReadSettings.assemble`` off (the settings' checkbox, ``ask --no-assemble``): the
    documents' snapshots are kept and saved, a reorder is read fresh; on again, it is
    assembled from them."""
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    library.reader.settings = replace(library.reader.settings, assemble=False)
    fresh = library.ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    assert fresh.warm is not None and fresh.warm.source == "prefill"
    assert not _model(backend).compositions
    library.reader.settings = replace(library.reader.settings, assemble=True)
    assembled = library.ask(_corpus(docs, "b.txt", "c.txt", "a.txt"), QUESTION)
    assert assembled.warm is not None and assembled.warm.source == "composed"
    parser = _build_parser()
    assert not _settings(parser.parse_args(["ask", "x.pdf", "-q", "Q?", "--no-assemble"])).assemble
    assert _settings(parser.parse_args(["ask", "x.pdf", "-q", "Q?"])).assemble


def test_kl_divergence_is_zero_for_equal_logits_and_grows_apart() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    a = rng.standard_normal(100).astype(np.float32)
    assert kl_divergence(a, a) == pytest.approx(0.0, abs=1e-9)
    assert kl_divergence(a, a + 3.0) == pytest.approx(0.0, abs=1e-6)  # a shift of every logit changes nothing
    assert kl_divergence(a, a + rng.standard_normal(100) * 5) > 1.0


def test_kv_state_bytes_round_trip_and_cut() -> None:
    import struct

    import numpy as np

    # A two-layer, three-cell state with a transposed V (llama.cpp's f16 layout without flash attention).
    n, row, embd, el = 3, 4, 2, 2
    parts = [b"HEADER!!", struct.pack("<II", 1, n)]
    parts += [struct.pack("<iIi", p, 1, 0) for p in (5, 6, 7)]
    parts.append(struct.pack("<II", 1, 2))
    for layer in range(2):
        parts += [struct.pack("<iQ", 1, row), bytes(range(layer * 50, layer * 50 + n * row))]
    for layer in range(2):
        parts += [struct.pack("<iII", 1, el, embd), bytes(range(100 + layer * 20, 100 + layer * 20 + embd * n * el))]
    data = b"".join(parts)
    state = kvstate.parse(data)
    assert state.to_bytes() == data
    middle = state.positions(6, 7)
    assert middle.pos.tolist() == [6] and middle.k[0].tobytes() == bytes(range(4, 8))
    # V is (embedding, cells x element): cell 1 of each embedding row.
    assert middle.v[0].tobytes() == bytes([102, 103, 108, 109])
    assert state.positions(6, 8).to_bytes() == state.take(np.array([1, 2])).to_bytes()
    with pytest.raises(Exception, match="once each"):
        state.positions(4, 6)
    assert np.array_equal(state.pos, [5, 6, 7])


def test_with_memory_the_documents_are_composed_and_the_memory_read_on_top(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    library.use_memory(True)
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    before = len(backend.prompts)
    prompt, _ = library.prepare_ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    assert prompt.memory_ids  # the first answer is remembered and carried

    result = library.ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    warm = result.warm
    assert warm is not None and warm.source == "composed" and warm.documents == 3, warm
    assert warm.restored_tokens == prompt.corpus_only_end < prompt.corpus_end
    # What the answer read is exactly a cold read of this order with its memory block.
    assert list(backend.prompts[before].tokens[: len(prompt.tokens)]) == prompt.tokens


def test_an_assembled_corpus_is_never_saved_as_a_cold_reads_snapshot(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    """A prefix snapshot is what a cold read computes: the memory read on top of an
    assembled corpus is not saved with it, so a new session assembles the documents
    again (or, not assembling, reads them fresh) and never restores assembled cells as
    if they had been read."""
    library.use_memory(True)
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    corpora = {s.key for s in library.snapshots.list_snapshots() if s.kind == "corpus"}

    assembled = library.ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    assert assembled.warm is not None and assembled.warm.source == "composed"
    assert {s.key for s in library.snapshots.list_snapshots() if s.kind == "corpus"} == corpora

    library.close_model()  # a new session after a restart: the same order, the same memory
    again = library.ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    assert again.warm is not None and again.warm.source == "composed"
    library.close_model()
    library.reader.settings = replace(library.reader.settings, assemble=False)
    prompt, _ = library.prepare_ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    fresh = library.ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    assert fresh.warm is not None and fresh.warm.source == "prefill" and fresh.warm.saved
    assert fresh.prefill.evaluated >= prompt.corpus_end  # read whole, memory and all


def test_read_fresh_drops_an_assembled_corpus_and_reads_it_as_a_cold_read_does(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    """The answer line's "read fresh and ask again" (``fresh=True``) on the corpus just
    assembled: the assembled cells go, the documents are read and saved as the order's
    own snapshot, which the next question restores; one that does not ask for it after
    an assembled answer is a follow-up (the context is kept)."""
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    order = _corpus(docs, "b.txt", "c.txt", "a.txt")
    assembled = library.ask(order, QUESTION)
    assert assembled.warm is not None and assembled.warm.source == "composed"
    assert assembled.warm.assembled
    follow_up = library.ask(order, QUESTION, session_id=assembled.session_id)
    assert follow_up.warm is not None and follow_up.warm.source == "context" and follow_up.warm.assembled

    fresh = library.ask(order, QUESTION, session_id=assembled.session_id, fresh=True)
    prompt, _ = library.prepare_ask(order, QUESTION)
    assert fresh.warm is not None and fresh.warm.source == "prefill" and fresh.warm.saved
    assert not fresh.warm.assembled
    assert fresh.prefill.evaluated >= prompt.corpus_end
    after = library.ask(order, QUESTION, session_id=assembled.session_id)  # a follow-up of the fresh read
    assert after.warm is not None and after.warm.source == "context" and not after.warm.assembled
    assert len(_model(backend).compositions) == 2  # the first ask's probe and composition only
    library.close_model()
    restored = library.ask(order, QUESTION)
    assert restored.warm is not None and restored.warm.source == "snapshot"


def test_reading_on_after_an_assembled_corpus_saves_no_prefix_snapshot(
    tmp_path: Path, library: Library, backend: FakeBackend
) -> None:
    """A document added at the end of an assembled corpus is read on top of it (cheaper
    than assembling again): those cells are not a cold read's, so no corpus snapshot."""
    docs = _docs(library, tmp_path, ["a.txt", "b.txt", "c.txt", "d.txt"])
    library.ask(_corpus(docs, "a.txt", "b.txt", "c.txt"), QUESTION)
    library.ask(_corpus(docs, "c.txt", "a.txt", "b.txt"), QUESTION)
    library.reader.compose_k = 10_000  # assembling again costs more than reading d.txt on top
    before = {s.key for s in library.snapshots.list_snapshots() if s.kind == "corpus"}
    more = library.ask(_corpus(docs, "c.txt", "a.txt", "b.txt", "d.txt"), QUESTION)
    assert more.warm is not None and more.warm.source == "prefill" and not more.warm.saved
    prompt, _ = library.prepare_ask(_corpus(docs, "c.txt", "a.txt", "b.txt", "d.txt"), QUESTION)
    assert more.prefill.reused >= prompt.document_spans[-1][0]  # c, a, b kept, d read
    assert {s.key for s in library.snapshots.list_snapshots() if s.kind == "corpus"} == before


def test_a_documents_facts_are_its_long_runs_of_digits_and_the_words_before_them() -> None:
    from engine.compose import FACT_RUN_BEFORE, fact_runs

    words = ["The", " report", " on", " tides", ".", " The", " gauge", " serial", " number", " is"]
    code = [" 7", "3", "1", "9", "0", "4"]
    pieces = words + code + [".", " Page", " 12", " of", " 30", "."]
    at = len(words)
    # The code (six digit tokens) and the words before it, one token past it; "12" and
    # "30" are runs of one: page numbers and small figures are not read again.
    assert fact_runs(pieces, 100, min_run=5) == [(100 + at - FACT_RUN_BEFORE, 100 + at + len(code) + 1)]
    assert fact_runs(pieces, 0, min_run=7) == []
    assert fact_runs(pieces[at:], 0, min_run=5) == [(0, len(code) + 1)]  # nothing before it
    assert fact_runs(code, 0, min_run=1) == [(0, len(code))]  # a run at the very end
