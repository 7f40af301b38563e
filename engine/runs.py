"""The run model: every way of reading is a run of ordered, stored steps.

An ask is a run of one ``answer`` step; deep thinking a run of five (plan, examine,
hypotheses, critique, answer); a read in waves a run of one ``wave`` step per wave and a
final ``answer``. One ``Status`` vocabulary for runs and steps (as Celery's task states
are one enum every worker and reader agree on), one mapping from an exception to a status
(``status_for``), one orphan sweep (the store's, at open), one resume path (run the steps
not ``done``), one export.

Lifecycle of a step: ``pending`` -> ``running`` (with the pid and start time of the
process running it) -> ``done``; or ``cancelled`` (the user), ``failed`` (an
``EngineError``: the message is kept) or ``interrupted`` (anything else, or the process
died: the store's sweep finds a ``running`` row whose process is gone). A run's status is
its latest step's. Only ``done`` steps are never run again.

Qt-free; these are plain values read from and written to the store (engine/store/db.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.errors import Cancelled, EngineError, ServerLost
from engine.reading.citations import Citation, citations_from_json


class Status(StrEnum):
    """Where a run or a step is. Stored as its value."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Done for good: never run again."""
        return self is Status.DONE


class RunKind(StrEnum):
    """The ways of reading."""

    ASK = "ask"
    THINK = "think"
    WAVES = "waves"

    @property
    def label(self) -> str:
        """How a person names it: ``Asked``, ``Thought deeply``, ``Read in waves``."""
        return {"ask": "Asked", "think": "Thought deeply", "waves": "Read in waves"}[self.value]

    @property
    def what(self) -> str:
        """A noun phrase for messages: ``question``, ``deep-thinking run``, ``read in waves``."""
        return {"ask": "question", "think": "deep-thinking run", "waves": "read in waves"}[self.value]


def status_for(exc: BaseException) -> tuple[Status, str | None]:
    """The one mapping from what stopped a step to the status it is stored with.

    Returns:
        the status, and the message to keep (an ``EngineError``'s, else None).
    """
    if isinstance(exc, Cancelled):
        return Status.CANCELLED, None
    if isinstance(exc, ServerLost):  # the server died, not the request: as if this process had
        return Status.INTERRUPTED, exc.message
    if isinstance(exc, EngineError):
        return Status.FAILED, exc.message
    return Status.INTERRUPTED, None


# Step kinds of deep thinking, in order, with their headings (engine/reading/deep.py
# holds their instructions).
STEP_HEADINGS = {
    "plan": "Plan",
    "examine": "Examination",
    "hypotheses": "Hypotheses",
    "critique": "Critique",
    "answer": "Answer",
    "wave": "Wave",
}


@dataclass(frozen=True)
class Step:
    """One step of a run, as stored."""

    run_id: int
    position: int  # 1-based
    kind: str  # answer; plan/examine/hypotheses/critique; wave
    status: Status
    label: str = ""  # a wave's pages, "filing.pdf p.1-12"
    detail: dict[str, Any] = field(default_factory=dict)  # a wave's segments and planned tokens
    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    prompt_tokens: int | None = None
    prefill_tokens: int | None = None
    reused_tokens: int | None = None
    output_tokens: int | None = None
    prefill_s: float | None = None
    generate_s: float | None = None
    error: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def heading(self) -> str:
        """``Examination``, ``Wave 3``, ``Answer``."""
        if self.kind == "wave":
            return f"Wave {self.position}"
        return STEP_HEADINGS.get(self.kind, self.kind.title())

    @property
    def done(self) -> bool:
        return self.status is Status.DONE

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Step:
        fields = dict(row)
        fields["status"] = Status(fields["status"])
        fields["detail"] = json.loads(fields.get("detail") or "{}")
        fields["citations"] = citations_from_json(fields.get("citations") or "[]")
        return cls(**fields)


@dataclass(frozen=True)
class Run:
    """One question asked of a session's corpus, with its steps in order."""

    id: int
    session_id: int
    kind: RunKind
    question: str
    status: Status
    steps: list[Step]
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    plan: list[Any] = field(default_factory=list)
    answer: str = ""
    citations: list[Citation] = field(default_factory=list)
    error: str | None = None
    corpus_tokens: int | None = None
    pid: int | None = None
    pid_started: float | None = None
    created_at: str = ""
    updated_at: str = ""
    finished_at: str | None = None

    @classmethod
    def from_rows(cls, row: dict[str, Any], steps: list[dict[str, Any]]) -> Run:
        fields = dict(row)
        fields["kind"] = RunKind(fields["kind"])
        fields["status"] = Status(fields["status"])
        fields["settings"] = json.loads(fields.get("settings") or "{}")
        fields["plan"] = json.loads(fields.get("plan") or "[]")
        fields["citations"] = citations_from_json(fields.get("citations") or "[]")
        return cls(steps=[Step.from_row(s) for s in steps], **fields)

    @property
    def done_steps(self) -> int:
        return sum(1 for s in self.steps if s.done)

    @property
    def answer_step(self) -> Step | None:
        """The final ``answer`` step (every kind of run ends with one)."""
        return next((s for s in reversed(self.steps) if s.kind == "answer"), None)

    @property
    def waves(self) -> list[Step]:
        """A read in waves' wave steps (empty for other kinds)."""
        return [s for s in self.steps if s.kind == "wave"]

    def progress(self) -> str:
        """``2 of 5 steps`` / ``1 of 4 waves``: how far a stopped run got."""
        if self.kind is RunKind.WAVES:
            waves = self.waves
            return f"{sum(1 for w in waves if w.done)} of {len(waves)} waves"
        return f"{self.done_steps} of {len(self.steps)} step{'s' if len(self.steps) != 1 else ''}"

    def describe_stop(self) -> str:
        """``Stopped after 2 of 5 steps (cancelled).``: a run that did not finish."""
        return f"Stopped after {self.progress()} ({self.status.value})."
