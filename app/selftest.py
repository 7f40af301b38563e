"""``longread-app --selftest``: a headless check that an installed Longread works.

It uses the engine only (no Qt), through its front door (``engine.library.Library``), in a
temporary data folder that it removes afterwards, and checks what a frozen bundle can get
wrong:

- the sample document is found among the resources and ingested (text path);
- a PDF, written here with a known code on its second page, is ingested through the
  engine's PDF child process (``multiprocessing`` spawn: a frozen app must start it);
- tiktoken's offline estimate works (its ``tiktoken_ext`` plugin and data file came along);
- the bundled model is found and loaded, and it answers a question about the PDF with
  the code (a real prefill and generation through llama.cpp's shared libraries);
- the answer was stored as a finished run, and user data is never inside the bundle;
- llama.cpp's CPU features are printed, so a build for the builder's CPU (AVX-512) shows;
- the probe's prose (Python's own documentation, ``pydoc_data`` and docstrings) is there,
  and matplotlib draws a heatmap on its Agg canvas (the bundle keeps only that backend).

Prints one line per check and returns 0 when every check passed, 1 otherwise (the
failure names the check). The library (and its model) is closed before returning: a
``Llama`` left to the garbage collector prints a traceback at exit in the frozen app
(docs/architecture.md, "Measured facts").
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PDF_CODE = "731904"
PDF_PAGES = (
    "Page 1 of the harbor office handbook. Staff check the mooring lines every morning "
    "and record the tide tables in the log book.",
    f"Page 2 of the harbor office handbook. The vault access code is {PDF_CODE}. "
    "Visitors sign in at the front desk and receive a badge for the day.",
)
QUESTION = "What is the vault access code?"


def write_text_pdf(path: Path, pages: Sequence[str]) -> Path:
    """Write a minimal, valid PDF with one line of Helvetica text per page.

    The bundle carries no PDF writer (fpdf2 is a test tool), and a PDF written here
    keeps the self-test independent of files that could be missing from a bundle.
    """
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for page_id, text in zip(page_ids, pages, strict=True):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        lines = _wrap(escaped, 90)
        body = "BT /F1 10 Tf 14 TL 50 790 Td " + " ".join(f"({line}) '" for line in lines) + " ET"
        stream = body.encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {page_id + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def bundle_root() -> Path | None:
    """The frozen app's folder (the one holding the executable), or None from source."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def run_selftest(*, out: Callable[[str], None] = print) -> int:
    """Run every check in a temporary data folder; return 0 if all passed, else 1."""
    start = time.perf_counter()
    previous_home = os.environ.get("LONGREAD_HOME")
    with tempfile.TemporaryDirectory(prefix="longread-selftest-") as tmp:
        os.environ["LONGREAD_HOME"] = str(Path(tmp) / "data")
        try:
            _run_checks(Path(tmp), out)
        except _Failed as exc:
            out(f"FAILED: {exc}")
            return 1
        finally:
            if previous_home is None:
                os.environ.pop("LONGREAD_HOME", None)
            else:
                os.environ["LONGREAD_HOME"] = previous_home
    out(f"selftest passed in {time.perf_counter() - start:.1f} s")
    return 0


class _Failed(Exception):
    pass


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise _Failed(what)


def _run_checks(tmp: Path, out: Callable[[str], None]) -> None:
    import platformdirs

    from app.resources import resources_root, sample_document
    from engine.config import APP_NAME, ReadSettings, data_dir, db_path
    from engine.corpus import Corpus
    from engine.errors import EngineError
    from engine.lane import default_backend
    from engine.library import Library
    from engine.models.bundled import bundled_model_path
    from engine.runs import Status
    from engine.tokens import estimate_corpus_tokens

    bundle = bundle_root()
    out(f"python {sys.version.split()[0]}, {'frozen bundle ' + str(bundle) if bundle else 'source tree'}")
    out(f"resources: {resources_root()}")
    cpu = default_backend().describe_system()
    out(f"llama.cpp CPU features: {cpu}")
    _check("AVX512" not in cpu.upper(), "llama.cpp was built for this machine's AVX-512: rebuild with GGML_NATIVE=OFF")

    folder = data_dir()
    default_folder = Path(platformdirs.user_data_dir(APP_NAME))
    out(f"data folder: {folder} (default for users: {default_folder})")
    if bundle is not None:
        _check(not _inside(folder, bundle), f"the data folder {folder} is inside the bundle")
        _check(not _inside(default_folder, bundle), f"the default data folder {default_folder} is inside the bundle")

    pdf_path = write_text_pdf(tmp / "handbook.pdf", PDF_PAGES)
    sample = sample_document()
    _check(sample.is_file(), f"the sample document is missing: {sample}")
    model_path = bundled_model_path()
    # Only the PDF is read by the model: it keeps the check to a few seconds of prefill,
    # and the code must come from the PDF's second page.
    settings = ReadSettings(max_answer_tokens=40)
    with Library(db_path(), model_path=model_path, settings=settings, use_snapshots=False) as library:
        try:
            docs, _ = library.add_documents([sample, pdf_path])
        except EngineError as exc:
            raise _Failed(f"ingest: {exc.message}") from exc
        sample_doc, pdf_doc = docs
        out(f"ingested {sample_doc.name}: {sample_doc.n_pages} pages ({sample_doc.extractor})")
        out(f"ingested {pdf_doc.name}: {pdf_doc.n_pages} pages ({pdf_doc.extractor}) in a child process")
        _check(pdf_doc.n_pages == len(PDF_PAGES), f"the PDF has {pdf_doc.n_pages} pages, not {len(PDF_PAGES)}")
        _check(PDF_CODE in pdf_doc.pages[1].text, "the PDF's text did not come through")
        estimate = estimate_corpus_tokens(Corpus(tuple(docs)))
        out(f"token estimate (tiktoken offline): {estimate:,} tokens")
        _check(estimate > 1000, "the token estimate is implausibly small")

        out(f"model: {model_path}")
        if bundle is not None:
            _check(_inside(model_path, bundle), f"the bundled model is not the bundle's own: {model_path}")
        try:
            result = library.ask(Corpus((pdf_doc,)), QUESTION)
        except EngineError as exc:
            raise _Failed(f"ask: {exc.message}") from exc
        out(f"question: {QUESTION}")
        out(f"answer: {result.answer}")
        out(f"read {result.prefill.evaluated} tokens in {result.prefill.seconds:.1f} s, window {result.budget.n_ctx}")
        _check(PDF_CODE in result.answer, f"the answer does not give the code {PDF_CODE}")
        runs = library.runs(result.session_id)
        _check(len(runs) == 1 and runs[0].status is Status.DONE, "the answer was not stored")
        out(f"stored session {result.session_id} in {db_path()}")
    check_heatmap(tmp, out)


def check_heatmap(tmp: Path, out: Callable[[str], None]) -> None:
    """The probe's prose loads and a heatmap of two made-up cells is drawn (no model run)."""
    from engine.errors import EngineError
    from engine.probe import load_prose, suite_key
    from engine.probe_plot import draw_heatmap
    from engine.store.db import ProbeCell

    try:
        prose = load_prose()
    except EngineError as exc:
        raise _Failed(f"probe prose: {exc.message}") from exc
    out(f"probe prose: {len(prose):,} sentences (suite {suite_key()})")
    cells = [
        ProbeCell(
            model_sha256="selftest",
            kv_type="f16",
            n_ctx=2048,
            suite=suite_key(),
            task="niah_single",
            length=length,
            depth=0.5,
            sample=0,
            seed=0,
            prompt_tokens=length,
            expected=("1",),
            output=" 1",
            score=score,
            prefill_s=0.0,
            generate_s=0.0,
            runtime_version="selftest",
        )  # fmt: skip
        for length, score in ((1024, 1.0), (2048, 0.0))
    ]
    try:
        png = draw_heatmap(cells, tmp / "heatmap.png", title="selftest")
    except EngineError as exc:
        raise _Failed(f"heatmap: {exc.message}") from exc
    size = png.stat().st_size
    out(f"heatmap drawn (matplotlib Agg): {size:,} bytes")
    _check(size > 5000, f"the heatmap is implausibly small ({size} bytes)")
