"""The prompt: instructions, the whole corpus, the question, in the model's chat format.

The token sequence is built from separately tokenized parts, so that the corpus prefix
is byte-for-byte the same for every question about it (prefix reuse) and document text
is never read as control tokens::

    template head (special) | documents (text, one list per document) | memory (text) | question (text) | tail
    \\_____ corpus prefix ______________________________/                 |
    \\_____ corpus + memory prefix: reused by follow-ups ________________/

The memory block (engine/memory.py: earlier sessions' entries, oldest first, dated) sits
after the documents, so the corpus alone is a prefix too: two warm prefixes (engine/warm.py).

The GGUF's chat template is rendered once with sentinel strings in place of the corpus
and the question and split around them. Models without a template get a plain format.
The template is someone else's code: it runs in a bounded sandbox
(``engine.reading.chat_template``), and one that tries to escape it or never ends is
refused with ``ChatTemplateError``.
A template that prints today's date would change the prompt every day and defeat the
cache (docs/architecture.md, "Measured facts"), so ``strftime_now`` returns a fixed date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jinja2

from engine.reading.chat_template import render_chat_template

# "In the language of the question" (issue 18 item 3): Longread's first users ask in
# Russian about documents in Russian or English; the page markers stay as they are.
LANGUAGE_RULE = "Answer in the language the question is written in."
SYSTEM_PROMPT = (
    "You are Longread, a careful reader. Answer the question using only the documents "
    "given. Cite the page for each fact with its marker, for example [report.pdf p.3]. "
    "If the documents do not say, answer that they do not say. " + LANGUAGE_RULE
)
CORPUS_INTRO = "Read these documents. Each page starts with a marker like [name p.N].\n\n"
_CORPUS = "\u2063LONGREAD_CORPUS\u2063"
_QUESTION = "\u2063LONGREAD_QUESTION\u2063"
PLAIN_HEAD = "### Instructions\n" + SYSTEM_PROMPT + "\n\n### Documents\n"
PLAIN_MIDDLE = "\n### Question\n"
PLAIN_TAIL = "\n\n### Answer\n"


def _plain_head(system: str) -> str:
    return "### Instructions\n" + system + "\n\n### Documents\n"


class TokenizerLike(Protocol):
    @property
    def chat_template(self) -> str | None: ...
    def tokenize_text(self, text: str) -> list[int]: ...
    def tokenize_template(self, text: str, *, add_bos: bool = False) -> list[int]: ...


@dataclass(frozen=True)
class Prompt:
    """A prompt as tokens, with where its reusable corpus prefix ends."""

    tokens: list[int]
    corpus_end: int  # the end of the reusable prefix: the corpus and the memory block
    corpus_tokens: int  # the documents alone
    question_tokens: int
    memory_start: int = -1  # where the memory block starts (the corpus's own end); -1: corpus_end
    memory_ids: tuple[int, ...] = ()  # the memory entries laid in, oldest first
    #: Where each document's tokens lie in ``tokens``: (start, end), in reading order.
    document_spans: tuple[tuple[int, int], ...] = ()

    @property
    def corpus_only_end(self) -> int:
        """The end of the documents (the first warm prefix)."""
        return self.corpus_end if self.memory_start < 0 else self.memory_start

    @property
    def memory_tokens(self) -> int:
        """The memory block's tokens (0: none)."""
        return self.corpus_end - self.corpus_only_end

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class PromptFrame:
    """The fixed parts around the corpus and the question."""

    head: str
    middle: str
    tail: str
    templated: bool


def render_frame(chat_template: str | None, *, system: str = SYSTEM_PROMPT, intro: str = CORPUS_INTRO) -> PromptFrame:
    """Split the chat format into the text before the corpus, between corpus and
    question, and after the question.

    ``system`` and ``intro`` replace the instructions and the line before the corpus
    (waves and deep thinking use their own, engine/reading/waves.py and deep.py).

    Raises:
        ChatTemplateError: the template tried to escape its sandbox or did not finish
            within its bounds (``engine.reading.chat_template``).
    """
    plain = PromptFrame(_plain_head(system), PLAIN_MIDDLE, PLAIN_TAIL, templated=False)
    if not chat_template:
        return plain

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    functions = {"raise_exception": raise_exception, "strftime_now": lambda fmt: "01 Jan 2025"}
    extra = {"add_generation_prompt": True, "bos_token": "", "eos_token": ""}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": intro + _CORPUS + "\nQuestion: " + _QUESTION},
    ]
    try:
        rendered = render_chat_template(chat_template, {"messages": messages, **extra}, functions=functions)
    except jinja2.TemplateError:
        # Templates that refuse a system role (Gemma's older ones) get it inline.
        messages = [{"role": "user", "content": system + "\n\n" + messages[1]["content"]}]
        try:
            rendered = render_chat_template(chat_template, {"messages": messages, **extra}, functions=functions)
        except jinja2.TemplateError:
            return plain
    if rendered.count(_CORPUS) != 1 or rendered.count(_QUESTION) != 1:
        return plain
    head, rest = rendered.split(_CORPUS)
    middle, tail = rest.split(_QUESTION)
    return PromptFrame(head, middle, tail, templated=True)


def build_prompt(
    tokenizer: TokenizerLike,
    document_tokens: Sequence[Sequence[int]],
    question: str,
    *,
    frame: PromptFrame | None = None,
    memory: Sequence[Sequence[int]] = (),
    memory_ids: Sequence[int] = (),
) -> Prompt:
    """Assemble the prompt tokens from per-document token lists and a question.

    Args:
        tokenizer: the model's tokenizer.
        document_tokens: each document's layout, tokenized as text, in reading order.
        question: the user's question (text, never special tokens).
        frame: a pre-rendered frame (default: rendered from the tokenizer's template).
        memory: the memory block's parts, tokenized as text (``MemoryLayout.tokens``).
        memory_ids: the entries those parts hold (``MemoryLayout.ids``).
    """
    frame = frame or render_frame(tokenizer.chat_template)
    head = tokenizer.tokenize_template(frame.head, add_bos=True)
    if frame.templated:
        middle = tokenizer.tokenize_template(frame.middle)
        tail = tokenizer.tokenize_template(frame.tail)
    else:
        middle = tokenizer.tokenize_text(frame.middle)
        tail = tokenizer.tokenize_text(frame.tail)
    tokens = list(head)
    spans = []
    for doc in document_tokens:
        spans.append((len(tokens), len(tokens) + len(doc)))
        tokens.extend(doc)
    memory_start = len(tokens)
    for part in memory:
        tokens.extend(part)
    corpus_end = len(tokens)
    question_part = tokenizer.tokenize_text(question.strip())
    tokens.extend(middle)
    tokens.extend(question_part)
    tokens.extend(tail)
    return Prompt(
        tokens=tokens,
        corpus_end=corpus_end,
        corpus_tokens=memory_start - len(head),
        question_tokens=len(tokens) - corpus_end,
        memory_start=memory_start,
        memory_ids=tuple(memory_ids) if memory else (),
        document_spans=tuple(spans),
    )
