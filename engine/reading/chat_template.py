"""A bounded Jinja sandbox for the chat templates that GGUF files carry.

A GGUF's chat template is code from whoever made the file, run by us. Contract of
``render_chat_template``:

- It runs in jinja2's ``ImmutableSandboxedEnvironment`` (no attribute starting with
  ``_``, no function internals, no mutation of lists and dicts).
- A template that *tries* to reach Python's internals (``''.__class__.__mro__``,
  ``cycler.__init__.__globals__``, the same through ``str.format``) is refused with
  ``ChatTemplateError`` at the first attempt, even where the sandbox alone would hand it a
  harmless undefined and go on.
- Its work is bounded: at most ``MAX_STEPS`` loop iterations, items from filters that
  produce sequences, and calls all together; no string or list longer than ``MAX_SIZE``
  from ``+``, ``*``, ``~``, a filter or a call, and no int argument that large (widths,
  repeat counts); no power with a result over ``MAX_POWER_BITS`` bits; recursion stops at
  Python's limit; the output stops at ``MAX_SIZE`` characters; and the whole render at
  ``TIME_BUDGET_S`` seconds (checked at every call, attribute, item, loop step and
  filter). Past any bound it raises ``ChatTemplateError``, so a template that would run
  for minutes is refused within a second or so.
- Ordinary failures (a syntax error, the template's own ``raise_exception``) raise
  jinja2's ``TemplateError`` as before: the caller falls back to a plain format.

Real chat templates loop over a handful of messages and render in milliseconds, far below
every bound. Not covered: a single C-level operation given a huge width inside a format
string (``'{:>999999999}'.format(x)``) still builds its result before the size check
refuses it (and a ``MemoryError`` is refused too).
"""

from __future__ import annotations

import functools
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from jinja2 import nodes
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, is_internal_attribute, modifies_known_mutable
from jinja2.visitor import NodeTransformer

from engine.errors import ChatTemplateError

MAX_STEPS = 100_000
MAX_SIZE = 1_000_000
MAX_POWER_BITS = 100_000
TIME_BUDGET_S = 2.0

_STEP_FILTER = "longread_counted"
_SIZE_FILTER = "longread_sized"
_REFUSED = (
    "This model's chat template {what}. Longread will not run it: use another model, or another GGUF "
    "of this model (from its original publisher)."
)


def render_chat_template(
    source: str, context: Mapping[str, Any], *, functions: Mapping[str, Callable[..., Any]] | None = None
) -> str:
    """Render the chat template ``source`` with ``context``, within the bounds above.

    Args:
        source: the Jinja template from the GGUF's ``tokenizer.chat_template``.
        context: its variables (``messages``, ``add_generation_prompt``, ...).
        functions: extra globals the template may call (``raise_exception``, ...).

    Returns:
        the rendered text.

    Raises:
        ChatTemplateError: the template tried to escape the sandbox or went past a bound.
        jinja2.TemplateError: the template does not parse, or refused these messages.
    """
    env = _BoundedSandbox()
    env.globals.update(functions or {})
    try:
        template = env.from_string(source)
        out: list[str] = []
        size = 0
        for piece in template.generate(**context):
            size += len(piece)
            if size > MAX_SIZE:
                raise _over(f"writes more than {MAX_SIZE:,} characters")
            env.tick()
            out.append(piece)
        return "".join(out)
    except RecursionError as exc:
        raise _over("calls itself without end") from exc
    except MemoryError as exc:
        raise _over("needs more memory than any prompt could") from exc


def _over(what: str) -> ChatTemplateError:
    return ChatTemplateError(_REFUSED.format(what=what))


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with a work budget and no second chance for escapes."""

    intercepted_binops = frozenset({"+", "*", "**"})

    def __init__(self) -> None:
        super().__init__(trim_blocks=True, lstrip_blocks=True)
        self.deadline = time.monotonic() + TIME_BUDGET_S
        self.steps = 0
        # lipsum(n=10**7) writes paragraphs in a pure-Python loop; no chat template uses it.
        self.globals.pop("lipsum", None)
        self.filters = {name: self._bounded_filter(f) for name, f in self.filters.items()}
        self.filters[_STEP_FILTER] = self.counted
        self.filters[_SIZE_FILTER] = self.sized

    # -- the budget ----------------------------------------------------------------

    def tick(self, steps: int = 0) -> None:
        """Count ``steps`` and refuse the template once it is past a bound."""
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise _over(f"takes more than {MAX_STEPS:,} steps (it loops without end or nearly so)")
        if time.monotonic() > self.deadline:
            raise _over(f"takes more than {TIME_BUDGET_S:g} seconds (it loops without end or nearly so)")

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Yield from ``iterable``, one step per item (wraps every ``for`` and sequence filter)."""
        for item in iterable:
            self.tick(1)
            yield item

    def sized(self, value: Any) -> Any:
        """Return ``value``, refusing a string or sequence longer than ``MAX_SIZE``."""
        if isinstance(value, str | bytes | list | tuple | dict | set) and len(value) > MAX_SIZE:
            raise _over(f"builds a string or list longer than {MAX_SIZE:,}")
        return value

    def _check_args(self, args: Iterable[Any]) -> None:
        for arg in args:
            if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_SIZE:
                raise _over(f"asks for a size of {arg:,}")

    def _bounded_filter(self, f: Callable[..., Any]) -> Callable[..., Any]:
        # functools.wraps copies __dict__, so jinja's pass_context/pass_environment marks stay.
        @functools.wraps(f)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            self.tick(1)
            self._check_args([*args, *kwargs.values()])
            result = f(*args, **kwargs)
            if isinstance(result, types.GeneratorType):  # map, select, slice, batch, ...
                return self.counted(result)
            return self.sized(result)

        return bounded

    # -- the sandbox's hooks ---------------------------------------------------------

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        # jinja2's documented hook between parsing and code generation: count the loops.
        _Budgeted().visit(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.tick(1)
        self._check_args([*args, *kwargs.values()])
        return self.sized(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any | Undefined:
        self.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: str | Any) -> Any | Undefined:
        self.tick()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and abs(left).bit_length() * right > MAX_POWER_BITS:
                raise _over(f"computes a number of more than {MAX_POWER_BITS:,} bits")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                    if len(seq) * times > MAX_SIZE:
                        raise _over(f"builds a string or list longer than {MAX_SIZE:,}")
        return self.sized(super().call_binop(context, operator, left, right))

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        if modifies_known_mutable(obj, attribute) and not (
            attribute.startswith("_") or is_internal_attribute(obj, attribute)
        ):
            # list.append and the like: the sandbox's undefined fails if called, and the
            # caller then uses a plain format, as for any template error.
            return super().unsafe_undefined(obj, attribute)
        raise _over(
            f"tries to reach Python's internals ({attribute!r} of a {type(obj).__name__!r} object), "
            "which only an attack on the program needs"
        )


class _Budgeted(NodeTransformer):
    """Route every ``for`` loop's items and every ``~`` result through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = cast(nodes.For, self.generic_visit(node))
        node.iter = nodes.Filter(node.iter, _STEP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = cast(nodes.Concat, self.generic_visit(node))
        return nodes.Filter(node, _SIZE_FILTER, [], [], None, None, lineno=node.lineno)
