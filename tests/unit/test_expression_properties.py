"""Properties of the expression sandbox over generated expressions: every evaluation gives
plain data or an ``ExpressionError``, and no attribute the sandbox deems unsafe is ever handed
out, whatever attribute chains, filters, calls, format strings and arithmetic are combined."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import orjson
import pytest
from fuzzing import PROPERTIES
from hypothesis import example, given
from hypothesis import strategies as st

from legato.model import expressions
from legato.model.expressions import ExpressionError, evaluate_condition, render

SCOPE: dict[str, Any] = {
    "inputs": {"name": "clip.mov", "count": 3, "ratio": 0.5, "tags": ["a", "b"], "on": True},
    "steps": {"fetch": {"outputs": {"path": "/tmp/x", "size": 10}, "status": "SUCCEEDED"}},
    "vars": {"n": None, "nested": {"k": [1, {"v": "w"}]}},
    "run": {"id": 7, "uuid": "6063ddf9-f7c8-49aa-a0a5-d88d3d2db29c"},
    "item": "mp4",
}

#: Attribute names an escape from a Jinja sandbox goes through.
ESCAPE_NAMES = [
    "__class__", "__mro__", "__base__", "__bases__", "__subclasses__", "__globals__",
    "__init__", "__dict__", "__builtins__", "__import__", "__code__", "__closure__",
    "__self__", "__func__", "__getattribute__", "__reduce_ex__", "__module__", "__loader__",
    "mro", "func_globals", "func_code", "gi_frame", "gi_code", "cr_frame", "ag_frame",
    "f_globals", "f_back", "tb_frame", "im_func", "_TemplateReference__context",
]  # fmt: skip
PLAIN_NAMES = [
    "name", "count", "tags", "outputs", "fetch", "path", "k", "v", "id", "nested",
    "items", "keys", "values", "get", "upper", "lower", "split", "join", "replace", "format",
    "format_map", "ljust", "center", "zfill", "startswith", "count", "index", "update", "pop",
    "append", "clear", "setdefault", "real", "imag", "bit_length", "missing",
]  # fmt: skip
ROOTS = [
    *sorted(expressions.SCOPE_ROOTS), *sorted(expressions.global_names()),
    "loop", "self", "config", "request", "undefined_name", "_",
]  # fmt: skip
FILTERS = sorted(expressions._ENV.filters)
TESTS = sorted(expressions._ENV.tests)
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "~", "and", "or", "==", "<", "in"]
FORMATS = [
    "'%s'", "'%d'", "'%x'", "'%r'", "'%c'", "'%5.2f'", "'%-8s|'", "'%(a)s'", "'%%'",
    "'{}'", "'{0}'", "'{0!r}'", "'{0:>8}'", "'{0.real}'", "'{0.__class__}'", "'{0[0]}'",
    "'{a}'", "'{0.__init__.__globals__}'",
]  # fmt: skip

# Small numbers only: the sandbox's own bounds are for sizes; these properties are about
# types and escapes, and must stay quick.
_numbers = st.one_of(
    st.integers(-100, 100).map(str),
    st.sampled_from(["0.5", "1e3", "-2.5", "1e308", "0", "-1", "64", "3.0", "2**64"]),
)
_strings = st.text(st.characters(codec="utf-8"), max_size=8).map(repr)
_literals = st.one_of(
    _numbers, _strings, st.sampled_from(["none", "true", "false", "[]", "{}", "()", "''"])
)
_names = st.sampled_from(PLAIN_NAMES + ESCAPE_NAMES)


def _postfix(base: st.SearchStrategy[str], arg: st.SearchStrategy[str]) -> Any:
    return st.one_of(
        st.tuples(base, _names).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(base, st.one_of(arg, _names.map(repr))).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(base, st.lists(arg, max_size=2)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(base, st.sampled_from(FILTERS)).map(lambda t: f"{t[0]}|{t[1]}"),
        st.tuples(base, st.sampled_from(FILTERS), st.lists(arg, min_size=1, max_size=2)).map(
            lambda t: f"{t[0]}|{t[1]}({', '.join(t[2])})"
        ),
        st.tuples(base, st.sampled_from(FILTERS), _names).map(
            lambda t: f"{t[0]}|{t[1]}(attribute={t[2]!r})"
        ),
        st.tuples(base, st.sampled_from(TESTS)).map(lambda t: f"{t[0]} is {t[1]}"),
    )


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        _postfix(children, children),
        st.tuples(
            children,
            st.sampled_from(
                ["+", "-", "*", "/", "//", "%", "**", "~", "and", "or", "==", "<", "in"]
            ),
            children,
        ).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"(not {c})"),
        children.map(lambda c: f"(-{c})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.lists(children, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
        st.tuples(children, children).map(lambda t: f"{{{t[0]}: {t[1]}}}"),
        st.tuples(st.sampled_from(FORMATS), children).map(lambda t: f"{t[0]}|format({t[1]})"),
        st.tuples(st.sampled_from(FORMATS), children).map(lambda t: f"{t[0]}.format({t[1]})"),
        st.tuples(st.sampled_from(FORMATS), children).map(lambda t: f"({t[0]} % {t[1]})"),
    )


EXPRESSIONS = st.recursive(st.one_of(_literals, st.sampled_from(ROOTS)), _combine, max_leaves=8)
#: Attribute chains from a root, at least one of its names being an escape route.
ESCAPE_CHAINS = st.tuples(
    st.one_of(st.sampled_from(ROOTS), _literals),
    st.lists(_names, max_size=3),
    st.sampled_from(ESCAPE_NAMES),
    st.lists(_names, max_size=3),
).map(lambda t: ".".join([f"({t[0]})", *t[1], t[2], *t[3]]))


@contextmanager
def unsafe_attributes_granted() -> Iterator[list[str]]:
    """Every attribute the sandbox lets through although its name is an escape route."""
    granted: list[str] = []
    decide = expressions._ENV.is_safe_attribute

    def spy(obj: Any, attr: str, value: Any) -> bool:
        safe = decide(obj, attr, value)
        if safe and (attr.startswith("_") or attr in ESCAPE_NAMES):
            granted.append(attr)
        return safe

    with mock.patch.object(expressions._ENV, "is_safe_attribute", spy):
        yield granted


def assert_plain_data(value: Any) -> None:
    """JSON's types (integers of any size), string keys, text without lone surrogates."""
    if isinstance(value, str):
        assert type(value) is str
        value.encode("utf-8")
    elif isinstance(value, list):
        for item in value:
            assert_plain_data(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            key.encode("utf-8")
            assert_plain_data(item)
    else:
        assert value is None or type(value) in (bool, int, float), repr(value)


def evaluate(expression: str) -> Any:
    """The value of ``${{ expression }}``, or the ``ExpressionError`` it raised."""
    try:
        return render("${{ " + expression + " }}", SCOPE)
    except ExpressionError as exc:
        return exc


@PROPERTIES
@given(EXPRESSIONS)
def test_an_expression_gives_plain_data_or_its_own_error(expression: str) -> None:
    with unsafe_attributes_granted() as granted:
        value = evaluate(expression)
    assert granted == []
    if not isinstance(value, ExpressionError):
        assert_plain_data(value)


@PROPERTIES
@given(EXPRESSIONS, st.text(max_size=10))
def test_text_around_expressions_gives_text_or_the_error(expression: str, text: str) -> None:
    template = f"{text}${{{{ {expression} }}}}{text}"
    try:
        value = render(template, SCOPE)
    except ExpressionError:
        return
    assert_plain_data(value)
    assert isinstance(value, str) or template.strip().startswith("${{")


@PROPERTIES
@given(EXPRESSIONS)
def test_a_condition_is_a_boolean_or_the_error(expression: str) -> None:
    try:
        assert evaluate_condition(expression, SCOPE) in (True, False)
    except ExpressionError:
        pass


@PROPERTIES
@given(ESCAPE_CHAINS)
def test_an_attribute_chain_through_an_escape_route_is_refused(expression: str) -> None:
    with unsafe_attributes_granted() as granted:
        value = evaluate(expression)
    assert granted == []
    assert isinstance(value, ExpressionError), f"{expression} gave {value!r}"


@PROPERTIES
@given(st.text(max_size=40))
def test_any_text_renders_or_raises_the_error(text: str) -> None:
    try:
        assert_plain_data(render(text, SCOPE))
    except ExpressionError:
        pass


@PROPERTIES
@given(EXPRESSIONS)
@example("2**64")
@example("[(64 ** 64) - 1]")
def test_what_an_expression_gives_fits_in_json(expression: str) -> None:
    value = evaluate(expression)
    if not isinstance(value, ExpressionError):
        orjson.dumps(value)  # as the store writes it


# -- known escapes, refused today ----------------------------------------------------------

ESCAPES = [
    "''.__class__.__mro__[1].__subclasses__()",
    "().__class__.__bases__[0].__subclasses__()",
    "().__class__.__base__.__subclasses__()",
    "lipsum.__globals__['os'].popen('id').read()",
    "lipsum.__globals__.os.popen('id').read()",
    "cycler.__init__.__globals__.os.popen('id').read()",
    "joiner.__init__.__globals__",
    "namespace.__init__.__globals__",
    "range.__globals__",
    "lipsum.__code__",
    "dict.mro()",
    "dict.__subclasses__()",
    "inputs.__class__",
    "inputs['__class__']",
    "inputs|attr('__class__')",
    "inputs.keys.__self__",
    "inputs.__getattribute__('__class__')",
    "[inputs]|map(attribute='__class__')|list",
    "[inputs]|map(attribute='__class__.__mro__')|list",
    "[inputs]|selectattr('__class__')|list",
    "[inputs, inputs]|sort(attribute='__class__')",
    "'{0.__class__}'.format(1)",
    "'{0.__init__.__globals__}'.format(lipsum)",
    "'{a.__class__}'.format_map({'a': 1})",
    "inputs.update({'count': 4})",
    "inputs.tags.append('c')",
    "inputs.pop('name')",
    "inputs.clear()",
    "inputs.setdefault('x', 1)",
]


@pytest.mark.parametrize("expression", ESCAPES)
def test_known_escapes_are_refused(expression: str) -> None:
    with unsafe_attributes_granted() as granted:
        value = evaluate(expression)
    assert granted == []
    assert isinstance(value, ExpressionError)
    assert "not allowed" in value.detail
    assert SCOPE["inputs"] == {
        "name": "clip.mov", "count": 3, "ratio": 0.5, "tags": ["a", "b"], "on": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ("range", "the result is a function, not data"),
        ("lipsum", "the result is a function, not data"),
        ("inputs.items", "the result is a builtin_function_or_method, not data"),
        ("'a'.format_map", "the result is a function, not data"),
        ("dict", "the result is a type, not data"),
        ("namespace()", "the result is a Namespace, not data"),
        ("cycler(1, 2)", "the result is a Cycler, not data"),
        ("[1, joiner()]", "the result is a Joiner, not data"),
        ("{1: 'a'}", "a mapping key must be a string, not 1"),
        ("{'a': {none: 1}}", "a mapping key must be a string, not None"),
        ("'%c'|format(55296)", "the result holds a lone surrogate (not text)"),
        ("['\\udfff']", "the result holds a lone surrogate (not text)"),
    ],
)
def test_what_is_no_data_is_refused_as_the_error(expression: str, detail: str) -> None:
    value = evaluate(expression)
    assert isinstance(value, ExpressionError)
    assert value.detail == detail


def test_markup_becomes_plain_text() -> None:
    value = render("${{ '<b>'|escape }}", SCOPE)
    assert value == "&lt;b&gt;"
    assert type(value) is str
