"""Sandboxed templates (`{{ … }}`) and `if:` expressions for playbooks (SPEC §3).

Everything runs in Jinja2's ImmutableSandboxedEnvironment with extra limits: methods on
plain values are whitelisted, every value a template builds (literals, `~`, `+`, `*`,
`%`, `dict()`) is size-checked, and the clock is checked on attribute access, calls,
operators, loop iterations and output chunks.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import do_format, do_round, sync_do_join, sync_do_sum
from jinja2.nodes import EvalContext
from jinja2.parser import Parser
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_environment, pass_eval_context

MAX_OUTPUT_BYTES = 256 * 1024  # per rendered string, and per value a template builds
MAX_SECONDS = 1.0  # per render_value / evaluate_condition call
MAX_RANGE = 10_000  # items from range()
MAX_INT_BITS = 4096  # results of integer * and **
MAX_FORMAT_WIDTH = 1000  # widths and precisions in %-formats
MAX_LOOP_DEPTH = 2

STATUS_FUNCTIONS = frozenset({"always", "failed", "succeeded", "cancelled"})

_FORBIDDEN_TAGS: dict[type[nodes.Node], str] = {
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Include: "include",
    nodes.Extends: "extends",
    nodes.Block: "block",
}
# Methods callable on plain values; everything else (format, ljust, replace, join,
# to_bytes, …) is refused because it can reach internals or amplify memory.
_PLAIN_TYPES = (str, bytes, int, float, list, tuple, dict)
_SAFE_METHODS = frozenset(
    """capitalize casefold count endswith find index isalnum isalpha isdecimal isdigit
    islower isnumeric isspace istitle isupper lower lstrip partition removeprefix removesuffix
    rfind rindex rpartition rsplit rstrip split splitlines startswith strip swapcase title
    upper get items keys values""".split()  # noqa: SIM905 (a word list reads better)
)
# Filters that amplify output from small arguments (center(10**9), batch, …) or make
# no sense outside HTML; join, replace, format, round, sum and tojson are replaced below.
_REMOVED_FILTERS = ("batch", "center", "indent", "pprint", "random", "slice", "urlize", "wordwrap")
_PERCENT_SPEC = re.compile(r"%(?:%|(?:\([^)]*\))?[#0 +\-]*(\*|\d*)(?:\.(\*|\d*))?)")

_deadline: ContextVar[float] = ContextVar("expression_deadline", default=float("inf"))


class ExpressionError(Exception):
    """A template or expression is invalid, unsafe, too costly, or failed to evaluate."""

    def __init__(self, message: str, *, path: str = "") -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def _tick() -> None:
    if time.monotonic() > _deadline.get():
        raise ExpressionError(f"evaluation took longer than {MAX_SECONDS:g} s")


def _check_size(value: Any) -> Any:
    """Return `value` if, counting shared references each time, it stays within the cap."""
    budget = MAX_OUTPUT_BYTES
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            budget -= len(item)
        elif isinstance(item, dict):
            budget -= 1 + 2 * len(item)
            if budget >= 0:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple):
            budget -= 1 + len(item)
            if budget >= 0:
                stack.extend(item)
        else:
            budget -= 1
        if budget < 0:
            raise ExpressionError(f"value exceeds {MAX_OUTPUT_BYTES} bytes")
    return value


def _check_percent_format(fmt: str) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for number in match.groups():
            if number == "*" or (number and (len(number) > 4 or int(number) > MAX_FORMAT_WIDTH)):
                raise ExpressionError(f"format widths are limited to {MAX_FORMAT_WIDTH}")


def _plain(value: Any) -> Any:
    """Check that `value` is JSON data; tuples, ranges and iterators become lists."""
    if isinstance(value, tuple | range | KeysView | ValuesView | ItemsView) or (
        isinstance(value, Iterator) and not isinstance(value, LoopContext)
    ):
        value = list(value)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Undefined):
            str(item)  # StrictUndefined raises its "… is undefined" (or SecurityError) here
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif not isinstance(item, str | int | float | None):
            raise ExpressionError(f"cannot render a {type(item).__name__} value")
    return value


class _Undefined(StrictUndefined):
    """Fails on use with "'name' is undefined"; the sandbox chains attributes off it."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        return self._undefined_hint or f"{self._undefined_name!r} is undefined"


class _CodeGenerator(CodeGenerator):
    """Route the values a template builds (literals and `~`) through a size check."""

    def _checked(self, visit: Callable[[Any, Frame], None], node: nodes.Expr, fr: Frame) -> None:
        self.write("environment.checked(")
        visit(node, fr)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._checked(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._checked(super().visit_Dict, node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self._checked(super().visit_Concat, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx == "load":
            self._checked(super().visit_Tuple, node, frame)
        else:  # an assignment target such as `{% for k, v in … %}`
            super().visit_Tuple(node, frame)


def _ticking(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        _tick()
        yield item


class _Sandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    checked = staticmethod(_check_size)
    ticking = staticmethod(_ticking)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, _PLAIN_TYPES) and callable(value) and attr not in _SAFE_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format is refused by is_safe_attribute instead of sandboxed

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        if isinstance(obj, Undefined):  # so `steps.a.output.x is defined` works at any depth
            return obj
        if isinstance(obj, dict) and attribute in obj:  # a key named "items" beats dict.items
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return obj if isinstance(obj, Undefined) else super().getitem(obj, argument)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_OUTPUT_BYTES:
                    raise ExpressionError(f"repetition exceeds {MAX_OUTPUT_BYTES} bytes")
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise ExpressionError(f"integer result exceeds {MAX_INT_BITS} bits")
        elif operator == "**" and ints and right > 0 and abs(left) > 1:
            if left.bit_length() * right > MAX_INT_BITS:
                raise ExpressionError(f"integer result exceeds {MAX_INT_BITS} bits")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
        return _check_size(super().call_binop(context, operator, left, right))

    def concat(self, parts: Iterable[str]) -> str:
        """Join a block buffer (`{% set x %}…{% endset %}`, `{% filter %}`) within the cap."""
        chunks = list(parts)
        if sum(map(len, chunks)) > MAX_OUTPUT_BYTES:
            raise ExpressionError(f"value exceeds {MAX_OUTPUT_BYTES} bytes")
        return "".join(chunks)


def _range(*args: int) -> range:
    items = range(*args)
    with contextlib.suppress(OverflowError):
        if len(items) <= MAX_RANGE:
            return items
    raise ExpressionError(f"range() is limited to {MAX_RANGE} items")


def _dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    return _check_size(dict(*args, **kwargs))  # type: ignore[no-any-return]


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_percent_format(str(value))
    return do_format(value, *args, **kwargs)


@pass_eval_context
def _join(ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(value)
    if len(items) * len(str(d)) > MAX_OUTPUT_BYTES:
        raise ExpressionError(f"join() result exceeds {MAX_OUTPUT_BYTES} bytes")
    return sync_do_join(ctx, items, d, attribute)


def _replace(value: Any, old: str, new: str, count: int = -1) -> str:
    text = str(value)
    if len(text) + text.count(old) * len(new) > MAX_OUTPUT_BYTES:
        raise ExpressionError(f"replace() result exceeds {MAX_OUTPUT_BYTES} bytes")
    return text.replace(old, new, count)


def _round(value: float, precision: int = 0, method: Any = "common") -> float:
    if not -100 <= precision <= 100:  # round(5, -10**9) would compute 10**10**9
        raise ExpressionError("round() precision must be between -100 and 100")
    return do_round(value, precision, method)


@pass_environment
def _sum(env: _Sandbox, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float):  # adding lists is quadratic
        raise ExpressionError("sum() adds numbers only")
    return sync_do_sum(env, iterable, attribute, start)


def _tojson(value: Any, indent: int | None = None) -> str:
    if indent is not None and not 0 <= indent <= 8:
        raise ExpressionError("tojson indent must be between 0 and 8")
    return json.dumps(_plain(value), indent=indent, sort_keys=True, ensure_ascii=False)


_ENV = _Sandbox(undefined=_Undefined, finalize=_plain, keep_trailing_newline=True)
_ENV.globals.clear()  # drops lipsum, cycler, joiner, namespace
_ENV.globals.update(range=_range, dict=_dict)
for _name in _REMOVED_FILTERS:
    del _ENV.filters[_name]
_ENV.filters.update(
    format=_format, join=_join, replace=_replace, round=_round, sum=_sum, tojson=_tojson
)
_ENV.filters["fromjson"] = json.loads


@contextlib.contextmanager
def _errors(path: str) -> Iterator[None]:
    """Turn anything raised inside into an ExpressionError naming `path`."""
    try:
        yield
    except ExpressionError as exc:
        if exc.path or not path:
            raise
        raise ExpressionError(exc.message, path=path) from exc
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"line {exc.lineno}: {exc.message or exc}", path=path) from exc
    except TemplateError as exc:  # UndefinedError, SecurityError, …
        raise ExpressionError(exc.message or str(exc), path=path) from exc
    except RecursionError as exc:
        raise ExpressionError("expression nests too deeply", path=path) from exc
    except Exception as exc:
        raise ExpressionError(f"{type(exc).__name__}: {exc}", path=path) from exc


@contextlib.contextmanager
def _budget() -> Iterator[None]:
    token = _deadline.set(min(_deadline.get(), time.monotonic() + MAX_SECONDS))
    try:
        yield
    finally:
        _deadline.reset(token)


def _validate(node: nodes.Node, depth: int = 0) -> None:
    for child in node.iter_child_nodes():
        if tag := _FORBIDDEN_TAGS.get(type(child)):
            raise ExpressionError(f"line {child.lineno}: {{% {tag} %}} is not allowed")
        child_depth = depth + 1 if isinstance(child, nodes.For) else depth
        if isinstance(child, nodes.For) and child.recursive:
            raise ExpressionError(f"line {child.lineno}: recursive for-loops are not allowed")
        if child_depth > MAX_LOOP_DEPTH:
            raise ExpressionError(
                f"line {child.lineno}: for-loops may nest at most {MAX_LOOP_DEPTH} deep"
            )
        _validate(child, child_depth)


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is exactly one `{{ expr }}` (whitespace around)."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = [
        part
        for part in tree.body[0].nodes
        if not (isinstance(part, nodes.TemplateData) and not part.data.strip())
    ]
    if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
        return parts[0]
    return None


def _expression_tree(source: str) -> nodes.Expr:
    """Parse a bare expression, or one written as a single `{{ expr }}`."""
    text = source.strip()
    if text.startswith("{{") and text.endswith("}}"):
        expr = _single_expression(_ENV.parse(source))
        if expr is None:
            raise ExpressionError("expected a single {{ expression }}")
        return expr
    parser = Parser(_ENV, source, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        token = parser.stream.current
        raise TemplateSyntaxError(f"unexpected {token.value!r} after the expression", token.lineno)
    return expr


def _expression_template(expr: nodes.Expr) -> Template:
    tree = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)
    tree.set_environment(_ENV)
    return _ENV.from_string(tree)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, expression: bool) -> tuple[Template, bool]:
    """Compile once; the bool says whether the template is a single expression."""
    if expression:
        return _expression_template(_expression_tree(source)), True
    tree = _ENV.parse(source)
    _validate(tree)
    if (expr := _single_expression(tree)) is not None:
        return _expression_template(expr), True
    for loop in list(tree.find_all(nodes.For)):  # check the clock on every iteration
        loop.iter = nodes.Call(
            nodes.EnvironmentAttribute("ticking"), [loop.iter], [], None, None, lineno=loop.lineno
        )
    tree.set_environment(_ENV)
    return _ENV.from_string(tree), False


def _evaluate(template: Template, variables: dict[str, Any]) -> Any:
    context = template.new_context(variables)
    for _ in template.root_render_func(context):
        pass
    return context.vars["result"]


def _check_output(text: str, size: int = 0) -> int:
    size += len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_OUTPUT_BYTES:
        raise ExpressionError(f"output exceeds {MAX_OUTPUT_BYTES} bytes")
    return size


def _render_text(source: str, variables: dict[str, Any]) -> Any:
    template, single = _compile(source, False)
    if single:
        value = _plain(_evaluate(template, variables))
        if isinstance(value, str):
            _check_output(value)
        return value
    chunks, size = [], 0
    for chunk in template.generate(variables):
        _tick()
        size = _check_output(chunk, size)
        chunks.append(chunk)
    return "".join(chunks)


def _render(value: Any, variables: dict[str, Any], path: str) -> Any:
    if isinstance(value, str):
        if "{" not in value:
            return value
        with _errors(path):
            return _render_text(value, variables)
    if isinstance(value, dict):
        return {
            key: _render(item, variables, f"{path}.{key}" if path else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_render(item, variables, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def _nodes(text: str, expression: bool) -> list[nodes.Node]:
    """Every node of the parsed text, or none if its syntax is invalid (check_* reports that)."""
    try:
        tree = _expression_tree(text) if expression else _ENV.parse(text)
    except (TemplateSyntaxError, ExpressionError):
        return []
    return [tree, *tree.find_all(nodes.Node)]


def check_template(text: str, *, path: str = "") -> None:
    """Raise ExpressionError if `text` is not a valid template or uses a forbidden construct."""
    with _errors(path):
        _compile(text, False)


def check_expression(expr: str, *, path: str = "") -> None:
    """Raise ExpressionError if `expr` is not a valid bare (or single `{{ }}`) expression."""
    with _errors(path):
        _compile(expr, True)


def referenced_steps(text: str, *, expression: bool = False) -> set[str]:
    """Step ids referenced as `steps.<id>` or `steps['<id>']`; empty if the syntax is invalid."""
    found: set[str] = set()
    for node in _nodes(text, expression):
        if not isinstance(node, nodes.Getattr | nodes.Getitem):
            continue
        if isinstance(node.node, nodes.Name) and node.node.name == "steps":
            key = node.attr if isinstance(node, nodes.Getattr) else node.arg
            if isinstance(key, nodes.Const):
                key = key.value
            if isinstance(key, str):
                found.add(key)
    return found


def uses_item(text: str, *, expression: bool = False) -> bool:
    """True if the template reads `item` or `item_index` (set only in for_each steps)."""
    names = [node for node in _nodes(text, expression) if isinstance(node, nodes.Name)]
    stored = {node.name for node in names if node.ctx != "load"}  # {% for item in … %}
    return any(n.ctx == "load" and n.name in {"item", "item_index"} - stored for n in names)


def uses_status_function(expr: str) -> bool:
    """True if the expression calls always(), failed(), succeeded() or cancelled()."""
    return any(
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Name)
        and node.node.name in STATUS_FUNCTIONS
        for node in _nodes(expr, True)
    )


def render_value(value: Any, context: Mapping[str, Any], *, path: str = "") -> Any:
    """Render strings as templates inside `value`; a lone `{{ expr }}` keeps its JSON type."""
    with _budget():
        return _render(value, dict(context), path)


def evaluate_condition(
    expr: str,
    context: Mapping[str, Any],
    *,
    functions: Mapping[str, Callable[[], bool]] | None = None,
    path: str = "",
) -> bool:
    """Evaluate a bare (or single `{{ }}`) expression and return its truthiness."""
    with _budget(), _errors(path):
        template, _ = _compile(expr, True)
        return bool(_evaluate(template, {**context, **(functions or {})}))
