from __future__ import annotations

from typing import Any

import pytest

from legato.model.expressions import (
    ExpressionError,
    compile_expression,
    contains_expression,
    evaluate_condition,
    expressions_in,
    is_expression,
    references,
    render,
    syntax_errors,
)

SCOPE: dict[str, Any] = {
    "inputs": {"source": "s3://bucket/a.mov", "formats": ["mp4", "webm"], "count": 3, "keys": 7},
    "steps": {"fetch": {"outputs": {"path": "/tmp/a.mov", "size": 10}, "status": "SUCCEEDED"}},
    "vars": {},
    "run": {"id": 12},
    "item": "mp4",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${{ inputs.formats }}", ["mp4", "webm"]),
        ("  ${{ inputs.count }}  ", 3),
        ("${{ inputs.count * 2 }}", 6),
        ("${{ steps.fetch.outputs }}", {"path": "/tmp/a.mov", "size": 10}),
        ("${{ none }}", None),
        ("${{ inputs.count > 2 }}", True),
        ("${{ inputs['source'] }}", "s3://bucket/a.mov"),
        ("${{ inputs.formats | map('upper') }}", ["MP4", "WEBM"]),
        ("${{ range(3) }}", [0, 1, 2]),
        ("${{ {'a': {'b': 1}} }}", {"a": {"b": 1}}),
        ("${{ 'a}}' }}", "a}}"),
        ("${{ inputs.keys }}", 7),  # a key wins over the dict method of the same name
    ],
)
def test_single_expression_gives_native_value(template: str, expected: Any) -> None:
    assert render(template, SCOPE) == expected


def test_mixed_text_interpolates() -> None:
    assert render("file ${{ item }} of ${{ inputs.count }}", SCOPE) == "file mp4 of 3"
    assert render("f=${{ inputs.formats }}", SCOPE) == 'f=["mp4", "webm"]'
    assert render("o=${{ steps.fetch.outputs }}", SCOPE) == 'o={"path": "/tmp/a.mov", "size": 10}'
    assert render("${{ true }}/${{ none }}/${{ 1.5 }}", SCOPE) == "true//1.5"
    assert render("${{ item }}${{ item }}", SCOPE) == "mp4mp4"


def test_render_recurses_and_keeps_other_values() -> None:
    template = {
        "argv": ["fetch", "${{ inputs.source }}", 5],
        "nested": {"n": "${{ inputs.count }}", "flag": True, "none": None},
        "plain": "no expressions",
    }
    assert render(template, SCOPE) == {
        "argv": ["fetch", "s3://bucket/a.mov", 5],
        "nested": {"n": 3, "flag": True, "none": None},
        "plain": "no expressions",
    }
    assert render(4.5, SCOPE) == 4.5


def test_default_filter_covers_missing_values() -> None:
    assert render("${{ inputs.deliver | default(true) }}", SCOPE) is True
    assert render("${{ nothing | default('x') }}", SCOPE) == "x"
    assert render("${{ inputs.deliver is defined }}", SCOPE) is False


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("${{ inputs.nope }}", "has no attribute 'nope'"),
        ("${{ nothing }}", "'nothing' is undefined"),
        ("${{ steps.other.outputs.x }}", "has no attribute 'other'"),
        ("${{ [inputs.nope] }}", "has no attribute 'nope'"),
        ("x ${{ inputs.nope }}", "has no attribute 'nope'"),
        ("${{ 1 / 0 }}", "ZeroDivisionError"),
        ("${{ inputs.count + 'a' }}", "TypeError"),
    ],
)
def test_strict_evaluation_errors(template: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        render(template, SCOPE)
    assert fragment in str(info.value)
    assert str(info.value).startswith("${{ ")


@pytest.mark.parametrize(
    "template",
    [
        "${{ ().__class__.__mro__ }}",
        "${{ ().__class__.__mro__[1].__subclasses__() }}",
        "${{ inputs.__class__ }}",
        "${{ inputs | attr('__class__') }}",
        "${{ lipsum.__globals__ }}",
        "${{ inputs.formats.append('x') }}",
        "${{ 'a' * 100000000 }}",
        "${{ 2 ** 100000 }}",
    ],
)
def test_sandbox_refuses_escapes(template: str) -> None:
    with pytest.raises(ExpressionError) as info:
        render(template, SCOPE)
    assert "not allowed" in str(info.value)
    assert SCOPE["inputs"]["formats"] == ["mp4", "webm"]


def test_evaluate_condition() -> None:
    assert evaluate_condition(True, SCOPE) is True
    assert evaluate_condition(False, SCOPE) is False
    assert evaluate_condition("${{ inputs.count == 3 }}", SCOPE) is True
    assert evaluate_condition("inputs.count == 4", SCOPE) is False
    assert evaluate_condition("${{ inputs.formats }}", SCOPE) is True
    assert evaluate_condition("${{ [] }}", SCOPE) is False
    assert evaluate_condition("steps.fetch.status == 'SUCCEEDED'", SCOPE) is True
    assert evaluate_condition("${{ inputs.deliver | default(true) }}", SCOPE) is True
    with pytest.raises(ExpressionError, match="single expression"):
        evaluate_condition("x ${{ true }}", SCOPE)
    with pytest.raises(ExpressionError, match="has no attribute 'deliver'"):
        evaluate_condition("inputs.deliver", SCOPE)


def test_references() -> None:
    assert references("${{ steps.fetch.outputs.path }}") == {("steps", "fetch")}
    assert references("${{ inputs['source'] }}") == {("inputs", "source")}
    assert references("${{ item }}") == {("item", None)}
    assert references(
        {
            "a": ["x ${{ inputs.a ~ steps['b-c'].outputs }}", "${{ item.name }}"],
            "b": "${{ steps[run.key] | default(vars.v) }}",
            "c": "no ${ { expression } }",
            "d": 3,
        }
    ) == {
        ("inputs", "a"),
        ("steps", "b-c"),
        ("item", "name"),
        ("steps", None),
        ("run", "key"),
        ("vars", "v"),
    }
    assert references("${{ steps. }}") == set()  # does not parse: syntax_errors reports it


def test_references_without_guarded() -> None:
    template = "${{ inputs.a | default(1) }} ${{ inputs.b is defined }} ${{ inputs.c }}"
    assert references(template, include_guarded=False) == {("inputs", "c")}
    both = "${{ inputs.a | default(1) }} ${{ inputs.a }}"
    assert references(both, include_guarded=False) == {("inputs", "a")}
    assert references("${{ inputs.a.b | default(1) }}", include_guarded=False) == {("inputs", "a")}


def test_syntax_errors() -> None:
    assert syntax_errors({"a": "${{ inputs.ok }}", "b": ["plain", 3]}) == []
    assert syntax_errors("${{ inputs. }}") == [
        "invalid expression ${{ inputs. }}: expected name or number"
    ]
    assert syntax_errors("a ${{ b") == ["unterminated '${{' in '${{ b'"]
    assert syntax_errors("${{ }}") == ["invalid expression ${{ }}: empty expression"]
    assert syntax_errors("${{ x | no_such_filter }}") == [
        "invalid expression ${{ x | no_such_filter }}: No filter named 'no_such_filter'."
    ]
    assert syntax_errors(["${{ 1 + }} ${{ 2", "${{ ok }}"]) == [
        "invalid expression ${{ 1 + }}: unexpected 'end of template'",
        "unterminated '${{' in '${{ 2'",
    ]


def test_unterminated_expression_fails_to_render() -> None:
    with pytest.raises(ExpressionError, match="unterminated"):
        render("a ${{ b", SCOPE)


def test_helpers() -> None:
    assert is_expression(" ${{ a }} ")
    assert not is_expression("x ${{ a }}")
    assert not is_expression(3)
    assert contains_expression({"a": ["x", "y ${{ z }}"]})
    assert not contains_expression({"a": ["x"], "b": 1})
    assert expressions_in(["${{ a }}-${{ b.c }}", {"k": "${{ d }}"}]) == ["a", "b.c", "d"]
    assert compile_expression("1 + 1") is compile_expression("1 + 1")
    with pytest.raises(ExpressionError, match="expected name or number"):
        compile_expression("a.")
