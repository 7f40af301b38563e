"""m004: full-text search over sessions' questions and answers, and trash with undo.

Uses a real SQLite file (the ``store`` fixture) and stores runs the way ``Reader.ask``
does: question first, answer saved as it streams, then finished.
"""

from __future__ import annotations

from engine.store import Store


def _session(store: Store, title: str, question: str, answer: str) -> int:
    session_id = store.create_session(title=title, corpus_id=None)
    run_id = store.create_run(
        session_id, kind="ask", question=question, model="m.gguf", settings={}, steps=[{"kind": "answer"}]
    )
    store.save_step_text(run_id, 1, answer[:5])
    store.update_step(run_id, 1, status="done", text=answer)
    store.update_run(run_id, status="done", answer=answer)
    return session_id


def test_search_finds_words_in_questions_answers_and_titles(store: Store) -> None:
    lease = _session(store, "Roof leak", "Who repaired the roof?", "Harbor Point paid for emergency repairs.")
    deposit = _session(store, "Deposit", "Was the security deposit returned?", "No, it was withheld.")

    assert [s.id for s in store.search_sessions("emergency")] == [lease]
    assert [s.id for s in store.search_sessions("secur")] == [deposit]  # prefix match
    assert [s.id for s in store.search_sessions("roof")] == [lease]  # title and question
    assert store.search_sessions("roof withheld") == []  # every word must match
    assert store.search_sessions('"unbalanced') == []  # quotes in user text are not syntax
    assert [s.id for s in store.search_sessions("  ")] == [deposit, lease]


def test_search_sees_the_final_answer_not_the_partial_one(store: Store) -> None:
    session_id = _session(store, "t", "q", "arbitrator awarded damages")
    assert [s.id for s in store.search_sessions("awarded")] == [session_id]
    assert store.search_sessions("arbit")[0].id == session_id


def test_trash_restore_and_purge(store: Store) -> None:
    keep = _session(store, "keep", "q1", "alpha")
    gone = _session(store, "gone", "q2", "alpha")
    store.trash_session(gone)
    assert [s.id for s in store.list_sessions()] == [keep]
    assert [s.id for s in store.search_sessions("alpha")] == [keep]
    trashed = store.get_session(gone)
    assert trashed is not None and trashed.deleted_at is not None

    store.restore_session(gone)
    assert {s.id for s in store.list_sessions()} == {keep, gone}
    assert store.list_runs(gone)[0].answer == "alpha"

    store.trash_session(gone)
    assert store.purge_trashed_sessions() == 1
    assert store.get_session(gone) is None
    assert store.list_runs(gone) == []
    assert [s.id for s in store.search_sessions("alpha")] == [keep]


def test_percent_and_underscore_in_a_search_match_themselves(store: Store) -> None:
    sure = _session(store, "100% sure", "What?", "Nothing.")
    _session(store, "100 percent", "What?", "Nothing.")
    underscored = _session(store, "a_b", "What?", "Nothing.")
    _session(store, "axb", "What?", "Nothing.")
    backslash = _session(store, "C:\\temp", "What?", "Nothing.")
    _session(store, "C:temp", "What?", "Nothing.")

    assert [s.id for s in store.search_sessions("100%")] == [sure]
    assert [s.id for s in store.search_sessions("a_b")] == [underscored]
    assert [s.id for s in store.search_sessions("C:\\temp")] == [backslash]
