"""A session as Markdown: its questions and answers, deep-thinking steps and waves.

``export_markdown`` renders every run a session holds (engine/runs.py), in the order they
were asked, with
each step's numbers (tokens, seconds) and every citation and fact re-checked against the
stored pages (engine/reading/facts.py): a citation that fails, or a number, date, code or
quotation on no page, is flagged in the text (``flag_answer``), and an answer's problems
are listed under it, as in the CLI and the GUI. An answer that cites nothing is marked
unverified. The memory this session's documents carry (engine/memory.py: the entries
tied to them and the pinned ones, oldest first, dated) closes the export; a forgotten
entry is in no later export.
"""

from __future__ import annotations

from engine.corpus import Corpus
from engine.errors import NoSuchSession
from engine.memory import MemoryBook
from engine.reading.facts import check_answer, flag_answer
from engine.reading.notes import quoted_line
from engine.runs import RunKind, Status
from engine.store import Store


def _checked(text: str, corpus: Corpus | None, *, question: str, final: bool) -> str:
    """``text`` flagged; an answer (``final``) with its problems listed under it."""
    if corpus is None or not text:
        return text
    check = check_answer(text, corpus, question=question)
    flagged = flag_answer(text, check, final=final)
    problems = check.problems(final=final) if final else []
    return flagged + "".join(f"\n\n> \u26a0 {line}" for line in problems)


def _status(status: Status) -> str:
    return "" if status is Status.DONE else f" *({status.value})*"


def _numbers(
    prompt: int | None, prefill: int | None, out: int | None, prefill_s: float | None, gen_s: float | None
) -> str:
    if prefill is None:
        return ""
    return (
        f"*{prompt or 0:,} prompt tokens, {prefill:,} read in {prefill_s or 0:.1f} s; "
        f"{out or 0:,} written in {gen_s or 0:.1f} s*"
    )


def export_markdown(store: Store, session_id: int) -> str:
    """Render session ``session_id`` as Markdown: its runs in the order they were asked.

    Raises:
        EngineError: there is no such session.
    """
    session = store.get_session(session_id)
    if session is None:
        raise NoSuchSession(session_id)
    corpus = store.get_corpus(session.corpus_id) if session.corpus_id else None
    out = [f"# {session.title}", ""]
    out.append(f"Session {session.id} ({session.kind}), started {session.created_at}, last used {session.updated_at}.")
    if corpus is not None:
        out.append("")
        out.append("Documents: " + ", ".join(f"{d.name} ({d.n_pages} p.)" for d in corpus.documents))
    asked = 0
    for run in store.list_runs(session_id):
        if run.kind is RunKind.ASK:
            asked += 1
            text = run.answer or (run.answer_step.text if run.answer_step else "")
            checked = _checked(text, corpus, question=run.question, final=run.status is Status.DONE)
            out += ["", f"## Q{asked}: {run.question}", "", checked + _status(run.status)]
            continue
        out += ["", f"## {'Deep thinking' if run.kind is RunKind.THINK else 'Read in waves'}: {run.question}"]
        out[-1] += _status(run.status)
        out += [""]
        line = f"{run.model}, window {run.settings.get('n_ctx')}, KV {run.settings.get('kv_type')}"
        out.append(line + (f"; {run.progress()} read." if run.kind is RunKind.WAVES else "."))
        n_waves = len(run.waves)
        for step in run.steps:
            if run.kind is RunKind.WAVES and step.kind == "answer":
                if step.text:
                    out += ["", "### Answer", ""]
                    looked = step.detail.get("looked_up")
                    if looked:  # look before answering (issue 13 item 2)
                        by = {"model": "named by the model", "notes": "the pages of the notes"}.get(
                            str(step.detail.get("lookup_by")), ""
                        )
                        out += [f"*Read again in full before answering: {', '.join(looked)} ({by}).*", ""]
                    if quoted := quoted_line(step.detail, run.question):
                        out += [f"*{quoted}*", ""]
                    out.append(_checked(step.text, corpus, question=run.question, final=step.done))
                continue
            if step.kind == "wave":
                head = f"### Wave {step.position} of {n_waves}: {step.label}"
            else:
                head = f"### {step.position}. {step.heading}"
            out += ["", head + _status(step.status), ""]
            dropped = int(step.detail.get("dropped_notes", 0)) if step.kind == "wave" else 0
            if dropped:
                out += [
                    f"*{dropped} note{'s' if dropped != 1 else ''} dropped: not found on {'their' if dropped != 1 else 'its'} page.*",
                    "",
                ]
            if step.text:
                final = step.kind == "answer" and step.done
                out.append(_checked(step.text, corpus, question=run.question, final=final))
            numbers = _numbers(
                step.prompt_tokens, step.prefill_tokens, step.output_tokens, step.prefill_s, step.generate_s
            )
            if numbers and step.done:
                out += ["", numbers]
    out += _memory_section(store, corpus)
    return "\n".join(out).rstrip() + "\n"


def _memory_section(store: Store, corpus: Corpus | None) -> list[str]:
    """``## Memory``: what a question about these documents carries from earlier sessions."""
    entries = MemoryBook(store).entries(documents=[d.sha256 for d in corpus.documents] if corpus else [])
    if not entries:
        return []
    out = ["", "## Memory", "", "What these documents carry from earlier sessions, oldest first:"]
    for e in entries:
        pin = " (pinned)" if e.pinned else ""
        if e.source == "user":
            out += ["", f"- {e.date}{pin}, your note: {e.answer.strip()}"]
        else:
            out += ["", f"- {e.date}{pin}, asked: {e.question.strip()}", f"  Answer: {e.answer.strip()}"]
    return out
