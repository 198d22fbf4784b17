"""Expressions cannot build huge values: each is refused, quickly, with a clear message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legato.model.expressions import ExpressionLimitError, limit_errors, render

HUGE = [
    ("${{ 'a'.ljust(2**28) }}", "argument 268435456 is larger than 1000000"),
    ("${{ 'a'.rjust(999999) ~ 'b'.rjust(999999) }}", "result larger than 1000000 characters"),
    ("${{ 'x'|center(300000000) }}", "argument 300000000 is larger than 1000000"),
    ("${{ '%0268435456d'|format(1) }}", "result larger than 1000000 characters"),
    ("${{ '%0268435456d' % 1 }}", "result larger than 1000000 characters"),
    ("${{ '%*d' % (5, 1) }}", "'*' widths are not allowed in formats"),
    ("${{ '{:>999999999}'.format(1) }}", "result larger than 1000000 characters"),
    ("${{ '{0:{1}}'.format(1, 5) }}", "nested fields are not allowed in formats"),
    ("${{ 'a' * 10**9 }}", "result larger than 1000000 characters"),
    ("${{ 10**9 * 'a' }}", "result larger than 1000000 characters"),
    ("${{ range(10**9) }}", "argument 1000000000 is larger than 1000000"),
    ("${{ [0] * 200000 }}", "result holds more than 100000 items"),
    ("${{ [[0] * 100000] * 100000 }}", "result holds more than 100000 items"),
    ("${{ 'ab'.replace('', 'x' * 900000) }}", "result larger than 1000000 characters"),
    ("${{ ('x' * 1000)|replace('x', 'y' * 1001) }}", "result larger than 1000000 characters"),
    ("${{ ('a\\n' * 1000)|indent(999999) }}", "result larger than 1000000 characters"),
    ("${{ (range(100000)|list)|join('x' * 100) }}", "result larger than 1000000 characters"),
    ("${{ ('x' * 100).join(range(20000)|map('string')) }}", "result larger than 1000000"),
    ("${{ ('\\t' * 1000).expandtabs(999999) }}", "result larger than 1000000 characters"),
    ("${{ lipsum(1000000) }}", "result larger than 1000000 characters"),
    ("${{ 2**64 }}", "integer 18446744073709551616 does not fit in 64 bits"),
    ("${{ -2**63 - 1 }}", "integer -9223372036854775809 does not fit in 64 bits"),
    ("${{ 99999999999999999999 }}", "integer 99999999999999999999 does not fit in 64 bits"),
    ("${{ 2**1000 }}", "2 ** 1000 is too large"),
    ("${{ (2**100) * (2**100) }}", "integer of 201 bits is too large"),
]


@pytest.mark.parametrize(("template", "reason"), HUGE)
def test_values_past_a_bound_are_refused(template: str, reason: str) -> None:
    with pytest.raises(ExpressionLimitError) as info:
        render({"text": [template]}, {}, "with")
    assert reason in str(info.value), str(info.value)
    assert str(info.value).startswith(template), str(info.value)
    assert "not allowed: " in str(info.value)
    assert info.value.path == "with.text[0]"


def test_values_within_the_bounds_are_made() -> None:
    scope = {"inputs": {"n": 3}}
    assert render("${{ 'a'.ljust(5) ~ '|' }}", scope) == "a    |"
    assert render("${{ 'a' * 1000000 }}", scope) == "a" * 1_000_000
    assert render("${{ [0] * 100000 }}", scope) == [0] * 100_000
    assert render("${{ 2**63 - 1 }}", scope) == 2**63 - 1
    assert render("${{ -2**63 }}", scope) == -(2**63)
    assert render("${{ '%05d-%s' % (inputs.n, 'x') }}", scope) == "00003-x"
    assert render("${{ '{:>4}'.format(inputs.n) }}", scope) == "   3"
    assert render("${{ 'a\\tb'.expandtabs(4) }}", scope) == "a   b"
    assert render("${{ range(3)|join(',') }}", scope) == "0,1,2"


def test_parts_within_bounds_that_are_too_large_together_are_refused() -> None:
    template = {"a": "${{ 'x' * 600000 }}", "b": "${{ 'y' * 600000 }}"}
    with pytest.raises(ExpressionLimitError) as info:
        render(template, {}, "with")
    assert info.value.path == "with"
    assert str(info.value) == "not allowed: result larger than 1000000 characters"


def test_constant_expressions_past_a_bound_are_known_before_any_run() -> None:
    text = "${{ 'a'.ljust(2**28) }} ${{ inputs.n * 10**9 }} ${{ 1 // 0 }} ${{ 2**64 }}"
    assert limit_errors(text) == [
        "${{ 'a'.ljust(2**28) }}: not allowed: argument 268435456 is larger than 1000000",
        "${{ 2**64 }}: not allowed: integer 18446744073709551616 does not fit in 64 bits",
    ]


def test_the_work_of_one_evaluation_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from legato.model import expression_limits

    monkeypatch.setattr(expression_limits, "MAX_STEPS", 50)
    assert render("${{ range(10)|map('string')|join }}", {}) == "0123456789"
    with pytest.raises(ExpressionLimitError) as info:
        render("${{ range(1000)|map('string')|join }}", {})
    assert str(info.value).endswith("not allowed: more than 50 operations"), str(info.value)


def test_json_values_the_store_cannot_keep_are_named() -> None:
    from legato.model.json_values import json_problems

    assert json_problems({"a": [1, "x", None, 1.5, True], "b": {"c": 2**63 - 1}}, "inputs") == []
    found = json_problems({"a": [2**63], "b": {"\udc00": 1}, "c": nested(70)}, "inputs")
    assert sorted((p["path"], p["code"]) for p in found) == [
        ("inputs.a[0]", "integer_out_of_range"),
        ("inputs.b", "invalid_text"),
        ("inputs.c" + "[0]" * 63, "too_deep"),
    ], found
    assert json_problems("\ud800", "inputs.s") == [
        {"path": "inputs.s", "code": "invalid_text",
         "message": "text holds a lone surrogate, not valid Unicode"}
    ]  # fmt: skip


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


_BUILDERS = [
    "'{s}'.ljust({n})",
    "'{s}'.center({n})",
    "'{s}'.zfill({n})",
    "'{s}' * {n}",
    "[{n}] * {m}",
    "['{s}'] * {n} * {m}",
    "'{s}'|center({n})",
    "'{s}'|indent({n})",
    "'%0{n}d'|format({m})",
    "'%{n}s' % '{s}'",
    "'{{:>{n}}}'.format({m})",
    "'{s}'.replace('', '{s}' * {m})",
    "({n}) ** ({m})",
    "({n}) * ({m}) * ({m})",
    "range({n})|list",
    "range({m})|join('{s}' * {n})",
    "('{s}' * {m}).expandtabs({n})",
]


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(
    outer=st.sampled_from(_BUILDERS),
    inner=st.sampled_from(_BUILDERS),
    s=st.sampled_from(["a", "\\t", "ab\\n", "xyz"]),
    n=st.one_of(st.integers(-5, 50), st.integers(10**5, 10**10), st.just(2**63)),
    m=st.one_of(st.integers(0, 9), st.integers(10**3, 10**6)),
)
def test_whatever_an_expression_builds_stays_within_bounds(
    outer: str, inner: str, s: str, n: int, m: int
) -> None:
    from legato.model.expression_limits import MAX_ITEMS, MAX_TEXT
    from legato.model.expressions import ExpressionError

    first = inner.format(s=s, n=n, m=m)
    template = "${{ " + outer.format(s=s, n=f"({first})|length", m=m) + " }}"
    for text in ("${{ " + first + " }}", template):
        try:
            value = render(text, {})
        except ExpressionError:
            continue
        if isinstance(value, int):
            assert -(2**63) <= value < 2**63, text
        elif isinstance(value, str):
            assert len(value) <= MAX_TEXT, text
        elif isinstance(value, list):
            assert len(value) <= MAX_ITEMS, text


def test_large_numbers_as_data_are_fine() -> None:
    assert render("${{ '{}-{}'.format(98765432101, 1) }}", {}) == "98765432101-1"
    assert render("${{ '%s-%d' % (1700000000000, 2) }}", {}) == "1700000000000-2"
    assert render("${{ '%s'|format(98765432101) }}", {}) == "98765432101"
    assert render("${{ dict(size=5000000) }}", {}) == {"size": 5000000}
    with pytest.raises(ExpressionLimitError, match="argument 200000 is larger than 100000"):
        render("${{ [1, 2]|slice(200000)|list }}", {})
