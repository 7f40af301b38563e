"""The line under an answer says when the corpus was assembled from document snapshots (issue 17)."""

from __future__ import annotations

from app.views.conversation import describe_ask
from engine.reading.ask import AskResult, Budget
from engine.runtime.backend import PrefillStats
from engine.warm import WarmStart


def test_an_assembled_corpus_says_how_many_documents_how_long_and_instead_of_what() -> None:
    warm = WarmStart(
        source="composed", corpus_tokens=30_000, restore_s=0.9, cold_prefill_s=540.0, documents=10, reread_tokens=2_400
    )
    result = AskResult(
        session_id=1,
        run_id=1,
        answer="It is 42.",
        citations=[],
        budget=Budget(30_000, 30_020, 64, 32_768, 32_768),
        prefill=PrefillStats(evaluated=2_420, reused=27_600, seconds=0.95),
        answer_tokens=5,
        generate_s=0.4,
        warm=warm,
    )
    line = describe_ask(result)
    assert line.startswith(
        "assembled from 10 documents' snapshots in 0.9 s (2,400 tokens read again) instead of about 9 min"
    ), line
    assert "answered 5 tokens" in line
