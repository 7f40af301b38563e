"""Token counts: the offline tiktoken estimate and the model's exact count."""

from __future__ import annotations

from pathlib import Path

from engine.corpus import Corpus, Document, layout_document, make_pages
from engine.ingest.text import extract_text_pages
from engine.runtime.llama import load_tokenizer
from engine.tokens import estimate_corpus_tokens, estimate_tokens

SAMPLE = Path(__file__).parents[2] / "resources" / "sample" / "harbor-lease-dispute.md"


def test_estimate_works_offline_and_counts_special_looking_text_as_text() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello world") == 2
    # A document may contain tiktoken's own special strings: they are counted as text.
    assert estimate_tokens("<|endoftext|>") > 1


def test_estimate_is_close_to_the_exact_count(smollm2_path: Path) -> None:
    pages, _ = extract_text_pages(SAMPLE.read_bytes(), name=SAMPLE.name)
    doc = Document("s", SAMPLE.name, "markdown", make_pages(pages))
    tokenizer = load_tokenizer(smollm2_path)
    exact = len(tokenizer.tokenize_text(layout_document(doc)))
    tokenizer.close()
    estimate = estimate_corpus_tokens(Corpus((doc,)))
    assert 0.7 * exact <= estimate <= 1.3 * exact, (estimate, exact)
