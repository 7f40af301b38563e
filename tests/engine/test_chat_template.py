"""Hostile chat templates: a GGUF's template that tries to escape the sandbox, or never
ends, is refused with a plain ``ChatTemplateError`` and does not hang the reader.

Each render runs in a thread joined for 30 s: without the bounds these templates run for
minutes (or exhaust memory), so a refusal that merely arrives is the point, not its speed.
"""

from __future__ import annotations

import threading

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import ChatTemplateError, ModelError
from engine.reading import chat_template
from engine.reading.prompts import PromptFrame, render_frame

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

ESCAPES = {
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals": "{{ cycler.__init__.__globals__.os.system('true') }}",
    "quiet": "{% if ''.__class__ %}{% endif %}" + CHATML,  # the sandbox alone would go on
    "format": "{{ '{0.__class__.__base__}'.format('') }}",
    "item": "{{ joiner['__init__'] }}",
}

ENDLESS = {
    "nested loops": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
        "{% endfor %}{% endfor %}{% endfor %}" + CHATML
    ),
    "exponential recursion": (
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(80) }}" + CHATML
    ),
    "endless recursion": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}" + CHATML,
    "recursive loop": "{% for m in [[1, 2]] * 3 recursive %}{{ loop([m, m]) }}{% endfor %}" + CHATML,
    "doubling": (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
        "{{ ns.s }}" + CHATML
    ),
    "repeat": "{{ 'x' * 10 ** 10 }}" + CHATML,
    "power": "{{ 9 ** 999999999 }}" + CHATML,  # jinja2 reads a ** b ** c as (a ** b) ** c
    "filter": "{{ range(1000)|slice(999999)|list|length }}" + CHATML,
    "width": "{{ ''|center(2000000000) }}" + CHATML,
    "lipsum": "{{ lipsum(10000000) }}" + CHATML,
    # Few steps, each slow (a join of 100,000 numbers): the time budget stops it.
    "slow steps": "{% for i in range(90000) %}{{ range(100000)|join|length }}{% endfor %}" + CHATML,
}


def _render_in_thread(template: str) -> BaseException | PromptFrame:
    outcome: list[BaseException | PromptFrame] = []

    def run() -> None:
        try:
            outcome.append(render_frame(template))
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the template is still running after 30 s: it was not refused"
    return outcome[0]


def test_templates_run_in_the_immutable_sandbox() -> None:
    assert issubclass(chat_template._BoundedSandbox, ImmutableSandboxedEnvironment)


def test_an_ordinary_template_still_renders() -> None:
    frame = render_frame(CHATML)
    assert frame.templated
    assert frame.head.startswith("<|im_start|>system\n")
    assert frame.tail == "<|im_end|>\n<|im_start|>assistant\n"


def test_a_template_that_mutates_a_list_falls_back_to_the_plain_format() -> None:
    # Not an escape: the sandbox refuses the call and the plain format is used, as before.
    frame = render_frame("{% set _ = messages.append(1) %}" + CHATML)
    assert not frame.templated


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_a_sandbox_escape_is_refused(name: str) -> None:
    outcome = _render_in_thread(ESCAPES[name])
    assert isinstance(outcome, ChatTemplateError), outcome
    assert isinstance(outcome, ModelError)
    message = str(outcome)
    assert message.startswith("This model's chat template tries to reach Python's internals")
    assert "Longread will not run it" in message


@pytest.mark.parametrize("name", sorted(ENDLESS))
def test_a_template_that_does_not_end_is_refused(name: str) -> None:
    outcome = _render_in_thread(ENDLESS[name])
    assert isinstance(outcome, ChatTemplateError), outcome
    message = str(outcome)
    assert message.startswith("This model's chat template ")
    assert "Longread will not run it" in message
