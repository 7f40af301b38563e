"""Every order of three documents, every planted fact asked, cold and composed: how
decided each cold answer is, and whether the composition answers as the cold read does
(issue 17; docs/compose.md, 2026-12-04 (later)).

Run (SmolLM2, about 3 min each on the shared 2-core machine)::

    .venv/bin/python benchmarks/compose_orders.py            # the test's documents
    .venv/bin/python benchmarks/compose_orders.py --distinct # three with words of their own

The three documents of tests/engine/test_compose_real.py (the same filler around one
planted sentence each; ``--distinct``: each about its own subject) are read cold in one
order and their snapshots saved. Then, for each of the six orders and each of the three
questions: the cold read's greedy answer, its margin (``benchmarks.compose.answer_margin``:
the least lead of the top token over the next at each answer token up to the code), and
the composition's answer for each selection in ``--variants`` (``k16``: the product's
composition; ``k0``, ``k64``: other k; ``nofr``: without fact runs; ``wholeN``: the N-th
document read whole as well; ``lastN``: each document's last N tokens as well).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.compose import DECIDED_LOGITS, answer_margin, found_answer, prompt_for, ungated  # noqa: E402
from engine.compose import FACT_RUN, Composer  # noqa: E402
from engine.corpus import Document, make_pages  # noqa: E402
from engine.models.bundled import bundled_model_path, model_sha256  # noqa: E402
from engine.reading.prompts import Prompt  # noqa: E402
from engine.runtime.backend import LoadSettings  # noqa: E402
from engine.runtime.llama import load_model  # noqa: E402
from engine.store import open_store  # noqa: E402
from engine.warm import SnapshotCache  # noqa: E402

FILLER = (
    "The harbor office checks the mooring lines every morning, logs the tides and the weather, "
    "and files the reports with the port authority before noon. "
)
BODY = {
    "tides.txt": "The harbor office reads the tide gauge at the north pier every hour and logs high and low "
    "water. Spring tides flood the lower quay twice a month, and the office posts the tables at the gate. "
    "Surveyors compare the readings with the charts each season and correct the datum when it drifts. ",
    "cranes.txt": "The container terminal runs four gantry cranes on the east berth, each rated for forty "
    "tonnes. Inspectors test the brakes, the hoist ropes and the wind alarms before every shift change. "
    "A crane that fails a test is tagged out of service until the engineer signs the repair sheet. ",
    "ferries.txt": "Two passenger ferries cross to the island every day, the first at six and the last at "
    "nine. The operator keeps life jackets for every seat and runs a muster drill with the crew each week. "
    "Tickets are sold at the kiosk by the slipway, and season passes are issued by the town hall. ",
}
FACTS = {
    "tides.txt": ("The tide gauge serial number is 731904.", "What is the tide gauge serial number?", "731904"),
    "cranes.txt": ("The crane inspection code is 562817.", "What is the crane inspection code?", "562817"),
    "ferries.txt": ("The ferry license number is 948361.", "What is the ferry license number?", "948361"),
}


def documents(distinct: bool) -> list[tuple[Document, str, str]]:
    out = []
    for name, (fact, _, code) in FACTS.items():
        body = BODY[name] if distinct else FILLER * 3
        text = f"Report on {name[:-4]}. {body}{fact} {body}"
        out.append((Document(sha256=name, name=name, kind="txt", pages=make_pages([text])), name, code))
    return out


def selection(variant: str, prompt: Prompt) -> tuple[int, int, list[tuple[int, int]]]:
    """(k, fact run, more spans) of a ``--variants`` name such as ``k16+whole0``."""
    k, fact_run, also = 16, FACT_RUN, []
    spans = prompt.document_spans
    for part in variant.split("+"):
        if part.startswith("k"):
            k = int(part[1:])
        elif part == "nofr":
            fact_run = 0
        elif part.startswith("whole"):
            also.append(spans[int(part[5:])])
        elif part.startswith("last"):
            also += [(max(a, b - int(part[4:])), b) for a, b in spans]
        else:
            raise SystemExit(f"unknown variant part {part!r}")
    return k, fact_run, also


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distinct", action="store_true", help="documents with words of their own")
    parser.add_argument("--variants", default="k16", help="comma-separated selections (see the module doc)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    variants = args.variants.split(",")
    path = bundled_model_path()
    sha = model_sha256(path)
    model = load_model(path, LoadSettings(n_ctx=2048, n_threads=args.threads))
    first = documents(args.distinct)
    agree = {v: [0, 0, 0, 0] for v in variants}  # decided same, decided, undecided same, undecided
    found = {v: 0 for v in variants}
    cold_found = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "orders.db")
        cache = SnapshotCache(store, Path(tmp) / "snapshots")
        saved = prompt_for(model, first, "What is this?")
        model.clear()
        model.prefill(saved.tokens[: saved.corpus_end])
        Composer(cache, model_sha256=sha, model_name=path.name, swa_full=False).save_documents(model, saved)
        for order in itertools.permutations(first):
            for _, name, code in order:
                prompt = prompt_for(model, list(order), FACTS[name][1])
                model.clear()
                cold = code in found_answer(model, prompt)
                margin = answer_margin(model, prompt, code)
                cold_found += cold
                line = f"{'/'.join(n[:-4] for _, n, _ in order):20} {name:12} cold {'Y' if cold else 'n'} {margin:5.2f}"
                for variant in variants:
                    k, fact_run, also = selection(variant, prompt)
                    model.clear()
                    ungated(cache, sha, path.name, k=k, fact_run=fact_run).compose(model, prompt, also=also)
                    answer = found_answer(model, prompt)
                    got = code in answer
                    found[variant] += got
                    tally = agree[variant]
                    side = 0 if margin >= DECIDED_LOGITS else 2
                    tally[side] += got == cold
                    tally[side + 1] += 1
                    line += f" | {variant} {'Y' if got else 'n'}" + ("" if got == cold else f" {answer[:36]!r}")
                print(line, flush=True)
    print(f"\ncold found {cold_found}/18; decided: the cold answer led by >= {DECIDED_LOGITS} at every token")
    for v in variants:
        same, decided, usame, undecided = agree[v]
        print(f"{v}: found {found[v]}/18; as cold: decided {same}/{decided}, undecided {usame}/{undecided}")
    model.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
