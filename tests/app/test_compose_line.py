"""The line under an answer says when the corpus was assembled from document snapshots (issue 17)."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QUrl

from app.views.conversation import describe_ask
from engine.reading.ask import AskResult, Budget
from engine.runtime.backend import PrefillStats
from engine.warm import WarmStart
from tests.conftest import text_pages_file

QUESTION = "What is the code of b?"


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


def test_an_assembled_answer_offers_to_read_the_documents_fresh_and_ask_again(
    qtbot, make_window, fake_backend, tmp_path: Path, monkeypatch
) -> None:
    """Reorder the documents in the window: the answer says it was assembled from their
    snapshots and links "Read the documents fresh and ask again", which asks the same
    question over a cold read (a new turn, no link under it)."""
    fake_backend.logits_window = 16  # the fake's next token sees what a real model's mostly does
    monkeypatch.setattr("engine.compose.GATE_NATS", 0.0)  # and no more (tests/engine/test_compose.py)
    filler = "The harbor office checks the mooring lines every morning and logs the tides. "
    paths = [
        text_pages_file(
            tmp_path / f"{name}.txt", [f"{name} page 1. The code of {name} is {100000 + i}. " + filler * 20]
        )
        for i, name in enumerate(("a", "b", "c"))
    ]
    window = make_window()
    window.add_paths(paths)
    panel = window.corpus_panel
    qtbot.waitUntil(lambda: len(panel.rows) == 3 and not panel.reading, timeout=60000)
    qtbot.waitUntil(lambda: all(r.tokens for r in panel.rows) and window.gauge.measure is not None, timeout=60000)
    view = window.conversation
    with qtbot.waitSignal(window.answered, timeout=60000) as first:
        window.ask(QUESTION)
    assert first.args[0].warm.source == "prefill" and not view.turns[-1].assembled

    panel.tree.topLevelItem(2).setSelected(True)
    panel.move_selected(-2)
    assert [d.name for d in panel.corpus().documents] == ["c.txt", "b.txt", "a.txt"]  # swapped
    with qtbot.waitSignal(window.answered, timeout=60000) as second:
        window.ask(QUESTION)
    assert second.args[0].warm.source == "composed"
    assert view.turns[-1].assembled and "assembled from 3 documents' snapshots" in view.turns[-1].note
    qtbot.waitUntil(lambda: "Read the documents fresh and ask again" in view.transcript.toPlainText())
    turn = len(view.turns) - 1  # a changed corpus is a new session: its first turn
    assert re.findall(r"href=\"(fresh:[^\"]*)\"", view.rendered_html()) == [f"fresh:{turn}"]
    with qtbot.waitSignal(window.answered, timeout=60000) as follow_up:  # the assembled documents kept
        window.ask(QUESTION)
    assert follow_up.args[0].warm.source == "context" and view.turns[-1].assembled
    assert view.turns[-1].note.startswith("the documents were already assembled from their snapshots")
    assert re.findall(r"href=\"(fresh:[^\"]*)\"", view.rendered_html()) == [f"fresh:{turn}", f"fresh:{turn + 1}"]

    with qtbot.waitSignal(window.answered, timeout=60000) as third:
        view.transcript.anchorClicked.emit(QUrl(f"fresh:{turn}"))
    fresh = third.args[0]
    assert fresh.warm.source == "prefill" and fresh.warm.saved  # read as a cold read does, and kept
    assert [t.question for t in view.turns[turn:]] == [QUESTION] * 3 and not view.turns[-1].assembled
    assert fresh.prefill.evaluated >= fresh.budget.corpus_tokens
    assert "Read the documents fresh and ask again" in view.transcript.toPlainText()  # still under the second
