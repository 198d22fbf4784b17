"""``${{ … }}`` expressions, evaluated in Jinja2's immutable sandbox (never ``eval``).

A string that is exactly one expression evaluates to the expression's native value (a list
stays a list); a string mixing text and expressions becomes a string. Evaluation is strict:
a missing variable or attribute is an error, except where ``| default(…)`` or ``is defined``
asks about it.
"""

from __future__ import annotations

import functools
import json
import operator
import re
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

from legato.model import expression_limits as limits

__all__ = [
    "SCOPE_ROOTS",
    "ExpressionError",
    "ExpressionLimitError",
    "compile_expression",
    "contains_expression",
    "evaluate_condition",
    "expressions_in",
    "global_names",
    "is_expression",
    "limit_errors",
    "mentions",
    "references",
    "render",
    "syntax_errors",
]

#: Variables the engine puts in scope when it evaluates an expression.
SCOPE_ROOTS = frozenset({"inputs", "steps", "vars", "run", "item"})

_OPEN = "${{"
_CLOSE = "}}"
_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}
_UNOPS: dict[str, Callable[[Any], Any]] = {"-": operator.neg, "+": operator.pos}
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class ExpressionError(Exception):
    """An expression failed to parse or to evaluate; the message names the expression."""

    def __init__(self, expression: str, detail: str, *, quote: bool = True) -> None:
        shown = f"${{{{ {expression} }}}}" if expression.strip() else "${{ }}"
        super().__init__(f"{shown}: {detail}" if quote else detail)
        self.expression = expression
        self.detail = detail


class ExpressionLimitError(ExpressionError):
    """An expression built a value past a bound (size, 64-bit integers) or worked too long;
    ``path`` is where in the rendered template it stands (``with.text``), when known."""

    def __init__(self, expression: str, detail: str, *, path: str = "") -> None:
        super().__init__(expression, detail, quote=bool(expression.strip()))
        self.path = path


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with ``a.b`` on a mapping meaning its key ``b`` before any method ``b``,
    and every call, filter and operator bounded (:mod:`legato.model.expression_limits`)."""

    intercepted_binops = frozenset(_BINOPS)
    intercepted_unops = frozenset(_UNOPS)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def getattr(self, obj: Any, attribute: str) -> Any:
        limits.tick()
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            limits.check_format(obj)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        limits.tick()
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        limits.tick()
        args = limits.check_call(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        limits.measure(result)
        return result

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        limits.tick()
        if operator_ == "**":
            limits.check_power(left, right)
        elif operator_ == "*":
            limits.check_repeat(left, right)
            limits.check_repeat(right, left)
        elif operator_ == "%" and isinstance(left, str):
            limits.check_printf(left)
        result = _BINOPS[operator_](left, right)
        limits.measure(result)
        return result

    def call_unop(self, context: Context, operator_: str, arg: Any) -> Any:
        limits.tick()
        result = _UNOPS[operator_](arg)
        limits.measure(result)
        return result


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    passes_context = _PassArg.from_obj(function) is not None

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        limits.tick()
        lead, rest = (args[:1], args[1:]) if passes_context else ((), args)
        rest = limits.check_filter(name, rest, kwargs)
        result = function(*lead, *rest, **kwargs)
        limits.measure(result)
        return result

    return bounded


_ENV = _Environment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=2048)
def compile_expression(expression: str) -> TemplateExpression:
    """Compile the text between ``${{`` and ``}}``; raise ``ExpressionError`` if it is invalid."""
    if not expression.strip():
        raise ExpressionError(expression, "empty expression")
    try:
        return _ENV.compile_expression(expression, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError(expression, exc.message or "syntax error") from None
    except Exception as exc:  # constant folding evaluates: (1 if 0.__class__ else 2)
        raise ExpressionError(expression, _describe(exc)) from None


@lru_cache(maxsize=2048)
def _parse(expression: str) -> nodes.Expr:
    parser = Parser(_ENV, expression, state="variable")
    node = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
    return node


def _segments(text: str) -> Iterator[tuple[bool, str]]:
    """Split ``text`` into (is_expression, text) pieces; raise ``ValueError`` if unterminated."""
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        if start < 0:
            if pos < len(text):
                yield False, text[pos:]
            return
        if start > pos:
            yield False, text[pos:start]
        end = _find_close(text, start + len(_OPEN))
        if end < 0:
            snippet = text[start : start + 40]
            raise ValueError(f"unterminated '${{{{' in {snippet!r}")
        yield True, text[start + len(_OPEN) : end].strip()
        pos = end + len(_CLOSE)


def _find_close(text: str, pos: int) -> int:
    """Index of the ``}}`` closing an expression, skipping string literals and nested braces."""
    depth = 0
    quote = ""
    i = pos
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0 and text.startswith(_CLOSE, i):
                return i
            depth = max(depth - 1, 0)
        i += 1
    return -1


def _sole_expression(text: str) -> str | None:
    """The expression if ``text`` is exactly one ``${{ … }}`` (surrounding blanks allowed)."""
    if _OPEN not in text:
        return None
    try:
        pieces = [p for p in _segments(text) if p[0] or p[1].strip()]
    except ValueError:
        return None
    if len(pieces) == 1 and pieces[0][0]:
        return pieces[0][1]
    return None


def is_expression(value: Any) -> bool:
    """True if ``value`` is a string that is exactly one ``${{ … }}`` expression."""
    return isinstance(value, str) and _sole_expression(value) is not None


def contains_expression(value: Any) -> bool:
    """True if ``value`` (recursively) holds any ``${{``."""
    if isinstance(value, str):
        return _OPEN in value
    if isinstance(value, Mapping):
        return any(contains_expression(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_expression(v) for v in value)
    return False


def mentions(template: Any, word: str) -> bool:
    """True if a string of ``template`` (recursively) that holds an expression has ``word``
    in it: an expression that does not cannot name ``word``."""
    return any(word in text for text in _strings(template))


def expressions_in(template: Any) -> list[str]:
    """Every expression's text in ``template`` (unterminated ones are left out)."""
    found: list[str] = []
    for text in _strings(template):
        try:
            found.extend(piece for is_expr, piece in _segments(text) if is_expr)
        except ValueError:
            continue
    return found


def _strings(template: Any) -> Iterator[str]:
    if isinstance(template, str):
        if _OPEN in template:
            yield template
    elif isinstance(template, Mapping):
        for value in template.values():
            yield from _strings(value)
    elif isinstance(template, list | tuple):
        for value in template:
            yield from _strings(value)


def _evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    compiled = compile_expression(expression)
    try:
        with limits.budget():
            value = _native(compiled(dict(scope)), expression)
            limits.measure(value, final=True)
            return value
    except ExpressionError:
        raise
    except limits.LimitExceeded as exc:
        raise ExpressionLimitError(expression, f"not allowed: {exc}") from None
    except RecursionError:
        raise ExpressionLimitError(expression, "not allowed: nested too deeply") from None
    except Exception as exc:
        raise ExpressionError(expression, _describe(exc)) from None


def _native(value: Any, expression: str) -> Any:
    """Plain data from an expression's result: iterators become lists; no undefined inside.

    Anything JSON cannot carry is refused here, not where the result is stored: a function or
    an object (``${{ range }}``), a mapping key that is no string, a lone surrogate."""
    if isinstance(value, Undefined):
        raise ExpressionError(expression, _undefined_message(value))
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            raise ExpressionError(expression, "the result holds a lone surrogate (not text)")
        return str(value)  # Markup and other subclasses become plain text
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {_key(k, expression): _native(v, expression) for k, v in value.items()}
    if isinstance(value, list | tuple | range | Iterator | KeysView | ValuesView | ItemsView):
        return [_native(v, expression) for v in value]
    raise ExpressionError(expression, f"the result is a {type(value).__name__}, not data")


def _key(key: Any, expression: str) -> str:
    if not isinstance(key, str):
        raise ExpressionError(expression, f"a mapping key must be a string, not {key!r}")
    return str(_native(key, expression))


def _describe(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, SecurityError):
        return f"not allowed: {message}"
    if type(exc).__module__.startswith("jinja2"):
        return message
    return f"{type(exc).__name__}: {message}"


def _undefined_message(value: Undefined) -> str:
    message = str(getattr(value, "_undefined_message", "undefined value"))
    if getattr(value, "_undefined_exception", None) is SecurityError:
        return f"not allowed: {message}"
    return message


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _render_string(text: str, scope: Mapping[str, Any]) -> Any:
    if _OPEN not in text:
        return text
    sole = _sole_expression(text)
    if sole is not None:
        return _evaluate(sole, scope)
    try:
        pieces = list(_segments(text))
    except ValueError as exc:
        raise ExpressionError(text, str(exc), quote=False) from None
    return "".join(_to_text(_evaluate(p, scope)) if is_expr else p for is_expr, p in pieces)


def render(template: Any, scope: Mapping[str, Any], path: str = "") -> Any:
    """Evaluate every expression in ``template`` (recursively through dicts and lists).
    ``path`` names the template in errors past a bound (``ExpressionLimitError.path``)."""
    try:
        result = _render(template, scope)
        limits.measure(result, final=True)  # the parts fit; together they must too
        return result
    except ExpressionLimitError as exc:
        exc.path = _join(path, exc.path)
        raise
    except limits.LimitExceeded as exc:
        raise ExpressionLimitError("", f"not allowed: {exc}", path=path) from None


def _render(template: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(template, str):
        return _render_string(template, scope)
    if isinstance(template, Mapping):
        return {key: _render_at(key, value, scope) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [_render_at(index, value, scope) for index, value in enumerate(template)]
    return template


def _render_at(key: Any, template: Any, scope: Mapping[str, Any]) -> Any:
    try:
        return _render(template, scope)
    except ExpressionLimitError as exc:
        exc.path = _join(key, exc.path)
        raise


def _join(outer: Any, inner: str) -> str:
    head = f"[{outer}]" if isinstance(outer, int) else str(outer)
    if not inner:
        return head
    if not head:
        return inner
    return f"{head}{inner}" if inner.startswith("[") else f"{head}.{inner}"


def evaluate_condition(expr: str | bool, scope: Mapping[str, Any]) -> bool:
    """Truthiness of a step's ``if``: ``${{ x }}``, a bare expression ``x``, or a boolean."""
    if isinstance(expr, bool):
        return expr
    sole = _sole_expression(expr)
    if sole is None:
        if _OPEN in expr:
            raise ExpressionError(
                expr, f"a condition must be a single expression, not {expr!r}", quote=False
            )
        sole = expr.strip()
    value = _evaluate(sole, scope)
    try:
        return bool(value)
    except Exception as exc:
        raise ExpressionError(sole, _describe(exc)) from None


def _check_syntax(expression: str) -> str | None:
    """Why ``expression`` does not parse (or names an unknown filter or test), else None."""
    if not expression.strip():
        return "empty expression"
    try:
        tree = _parse(expression)
    except TemplateSyntaxError as exc:
        return exc.message or "syntax error"
    for node in [tree, *tree.find_all((nodes.Filter, nodes.Test))]:
        if not isinstance(node, nodes.Filter | nodes.Test):
            continue
        known = _ENV.filters if isinstance(node, nodes.Filter) else _ENV.tests
        if node.name not in known:
            return f"No {type(node).__name__.lower()} named {node.name!r}."
    return None


def syntax_errors(template: Any) -> list[str]:
    """Messages for expressions in ``template`` that do not parse or are not terminated."""
    errors: list[str] = []
    for text in _strings(template):
        try:
            for is_expr, piece in _segments(text):
                problem = _check_syntax(piece) if is_expr else None
                if problem is not None:
                    errors.append(f"invalid expression {ExpressionError(piece, problem)}")
        except ValueError as exc:
            errors.append(str(exc))
    return errors


def limit_errors(text: str) -> list[str]:
    """Messages for the expressions in ``text`` that refer to nothing (constants) and build
    values past a bound: known before any run, they are refused when the definition is."""
    errors: list[str] = []
    for expression in expressions_in(text):
        try:
            tree = _parse(expression)
        except TemplateSyntaxError:
            continue
        if any(name.name not in _ENV.globals for name in tree.find_all(nodes.Name)):
            continue
        try:
            _evaluate(expression, {})
        except ExpressionLimitError as exc:
            errors.append(str(exc))
        except ExpressionError:
            continue  # a run reports it, where it is met
    return errors


def references(template: Any, *, include_guarded: bool = True) -> set[tuple[str, str | None]]:
    """Every (root variable, first attribute or constant key) the expressions in ``template`` use.

    ``steps.fetch.outputs.path`` gives ``("steps", "fetch")``, ``inputs["source"]`` gives
    ``("inputs", "source")`` and a bare ``item`` gives ``("item", None)``. Expressions that do
    not parse are skipped (``syntax_errors`` reports them). With ``include_guarded=False``,
    references used only under ``| default(…)`` or ``is defined`` (which tolerate absence)
    are left out.
    """
    found: dict[tuple[str, str | None], bool] = {}
    for expression in expressions_in(template):
        try:
            tree = _parse(expression)
        except TemplateSyntaxError:
            continue
        _collect(tree, found, guarded=False)
    return {ref for ref, guarded in found.items() if include_guarded or not guarded}


_GUARDS = frozenset({"default", "d", "defined", "undefined"})


def _collect(node: nodes.Node, found: dict[tuple[str, str | None], bool], guarded: bool) -> None:
    if isinstance(node, nodes.Filter | nodes.Test) and node.name in _GUARDS:
        for child in node.iter_child_nodes():
            _collect(child, found, guarded=child is node.node)
        return
    ref: tuple[str, str | None] | None = None
    if isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name):
        key: str | None = None
        if isinstance(node, nodes.Getattr):
            key = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            key = node.arg.value
        else:
            _collect(node.arg, found, guarded=False)
        ref = (node.node.name, key)
    elif isinstance(node, nodes.Name):
        if node.ctx == "load":
            ref = (node.name, None)
    else:
        for child in node.iter_child_nodes():
            _collect(child, found, guarded=False)
        return
    if ref is not None:
        found[ref] = found.get(ref, True) and guarded


def global_names() -> frozenset[str]:
    """Names an expression may use besides ``SCOPE_ROOTS`` (Jinja's globals such as ``range``)."""
    return frozenset(_ENV.globals)
