"""A session as Markdown: its questions and answers, deep-thinking steps and waves.

``export_markdown`` renders everything a session holds, in the order it happened, with
each step's numbers (tokens, seconds) and every citation re-checked against the stored
pages: a citation that fails is flagged in the text (``flag_citations``), as in the CLI
and the GUI.
"""

from __future__ import annotations

from engine.corpus import Corpus
from engine.errors import EngineError
from engine.reading.citations import check_citations, flag_citations
from engine.reading.deep import list_deep
from engine.reading.waves import list_reads
from engine.store import Store


def _checked(text: str, corpus: Corpus | None) -> str:
    if corpus is None or not text:
        return text
    return flag_citations(text, check_citations(text, corpus))


def _status(status: str) -> str:
    return "" if status == "done" else f" *({status})*"


def _numbers(prompt: int | None, prefill: int | None, out: int | None, prefill_s: float | None, gen_s: float | None) -> str:
    if prefill is None:
        return ""
    return (
        f"*{prompt or 0:,} prompt tokens, {prefill:,} read in {prefill_s or 0:.1f} s; "
        f"{out or 0:,} written in {gen_s or 0:.1f} s*"
    )


def export_markdown(store: Store, session_id: int) -> str:
    """Render session ``session_id`` as Markdown.

    Raises:
        EngineError: there is no such session.
    """
    session = store.get_session(session_id)
    if session is None:
        raise EngineError(f"There is no session {session_id}. `longread sessions` lists them.")
    corpus = store.get_corpus(session.corpus_id) if session.corpus_id else None
    out = [f"# {session.title}", ""]
    out.append(f"Session {session.id} ({session.kind}), started {session.created_at}, last used {session.updated_at}.")
    if corpus is not None:
        out.append("")
        out.append("Documents: " + ", ".join(f"{d.name} ({d.n_pages} p.)" for d in corpus.documents))
    for turn in store.list_turns(session_id):
        out += ["", f"## Q{turn.position}: {turn.question}", "", _checked(turn.answer, corpus) + _status(turn.status)]
    for deep in list_deep(store, session_id):
        out += ["", f"## Deep thinking: {deep.question}{_status(deep.status)}", ""]
        out.append(f"{deep.model}, window {deep.settings.get('n_ctx')}, KV {deep.settings.get('kv_type')}.")
        for step in deep.steps:
            out += ["", f"### {step.position}. {step.heading}{_status(step.status)}", ""]
            if step.text:
                out.append(_checked(step.text, corpus))
            numbers = _numbers(step.prompt_tokens, step.prefill_tokens, step.output_tokens, step.prefill_s, step.generate_s)
            if numbers and step.status == "done":
                out += ["", numbers]
    for read in list_reads(store, session_id):
        out += ["", f"## Read in waves: {read.question}{_status(read.status)}", ""]
        out.append(
            f"{read.model}, window {read.settings.get('n_ctx')}, KV {read.settings.get('kv_type')}; "
            f"{read.done_waves} of {read.n_waves} waves read."
        )
        for wave in read.waves:
            out += ["", f"### Wave {wave.position} of {read.n_waves}: {wave.pages}{_status(wave.status)}", ""]
            if wave.notes:
                out.append(_checked(wave.notes, corpus))
            numbers = _numbers(wave.prompt_tokens, wave.prefill_tokens, wave.note_tokens, wave.prefill_s, wave.generate_s)
            if numbers and wave.status == "done":
                out += ["", numbers]
        if read.answer:
            out += ["", "### Answer", "", _checked(read.answer, corpus)]
    return "\n".join(out).rstrip() + "\n"
