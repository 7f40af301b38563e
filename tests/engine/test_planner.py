"""The planner (issue 5): memory per KV cache type, windows, RoPE scaling, calibration,
the check every load passes, and the load paths rejecting files that are not models.
Real GGUFs, a real store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import cli
from engine.config import ReadSettings
from engine.corpus import Corpus
from engine.errors import ModelFileError
from engine.ingest import read_documents
from engine.lane import ModelLane
from engine.machine import read_available_memory
from engine.models.bundled import model_sha256
from engine.models.gguf import inspect_gguf
from engine.planner import calibrate
from engine.planning import (
    PlanRefused,
    SpeedModel,
    check_load,
    estimate_compute_bytes,
    fit_speed_models,
    make_plan,
    sum_attended_positions,
)
from engine.reading.ask import Reader
from engine.runtime.backend import KvType, LoadSettings
from engine.runtime.llama import LLAMA_CPP_VERSION, LlamaBackend, LoadedModel, load_model, load_tokenizer
from engine.store import Store
from engine.store.db import CalibrationRow
from engine.units import format_bytes

GIB = 1 << 30


# --- memory ------------------------------------------------------------------------------


def test_plan_rows_add_up_and_use_the_model_shapes(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    plan = make_plan(info, 3000, available_bytes=16 * GIB)

    assert plan.ok
    assert plan.n_ctx % 256 == 0 and plan.n_ctx >= plan.needed_tokens > 3000
    assert [r.kv_type for r in plan.rows] == list(KvType)
    for row in plan.rows:
        assert row.kv_bytes == info.kv_cache_bytes(plan.n_ctx, row.kv_type, row.kv_type, swa_full=True)
        assert row.weights_bytes >= info.file_size
        assert row.total_bytes == row.weights_bytes + row.kv_bytes + row.compute_bytes + row.overhead_bytes
        assert row.fits_memory
        assert row.needs_flash_attn == (row.kv_type != "f16")
        assert row.est_prefill_s is None  # nothing calibrated
    f16, q8, q4 = plan.rows
    assert f16.kv_bytes > q8.kv_bytes > q4.kv_bytes
    # Without calibration the plan says it has not measured, and keeps f16 (fastest on CPUs).
    assert plan.recommended is f16
    assert "not measured" in "\n".join(plan.describe())
    assert "flash attention" in (q8.warning or "")


def test_gemma_sliding_layers_shrink_the_cache_only_without_swa_full(gemma_path: Path) -> None:
    info = inspect_gguf(gemma_path)
    full = make_plan(info, 20000, available_bytes=16 * GIB)
    rolling = make_plan(info, 20000, available_bytes=16 * GIB, swa_full=False)

    assert full.row("f16").kv_bytes == info.kv_cache_bytes(full.n_ctx, swa_full=True)
    assert rolling.row("f16").kv_bytes == info.kv_cache_bytes(full.n_ctx, swa_full=False)
    assert rolling.row("f16").kv_bytes < full.row("f16").kv_bytes / 4


def test_flash_attention_shrinks_the_compute_buffer_at_long_windows(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    short, long = 1024, 8192
    assert estimate_compute_bytes(info, long, flash_attn=False) > 2 * estimate_compute_bytes(
        info, long, flash_attn=True
    )
    assert estimate_compute_bytes(info, long, flash_attn=False) > estimate_compute_bytes(info, short, flash_attn=False)


def test_too_little_memory_refuses_with_numbers_and_ways_out(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    roomy = make_plan(info, 6000, available_bytes=16 * GIB)
    f16, q8, _ = roomy.rows
    # Enough for a q8_0 cache but not for f16: the plan switches and says why.
    between = (f16.total_bytes + q8.total_bytes) // 2
    squeezed = make_plan(info, 6000, available_bytes=between)
    assert squeezed.ok
    assert squeezed.recommended is not None and squeezed.recommended.kv_type != "f16"
    assert not squeezed.row("f16").fits_memory

    starved = make_plan(info, 6000, available_bytes=info.file_size // 2)
    assert not starved.ok
    message = starved.refusal() or ""
    assert "free" in message and "Ways out" in message and "smaller model" in message
    with pytest.raises(PlanRefused) as caught:
        starved.raise_if_refused()
    assert caught.value.plan is starved


def test_available_memory_is_read_from_the_os() -> None:
    available = read_available_memory()
    assert available is not None and available > 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        total = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemTotal:"))
    assert available <= total


# --- windows and RoPE scaling --------------------------------------------------------------


def test_corpus_too_large_for_the_window_says_so(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    plan = make_plan(info, 20000, available_bytes=16 * GIB)

    assert not plan.ok and not plan.fits_window
    assert plan.n_ctx == info.context_length
    message = plan.refusal() or ""
    assert "20,000" in message and f"{info.context_length:,}" in message
    assert "waves" in message and "RoPE scaling" in message
    assert "Cannot read" in plan.describe()[-1]


def test_explicit_window_too_small_names_the_window_needed(smollm2_path: Path) -> None:
    plan = make_plan(inspect_gguf(smollm2_path), 3000, n_ctx=1024, available_bytes=16 * GIB)
    assert not plan.ok
    assert f"at least {plan.needed_tokens + (-plan.needed_tokens % 256):,} tokens" in (plan.refusal() or "")


def test_beyond_trained_length_refuses_without_scaling_and_warns_with_it(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    window = info.context_length * 2

    refused = make_plan(info, 3000, n_ctx=window, available_bytes=16 * GIB)
    assert not refused.ok
    assert "beyond" in (refused.refusal() or "") and "--rope yarn" in (refused.refusal() or "")

    scaled = make_plan(info, 3000, n_ctx=window, rope_scaling="yarn", available_bytes=16 * GIB)
    assert scaled.ok
    assert any("answers may be worse" in w for w in scaled.warnings)
    settings = scaled.load_settings(n_threads=2)
    assert (settings.n_ctx, settings.kv_type, settings.rope_scaling) == (window, "f16", "yarn")
    assert settings.rope_freq_scale == pytest.approx(info.context_length / window)
    assert settings.yarn_orig_ctx == info.context_length
    assert make_plan(info, 3000, available_bytes=16 * GIB).load_settings(n_threads=2).rope_scaling is None

    # A corpus longer than the trained length fits once scaling is allowed.
    long = make_plan(info, 12000, rope_scaling="linear", available_bytes=16 * GIB)
    assert long.ok and long.n_ctx > info.context_length


def test_model_loads_with_yarn_beyond_its_trained_length(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    plan = make_plan(info, 3000, n_ctx=info.context_length + 1024, rope_scaling="yarn", available_bytes=16 * GIB)
    model = load_model(smollm2_path, plan.load_settings(n_threads=2))
    try:
        assert model.n_ctx == info.context_length + 1024 > info.context_length
        tokens = model.tokenize_text("The harbor office checks the mooring lines every morning.")
        model.prefill(tokens)
        assert model.last_logits().shape[0] == info.vocab_size
    finally:
        model.close()


# --- speed ---------------------------------------------------------------------------------


def test_attended_positions_saturate_on_sliding_layers(smollm2_path: Path, gemma_path: Path) -> None:
    smol, gemma = inspect_gguf(smollm2_path), inspect_gguf(gemma_path)
    # Full attention everywhere: the triangle n(n+1)/2.
    assert sum_attended_positions(smol, 1000) == 1000 * 1001 / 2
    # Gemma: 15 of 18 layers stop at the 512-token window, so doubling a long corpus
    # grows attention far less than 4x.
    ratio = sum_attended_positions(gemma, 16000) / sum_attended_positions(gemma, 8000)
    assert 2 < ratio < 4


def test_a_full_size_sliding_cache_without_flash_attention_costs_full_attention(gemma_path: Path) -> None:
    gemma = inspect_gguf(gemma_path)
    assert sum_attended_positions(gemma, 16000, sliding_full=True) == 16000 * 16001 / 2
    assert sum_attended_positions(gemma, 16000) < 16000 * 16001 / 2 / 4
    # The plan counts full attention for f16 (no flash attention) with swa_full, windowed
    # for a quantized cache (flash attention skips the masked cells) or without swa_full.
    seconds = (1.44, 1.71)  # two 512-token batches of Gemma 3 270M at f16, 2 threads, on this machine
    rows = [CalibrationRow("sha", kv, 2, 512, "0.3.36", seconds, flash_attn=kv != "f16") for kv in ("f16", "q8_0")]
    fitted = fit_speed_models(gemma, rows, swa_full=True)
    assert fitted["f16"].sliding_full and not fitted["q8_0"].sliding_full
    assert not fit_speed_models(gemma, rows, swa_full=False)["f16"].sliding_full
    # Measured: a cold read of 32,512 tokens took 618.5 s at f16 (benchmarks/reopen.py).
    assert fitted["f16"].estimate_seconds(gemma, 32512) == pytest.approx(618.5, rel=0.1)
    windowed = fitted["q8_0"].estimate_seconds(gemma, 32512)  # the same timings, counted windowed
    assert windowed < fitted["f16"].estimate_seconds(gemma, 32512) / 2


def test_speed_model_recovers_the_two_costs(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    per_token, per_position = 2e-3, 3e-6
    truth = SpeedModel("f16", per_token, per_position, 0)
    seconds = [truth.estimate_seconds(info, (i + 1) * 512) - truth.estimate_seconds(info, i * 512) for i in range(2)]
    fitted = SpeedModel.fit(info, "f16", 512, seconds)
    assert fitted.per_token_s == pytest.approx(per_token, rel=1e-6)
    assert fitted.per_position_s == pytest.approx(per_position, rel=1e-6)
    # Noise that makes the second batch faster than the first: one rate, no growth.
    flat = SpeedModel.fit(info, "f16", 512, [1.0, 0.8])
    assert flat.per_position_s == 0 and flat.per_token_s == pytest.approx(1.8 / 1024)


def test_calibration_is_stored_and_drives_the_recommendation(smollm2_path: Path, store: Store) -> None:
    sha = model_sha256(smollm2_path)
    for kv in ("f16", "q8_0"):
        row = calibrate(smollm2_path, kv, store=store, n_threads=2, model_sha256=sha, batch_size=128, n_batches=2)
        assert len(row.batch_seconds) == 2 and all(s > 0 for s in row.batch_seconds)
        assert row.flash_attn == (kv != "f16")

    rows = store.get_calibrations(sha, n_threads=2, llama_cpp_version=LLAMA_CPP_VERSION)
    assert sorted(r.kv_type for r in rows) == ["f16", "q8_0"]
    assert store.get_calibrations(sha, n_threads=3) == []

    plan = make_plan(
        inspect_gguf(smollm2_path), 3000, kv_types=("f16", "q8_0"), calibrations=rows, available_bytes=16 * GIB
    )
    timed = [r for r in plan.rows if r.est_prefill_s is not None]
    assert len(timed) == 2
    assert plan.recommended is min(timed, key=lambda r: r.est_prefill_s or 0)
    assert "x the time of f16" in (plan.row("q8_0").warning or "")


def test_calibration_replaces_the_older_measurement(store: Store) -> None:
    row = CalibrationRow("abc", "f16", 2, 512, "0.3.36", (1.0, 1.5), False, "2026-01-01T00:00:00+00:00")
    store.put_calibration(row)
    store.put_calibration(CalibrationRow("abc", "f16", 2, 512, "0.3.36", (0.9, 1.2), False))
    (stored,) = store.get_calibrations("abc")
    assert stored.batch_seconds == (0.9, 1.2)


# --- files that are not models never reach llama.cpp ---------------------------------------


@pytest.fixture(params=["text", "truncated"])
def bad_model(request: pytest.FixtureRequest, tmp_path: Path, smollm2_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    if request.param == "text":
        path.write_text("Meeting notes, not a model.\n" * 50)
    else:
        shutil.copyfile(smollm2_path, path)
        with path.open("r+b") as handle:
            handle.truncate(smollm2_path.stat().st_size // 2)
    return path


def test_runtime_and_reader_reject_bad_files(bad_model: Path, store: Store, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="model.gguf"):
        load_tokenizer(bad_model)
    with pytest.raises(ModelFileError, match="model.gguf"):
        load_model(bad_model, LoadSettings(n_ctx=512, n_threads=1))

    doc_path = tmp_path / "notes.txt"
    doc_path.write_text("The harbor office opens at eight.\n")
    docs, _ = read_documents([doc_path], store=store)
    reader = Reader(store, bad_model)
    try:
        with pytest.raises(ModelFileError, match="model.gguf"):
            reader.prepare(Corpus(tuple(docs)), "When does the office open?")
    finally:
        reader.close()


# --- the command -----------------------------------------------------------------------------


def test_cli_plan_prints_the_table(
    home: Path, tmp_path: Path, smollm2_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "policy.txt"
    doc.write_text("Section 1. Visitors sign in at the front desk and receive a badge.\n" * 40)

    assert cli.main(["plan", str(doc), "--model", str(smollm2_path), "--no-calibrate"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    for kv in KvType:
        assert f"\n{kv} " in out
    assert "Recommended: KV cache f16" in out
    # Sizes in engine.units' words, the gauge's too (decimal units).
    weights = make_plan(inspect_gguf(smollm2_path), 0, available_bytes=None).rows[0].weights_bytes
    assert f" {format_bytes(weights)} " in out and " MB" in out and "MiB" not in out

    assert (
        cli.main(["plan", str(doc), "--model", str(smollm2_path), "--no-calibrate", "--ctx", "256"]) == cli.EXIT_ERROR
    )
    assert "Cannot read: The corpus needs" in capsys.readouterr().out


def test_cli_plan_rejects_a_text_file_named_gguf(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "policy.txt"
    doc.write_text("Visitors sign in at the front desk.\n")
    fake = tmp_path / "fake.gguf"
    fake.write_text("not a model\n" * 10)

    assert cli.main(["plan", str(doc), "--model", str(fake)]) == cli.EXIT_ERROR
    assert "fake.gguf is not a GGUF model file" in capsys.readouterr().err


class _CountingBackend(LlamaBackend):
    """llama.cpp, counting the loads that reach it."""

    def __init__(self) -> None:
        self.loads: list[LoadSettings] = []

    def load_model(self, path: Path, settings: LoadSettings) -> LoadedModel:
        self.loads.append(settings)
        return super().load_model(path, settings)


def test_load_that_cannot_fit_is_refused_before_llama_cpp(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    available = read_available_memory()
    assert available is not None
    # A window whose f16 KV cache alone is twice the free memory.
    window = (2 * available // int(info.kv_bytes_per_token()) // 256) * 256
    backend = _CountingBackend()
    lane = ModelLane(smollm2_path, ReadSettings(n_threads=1), backend=backend)
    try:
        with pytest.raises(PlanRefused, match=r"needs about .* but only .* is free\. Ways out: a window of at most"):
            lane.ensure(window, "f16")
        assert backend.loads == [] and lane.model is None

        # A load that fits goes through, with the planner's figure on its settings.
        model = lane.ensure(512, "q8_0")
        (settings,) = backend.loads
        assert (model.n_ctx, model.kv_type, settings.kv_type) == (512, "q8_0", "q8_0")
        row = make_plan(info, 0, n_ctx=512, available_bytes=None).row(KvType.Q8_0)
        assert settings.planned_bytes == row.total_bytes
    finally:
        lane.close()


def test_the_load_check_is_pure_and_says_what_fits(smollm2_path: Path) -> None:
    info = inspect_gguf(smollm2_path)
    wanted = LoadSettings(n_ctx=1000, n_threads=2, kv_type="q4_0")
    checked = check_load(info, wanted, available_bytes=16 * GIB)
    assert checked.n_ctx == 1024 and checked.kv_type is KvType.Q4_0
    assert checked.planned_bytes == make_plan(info, 0, n_ctx=1024, available_bytes=None).row("q4_0").total_bytes
    assert check_load(info, wanted, available_bytes=None).planned_bytes == checked.planned_bytes

    tight = checked.planned_bytes - 1
    with pytest.raises(PlanRefused) as caught:
        check_load(info, wanted, available_bytes=tight)
    assert caught.value.plan is None
    assert "q4_0 KV cache" in caught.value.message
    with pytest.raises(ValueError):
        LoadSettings(n_ctx=512, n_threads=1, kv_type="q5_1")
