"""Pointing: which way of pointing at passages a small model does best (issue 13 item 1).

Run: ``.venv/bin/python benchmarks/pointing.py [--model PATH] [--window 1536]``.

A wave's notes are copied from its pages by the engine (engine/reading/notes.py); the model
only points. This measures three ways of pointing on the bundled sample (a 5-page
arbitration award, real prose with codes, amounts, dates and times), one page per wave,
eight questions whose answer is a string on that page:

- **quote**: the model copies the helpful sentences word for word, each after its marker;
  the engine keeps the page sentences the whole line matches (else its first words);
- **sentence-start**: the model writes the marker and the first words of each helpful
  sentence; the engine copies the sentence that starts there;
- **numbered**: the page is laid out with numbered sentences, ``(3) ...``, and the model
  writes the marker and the numbers; the engine copies those sentences.
- **free**: the model's own notes (today's prompt); the engine points for it, copying the
  page sentences that hold the numbers, dates and codes its notes name (a note naming
  one on no page of its own is dropped), else the sentence its first words start.

Every style's notes are grounded with the same ``ground_notes`` except numbered (its own
resolver). For each style: how often the answer string reaches the carried notes byte for
byte (found), how often it was in what the model wrote at all (in raw notes), how many pointed notes were dropped, and the time. A measurement on one machine
with one tiny model, not a pass/fail test.

Measured 2026-12-02 on the project's 2-core machine (shared with other jobs, so the
seconds are long), SmolLM2-135M-Instruct Q4_1, window 1,536, notes of at most 64 tokens,
greedy; quote and numbered were grounded by the first version of ``ground_notes`` (words
only), free and sentence-start by the one in engine/reading/notes.py (facts, then words):

| style | found (carried) | in raw notes | notes kept | dropped | pointed | s |
|---|---|---|---|---|---|---|
| quote | 0/8 | - | 0 | 31 | 31 | 299 |
| sentence-start | 0/8 | 0/8 | 0 | 47 | 47 | 657 |
| numbered | 1/8 | - | 10 | 1 | 11 | 201 |
| free | 0/8 | 0/8 | 7 | 11 | 21 | 202 |

Asked to point, the model mostly echoed the instructions' example
(``[report.pdf p.3] The rent is due on the``) or wrote "Question: ..." loops; numbered
pointing resolved best (10 of 11 pointers), but its one find in 8 is within noise and it
changes the wave's layout. The engine keeps the model's own notes (free) and points for
it; what they carry is page text, and the 11 notes with invented numbers (such as
"2024-02-13-2024-0037-0000-000000" for the case number) were dropped.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import ReadSettings  # noqa: E402
from engine.corpus import Corpus, Document, layout_document, page_marker  # noqa: E402
from engine.ingest import read_documents  # noqa: E402
from engine.lane import ModelLane  # noqa: E402
from engine.models.bundled import bundled_model_path  # noqa: E402
from engine.reading.notes import ground_notes, sentences  # noqa: E402
from engine.reading.prompts import build_prompt, render_frame  # noqa: E402
from engine.reading.stepping import run_step  # noqa: E402
from engine.reading.waves import sub_document  # noqa: E402
from engine.store import open_store  # noqa: E402

SAMPLE = ROOT / "resources" / "sample" / "harbor-lease-dispute.md"
CASES = [
    ("What is the award reference code?", 1, "HPM-2291-Q"),
    ("What is the TCAF case number?", 1, "01-24-0037-HP"),
    ("When did Harbor Point file its Demand?", 1, "January 16, 2024"),
    ("What was the monthly Base Rent?", 2, "$18,450.00"),
    ("What is the number of the Gullwing invoice?", 2, "GR-7713"),
    ("At what time did Mr. Pike acknowledge the notice?", 3, "10:14 a.m."),
    ("How much does Harbor Point owe for racking removal?", 4, "$8,400.00"),
    ("What is the net sum payable by Coastline to Harbor Point?", 5, "$14,335.50"),
]
SYSTEM = "You are Longread, a careful reader taking notes. A long corpus is read part by part; you see one part now."
INTRO = "Read this part of the documents. Each page starts with a marker like [name p.N].\n\n"
ASK = {
    "quote": (
        "Copy the sentences of the pages above that help answer the question, word for word, one per line, "
        "each line starting with its page marker, for example:\n[report.pdf p.3] The rent is due on the first day."
    ),
    "sentence-start": (
        "Find the sentences of the pages above that help answer the question. For each, write its page marker "
        "and the first six words of the sentence exactly as written, one per line, for example:\n"
        "[report.pdf p.3] The rent is due on the"
    ),
    "numbered": (
        "Each sentence above has a number in parentheses. Write the page marker and the numbers of the sentences "
        "that help answer the question, one line per page, for example:\n[report.pdf p.3] (4) (7)"
    ),
    "free": (
        "Write brief notes on the pages above that help answer the question, with their page markers. "
        "Copy numbers, names, dates and codes exactly."
    ),
}


def numbered_layout(doc: Document) -> str:
    parts = [f'<document name="{doc.name}">\n']
    for page in doc.pages:
        parts.append(page_marker(doc.name, page.number) + "\n")
        for i, (s, e) in enumerate(sentences(page.text), start=1):
            parts.append(f"({i}) {' '.join(page.text[s:e].split())}\n")
        parts.append("\n")
    parts.append("</document>\n\n")
    return "".join(parts)


def ground_numbered(raw: str, doc: Document, page: int) -> tuple[list[str], int, int]:
    spans = sentences(doc.pages[page - 1].text)
    notes, dropped, pointed = [], 0, 0
    for n in re.findall(r"\((\d{1,3})\)|\b[sS]?(\d{1,3})\b", raw.split("]", 1)[-1] if "]" in raw else raw):
        number = int(n[0] or n[1])
        pointed += 1
        if 1 <= number <= len(spans):
            s, e = spans[number - 1]
            notes.append(f"[{doc.name} p.{page}] {' '.join(doc.pages[page - 1].text[s:e].split())}")
        else:
            dropped += 1
    return notes, dropped, pointed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--window", type=int, default=1536)
    parser.add_argument("--note-tokens", type=int, default=64)
    parser.add_argument("--styles", default="quote,sentence-start,numbered,free")
    args = parser.parse_args()
    model_path = args.model or bundled_model_path()
    with tempfile.TemporaryDirectory() as home:
        store = open_store(Path(home) / "p.db")
        docs, _ = read_documents([SAMPLE], store=store)
        corpus = Corpus(tuple(docs))
        doc = corpus.documents[0]
        settings = ReadSettings(n_ctx=args.window, max_answer_tokens=args.note_tokens)
        lane = ModelLane(model_path, settings)
        model = lane.ensure(args.window, settings.kv_type)
        print(f"{model_path.name}, window {args.window}, notes <= {args.note_tokens} tokens, 1 page per wave")
        print("| style | found (carried) | in raw notes | notes kept | dropped | pointed | s |")
        print("|---|---|---|---|---|---|---|")
        for style in args.styles.split(","):
            frame = render_frame(model.chat_template, system=SYSTEM, intro=INTRO)
            found = kept = dropped = pointed = raw_hits = 0
            took = 0.0
            misses = []
            for question, page, answer in CASES:
                one = sub_document(doc, page, page)
                text = numbered_layout(one) if style == "numbered" else layout_document(one)
                prompt = build_prompt(model, [model.tokenize_text(text)], f"{question}\n\n{ASK[style]}", frame=frame)
                start = time.perf_counter()
                out = run_step(model, prompt.tokens, max_tokens=args.note_tokens, settings=replace(settings))
                took += time.perf_counter() - start
                if style == "numbered":
                    notes, d, p = ground_numbered(out.text, doc, page)
                else:
                    g = ground_notes(out.text, corpus, {(doc.name, page)})
                    notes, d, p = g.notes, g.dropped, g.pointed
                hit = any(answer in n for n in notes)
                raw_hits += answer in out.text
                found += hit
                kept += len(notes)
                dropped += d
                pointed += p
                if not hit:
                    misses.append(f"  {style} miss {answer!r}: {out.text[:160]!r}")
            n = len(CASES)
            print(
                f"| {style} | {found}/{n} | {raw_hits}/{n} | {kept} | {dropped} | {pointed} | {took:.0f} |", flush=True
            )
            for m in misses:
                print(m, file=sys.stderr)
        lane.close()
        store.close()


if __name__ == "__main__":
    main()
