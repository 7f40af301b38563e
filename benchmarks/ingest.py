"""Ingestion speed: PDFium against pypdf on the same PDFs, sequential against parallel pages.

Run: ``.venv/bin/python benchmarks/ingest.py [--pages 1000] [--workers 2] [PDF ...]``

1. Extractors, same process, same files: pages per second and text similarity (difflib
   ratio over words, page by page) of PDFium (the default) and pypdf, on generated
   realistic PDFs (one column, two columns) and any real PDFs named or found in
   /usr/share/doc. This is the measurement behind making PDFium the default.
2. ``read_document`` on a long generated PDF (cached in /tmp) into a fresh store: one
   child against ``--workers`` children, with the peak memory of parent and children.
3. Re-adding the same document: found by hash in the store, nothing extracted.
"""

from __future__ import annotations

import argparse
import difflib
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.ingest import read_document  # noqa: E402
from engine.ingest.pdf import _PypdfPages  # noqa: E402
from engine.ingest.pdfium import PdfiumDocument  # noqa: E402
from engine.store import open_store  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "longread-bench"
WORDS = (
    "the tenant shall pay rent monthly harbor office agreement clause party court witness exhibit "
    "notice term deposit damages section evidence claim award tribunal hearing counsel record"
).split()


def _paragraph(seed: int, n_words: int = 90) -> str:
    words = [WORDS[(seed * 7 + i * 13 + (i * i) % 11) % len(WORDS)] for i in range(n_words)]
    return f"{seed}. " + " ".join(words).capitalize() + "."


def make_long_pdf(n_pages: int) -> Path:
    """A one-column filing of ``n_pages`` pages, made once and cached."""
    path = CACHE / f"long-{n_pages}.pdf"
    if path.exists():
        return path
    from fpdf import FPDF

    CACHE.mkdir(parents=True, exist_ok=True)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=10)
    for page in range(1, n_pages + 1):
        pdf.add_page()
        pdf.set_xy(15, 12)
        pdf.cell(0, 5, f"Case 24-1187 - Filing - page {page}")
        pdf.set_xy(15, 22)
        pdf.multi_cell(180, 4.6, "\n\n".join(_paragraph(page * 10 + k) for k in range(5)))
    pdf.output(str(path))
    return path


def make_two_column_pdf(n_pages: int = 60) -> Path:
    """A two-column journal layout: the case where extractors disagree most on order."""
    path = CACHE / f"two-column-{n_pages}.pdf"
    if path.exists():
        return path
    from fpdf import FPDF

    CACHE.mkdir(parents=True, exist_ok=True)
    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=9)
    pdf.add_page()
    with pdf.text_columns(ncols=2, gutter=8) as cols:
        for k in range(n_pages * 6):
            cols.write(_paragraph(k, 70) + "\n\n")
    pdf.output(str(path))
    return path


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def compare_extractors(path: Path) -> dict[str, float]:
    """Time both extractors over every page of ``path`` and compare their words."""
    start = time.perf_counter()
    doc = PdfiumDocument(str(path))
    fast = [doc.read_text(i) for i in range(len(doc))]
    doc.close()
    t_pdfium = time.perf_counter() - start
    start = time.perf_counter()
    reader = _PypdfPages(str(path), None)
    slow = [reader.read_text(i) for i in range(len(reader))]
    t_pypdf = time.perf_counter() - start
    ratios = [
        difflib.SequenceMatcher(None, _words(a), _words(b), autojunk=False).ratio()
        for a, b in zip(fast, slow, strict=True)
        if a.strip() or b.strip()
    ]
    return {
        "pages": len(fast),
        "pdfium_s": t_pdfium,
        "pypdf_s": t_pypdf,
        "speedup": t_pypdf / t_pdfium if t_pdfium else float("inf"),
        "similarity": statistics.mean(ratios) if ratios else 1.0,
        "worst_page": min(ratios) if ratios else 1.0,
        "chars_pdfium": sum(len(t) for t in fast),
        "chars_pypdf": sum(len(t) for t in slow),
    }


def ingest(path: Path, workers: int) -> tuple[float, float, int]:
    """Read ``path`` into a fresh store with ``workers`` children; return (s, re-add s, pages)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.db")
        try:
            start = time.perf_counter()
            doc, fresh = read_document(path, store=store, pdf_workers=workers, ocr=False)
            elapsed = time.perf_counter() - start
            assert fresh
            start = time.perf_counter()
            again, fresh_again = read_document(path, store=store, pdf_workers=workers, ocr=False)
            readd = time.perf_counter() - start
            assert not fresh_again and again.pages == doc.pages
        finally:
            store.close()
    return elapsed, readd, doc.n_pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="*", type=Path, help="real PDFs to compare the extractors on")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="ingest runs per setting (best is kept)")
    args = parser.parse_args()

    long_pdf = make_long_pdf(args.pages)
    real = args.pdfs or sorted(p for p in Path("/usr/share/doc").rglob("*.pdf") if p.stat().st_size > 100_000)[:4]
    print("## Extractors on the same PDFs (same process)\n")
    print("| PDF | pages | pypdf s | PDFium s | speedup | word similarity (mean / worst page) | chars pypdf / PDFium |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in [long_pdf, make_two_column_pdf(), *real]:
        r = compare_extractors(path)
        print(
            f"| {path.name} | {r['pages']:.0f} | {r['pypdf_s']:.2f} | {r['pdfium_s']:.2f} | {r['speedup']:.1f}x "
            f"| {r['similarity']:.3f} / {r['worst_page']:.3f} | {r['chars_pypdf']:.0f} / {r['chars_pdfium']:.0f} |"
        )

    print(f"\n## read_document on {long_pdf.name} into a fresh store (best of {args.repeat})\n")
    print("| children | seconds | pages/s | re-add (already stored) s |")
    print("|---:|---:|---:|---:|")
    results = {}
    for workers in sorted({1, args.workers}):
        runs = [ingest(long_pdf, workers) for _ in range(args.repeat)]
        best = min(runs)
        results[workers] = best
        print(f"| {workers} | {best[0]:.2f} | {best[2] / best[0]:.0f} | {best[1]:.3f} |")
    if args.workers in results and args.workers != 1:
        print(f"\nparallel speedup ({args.workers} children / 1): {results[1][0] / results[args.workers][0]:.2f}x")
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {parent:.0f} MB (both extractors in-process above), largest child {children:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
