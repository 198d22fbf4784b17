"""Properties of the workflow definition entry point: any text, and definitions that are
nearly right, load or are refused with ``DefinitionError`` problems that have a path, a
line and a stable code; what loads can be stored (JSON) and loads again the same; alias
bombs, ``!!python`` tags and huge documents are refused."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
import pytest
import yaml
from fuzzing import PROPERTIES
from hypothesis import given
from hypothesis import strategies as st

from legato.model.definition import WorkflowDefinition
from legato.model.definition_loading import definition_from_data, load_definition
from legato.model.definition_problems import DefinitionError
from legato.model.durations import parse_duration

CODES = {
    "bad_duration", "bad_expression", "cycle", "duplicate_key", "duplicate_step", "invalid",
    "item_outside_foreach", "missing", "not_upstream", "syntax", "too_large", "unknown_field",
    "unknown_input", "unknown_kind", "unknown_name", "unknown_step",
}  # fmt: skip


_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def load_or_problems(text: str | bytes, *, lines_known: bool = False) -> Any:
    """The definition, checked to be storable, or its problems, checked to be well formed."""
    try:
        wf = load_definition(text)
    except DefinitionError as exc:
        assert exc.problems
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        # YAML's line breaks; a problem at the end of the text may be one line further.
        count = len(_LINE_BREAK.split(text)) + 1
        for problem in exc.problems:
            assert problem.code in CODES, problem
            assert isinstance(problem.path, str) and problem.message, problem
            if problem.line is not None:
                assert 1 <= problem.line <= count, problem
            elif lines_known:
                assert problem.code == "too_large", problem
        return exc
    assert_storable(wf)
    return wf


def assert_storable(wf: WorkflowDefinition) -> None:
    canonical = wf.canonical()
    stored = orjson.loads(orjson.dumps(canonical))
    assert definition_from_data(stored).canonical() == stored
    assert len(wf.content_hash()) == 64


# -- definitions that are nearly right --------------------------------------------------------

# What a definition may hold: text without NUL (JSONB cannot store it) nor lone surrogates.
_texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=5)
_ids = st.from_regex(r"[a-z][a-z0-9_-]{0,5}", fullmatch=True)
_durations = st.sampled_from([1, 0.5, "500ms", "2s", "1h30m", "10m", "1d"])
_expressions = st.sampled_from(
    [
        "${{ inputs.who }}",
        "${{ inputs.n * 2 }}",
        "${{ run.id }}",
        "${{ vars.x | default('y') }}",
        "hello ${{ inputs.who | upper }}!",
    ]
)
_args = st.dictionaries(
    st.sampled_from(["a", "b", "name", "n"]),
    st.one_of(st.integers(-5, 5), _texts, _expressions),
    max_size=2,
)
_withs = {
    "python": _args.map(lambda a: {"function": "legato_examples.hello:greet", **a}),
    "shell": st.lists(st.one_of(_texts, _expressions), min_size=1, max_size=3).map(
        lambda argv: {"argv": argv}
    ),
    "http": st.just({"url": "https://example.com/", "method": "GET"}),
    "sleep": _durations.map(lambda d: {"duration": d}),
    "approval": st.just({"message": "ok?"}),
    "workflow": st.just({"workflow": "other", "inputs": {}}),
}


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid definition as data: steps in order, each needing some of those before it."""
    ids = draw(st.lists(_ids, min_size=1, max_size=4, unique=True))
    steps = []
    for index, step_id in enumerate(ids):
        kind = draw(st.sampled_from(sorted(_withs)))
        step: dict[str, Any] = {"id": step_id, "uses": kind, "with": draw(_withs[kind])}
        if index and draw(st.booleans()):
            step["needs"] = draw(st.lists(st.sampled_from(ids[:index]), max_size=2, unique=True))
        if draw(st.booleans()):
            step["timeout"] = draw(_durations)
        if draw(st.booleans()):
            step["retry"] = {"attempts": draw(st.integers(1, 5)), "initial": draw(_durations)}
        if draw(st.booleans()):
            step["if"] = draw(st.sampled_from(["${{ inputs.n > 1 }}", "inputs.who", True]))
        steps.append(step)
    return {
        "name": draw(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,8}", fullmatch=True)),
        "inputs": {"who": {"type": "string", "default": "world"}, "n": {"type": "integer"}},
        "steps": steps,
        "outputs": {"last": f"${{{{ steps[{ids[-1]!r}].outputs }}}}"}
        if draw(st.booleans())
        else {},
    }


NASTY_VALUES = [
    None,
    True,
    0,
    -1,
    1.5,
    "",
    "x",
    [],
    {},
    [[]],
    {"": None},
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**40,
    float("inf"),
    float("nan"),
    "\x00",
    "a\x00b",
    "${{",
    "}}",
    "${{ }}",
    "${{ steps }}",
    "${{ item }}",
    "${{ inputs.missing }}",
    "${{ steps.nope.outputs }}",
    "${{ x.__class__ }}",
    "${{ 1 + }}",
    "${{ a | nofilter }}",
    "10m",
    "-1s",
    "1e400",
    "9" * 400 + "d",
    "1h1h",
    "0",
    "a" * 300,
    ["a", ["b", ["c"]]],
    {"steps": []},
]  # fmt: skip
NASTY = st.one_of(
    st.sampled_from(NASTY_VALUES),
    st.text(max_size=10),
    st.integers(),
    st.floats(),
)


@st.composite
def near_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid definition with a few places changed: a value replaced, a key removed or
    added, a list emptied."""
    data = draw(definitions())
    for _ in range(draw(st.integers(1, 3))):
        parent, key = _pick(draw, data)
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            parent.pop(key, None)
        elif action == "add" and isinstance(parent, dict):
            extra = draw(st.sampled_from(["extra", "id", "needs", "foreach", "steps", "uses"]))
            parent[extra] = draw(NASTY)
        else:
            parent[key] = draw(NASTY)
    return data


def _pick(draw: st.DrawFn, data: Any) -> tuple[Any, Any]:
    """A container in ``data`` and one of its keys (or indexes), walking down at random."""
    parent, key = data, draw(st.sampled_from(sorted(data)))
    while isinstance(parent[key], dict | list) and parent[key] and draw(st.booleans()):
        parent = parent[key]
        key = draw(
            st.sampled_from(sorted(parent) if isinstance(parent, dict) else range(len(parent)))
        )
    return parent, key


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@PROPERTIES
@given(st.text(max_size=300))
def test_any_text_loads_or_gives_problems(text: str) -> None:
    load_or_problems(text)


@PROPERTIES
@given(st.binary(max_size=300))
def test_any_bytes_load_or_give_problems(data: bytes) -> None:
    load_or_problems(data)


@PROPERTIES
@given(definitions())
def test_a_valid_definition_loads_from_yaml_and_json(data: dict[str, Any]) -> None:
    from_yaml = load_or_problems(as_yaml(data))
    from_json = load_or_problems(json.dumps(data, indent=2))
    assert isinstance(from_yaml, WorkflowDefinition), from_yaml
    assert from_json.canonical() == from_yaml.canonical()


@PROPERTIES
@given(near_definitions())
def test_a_nearly_valid_definition_loads_or_names_each_problem(data: dict[str, Any]) -> None:
    load_or_problems(as_yaml(data), lines_known=True)
    # JSON escapes characters beyond U+FFFF as surrogate pairs, which YAML cannot read back:
    # such a text's problems come without lines.
    load_or_problems(json.dumps(data, indent=2))


@PROPERTIES
@given(near_definitions())
def test_nearly_valid_data_validates_or_names_each_problem(data: dict[str, Any]) -> None:
    try:
        assert_storable(definition_from_data(data))
    except DefinitionError as exc:
        assert {p.code for p in exc.problems} <= CODES


FRAGMENTS = [
    "!!python/object/apply:os.system ['id']",
    "!!python/object/new:os.system ['id']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!python/object:__main__.X {}",
    '!!binary "/w=="',
    "!!timestamp 2001-13-01",
    "2001-02-30",
    "!!int " + "9" * 5000,
    "!!float nan",
    "!<tag:yaml.org,2002:python/none> ''",
    "!custom {}",
    "*undefined",
    "&anchor {a: 1}",
    "{? [a, b]: 1}",
    '"\\0"',
]


@PROPERTIES
@given(definitions(), st.data(), st.sampled_from(FRAGMENTS))
def test_a_yaml_fragment_anywhere_loads_or_gives_problems(
    data: dict[str, Any], choose: st.DataObject, fragment: str
) -> None:
    parent, key = _pick(choose.draw, data)
    parent[key] = "@@fragment@@"
    text = as_yaml(data).replace("'@@fragment@@'", fragment)
    result = load_or_problems(text)
    if fragment.startswith(("!!python", "!<tag:yaml.org,2002:python", "!!binary")):
        assert isinstance(result, DefinitionError)
        line = 1 + text.split(fragment)[0].count("\n")
        assert [(p.line, p.code) for p in result.problems] == [(line, "syntax")]


@PROPERTIES
@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none()))
def test_a_duration_is_finite_seconds_or_a_value_error(value: Any) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError:
        return
    assert math.isfinite(seconds) and seconds >= 0


# -- refused documents ------------------------------------------------------------------------


def problems_of(text: str) -> list[tuple[int | None, str, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    return [(p.line, p.path, p.code, p.message) for p in caught.value.problems]


@pytest.mark.parametrize("width", [2, 10])
def test_an_alias_bomb_is_refused(width: int) -> None:
    lines = ["a0: &a0 [x]"]
    for level in range(1, 25):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    text = "\n".join([*lines, "name: bomb", "steps: [*a24]", ""])
    assert problems_of(text) == [
        (None, "", "too_large", "the definition is too large (more than 100000 values)")
    ]


def test_a_huge_document_is_refused() -> None:
    text = "name: huge\nsteps:\n" + "- 1\n" * 100_001
    assert problems_of(text) == [
        (None, "", "too_large", "the definition is too large (more than 100000 values)")
    ]


BASE = """name: wf
inputs:
  n: {type: integer, default: 1}
steps:
  - id: a
    uses: python
    with: {function: "m:f", x: VALUE}
"""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            str(2**63),
            (7, "steps[0].with.x", "invalid", "integer out of range (at most 64 bits)"),
        ),
        (
            str(-(2**63) - 1),
            (7, "steps[0].with.x", "invalid", "integer out of range (at most 64 bits)"),
        ),
        (
            '"a\\0b"',
            (7, "steps[0].with.x", "invalid", "NUL characters and lone surrogates are not allowed"),
        ),
        (
            "9" * 5000,
            (
                7,
                "",
                "syntax",
                "invalid YAML: invalid value '" + "9" * 56 + "...: Exceeds the "
                "limit (4300 digits) for integer string conversion: value has 5000 digits; use "
                "sys.set_int_max_str_digits() to increase the limit",
            ),
        ),
        (
            "2001-13-14",
            (7, "", "syntax", "invalid YAML: invalid value '2001-13-14': month must be in 1..12"),
        ),
        (
            "!!binary /w==",
            (7, "", "syntax", "invalid YAML: binary values (!!binary) are not allowed"),
        ),
    ],
)
def test_what_could_not_be_stored_is_refused_with_its_line(
    value: str, expected: tuple[int, str, str, str]
) -> None:
    assert problems_of(BASE.replace("VALUE", value)) == [expected]


def test_json_escapes_of_lone_surrogates_and_nul_are_refused() -> None:
    data = json.loads(json.dumps(load_definition(BASE.replace("VALUE", "1")).canonical()))
    data["steps"][0]["with"]["x"] = "@"
    text = json.dumps(data).replace('"@"', '"\\ud800"')
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    assert [(p.path, p.code) for p in caught.value.problems] == [("steps[0].with.x", "invalid")]
    data["steps"][0]["with"]["k\x00"] = 1
    data["steps"][0]["with"]["x"] = 1
    with pytest.raises(DefinitionError) as caught:
        definition_from_data(data)
    assert ("steps[0].with", "NUL characters and lone surrogates are not allowed in keys") in [
        (p.path, p.message) for p in caught.value.problems
    ]


def test_a_duration_too_long_for_a_number_is_refused() -> None:
    text = "name: wf\nsteps:\n  - id: a\n    uses: sleep\n    with: {duration: 1}\n"
    text += "    timeout: " + "9" * 400 + "d\n"
    [(line, path, code, message)] = problems_of(text)
    assert (line, path, code) == (6, "steps[0].timeout", "bad_duration")
    assert message == f"invalid duration {'9' * 40!r}: too long"
