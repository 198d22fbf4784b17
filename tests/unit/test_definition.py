from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from legato.model.definition import InputSpec, RetryPolicy, StepDefinition, json_schema
from legato.model.definition_loading import definition_from_data, load_definition
from legato.model.definition_problems import DefinitionError, Problem
from legato.model.durations import format_duration, parse_duration
from legato.model.step_kinds import KIND_SCHEMAS, PythonWith, ShellWith, parse_with, register_kind

EXAMPLE = """\
name: publish-video
description: Transcode a source to several formats and deliver a package
inputs:
  source: {type: string}
  formats: {type: array, default: [mp4, webm]}
steps:
  - id: fetch
    name: Download source
    uses: shell
    with: {argv: [fetch-media, "${{ inputs.source }}"]}
    timeout: 10m
    retry: {attempts: 3, backoff: exponential, initial: 2s, max: 1m}
  - id: transcode
    name: Transcode
    needs: [fetch]
    foreach: ${{ inputs.formats }}
    max_parallel: 4
    uses: python
    with: {function: "media.tasks:transcode", format: "${{ item }}"}
  - id: package
    name: Create faspex package
    type: FaspexDelivery          # free label shown by dialects as the step type
    needs: [transcode]
    uses: workflow
    with: {workflow: faspex-delivery, inputs: {files: "${{ steps.transcode.outputs }}"}}
    if: ${{ inputs.deliver | default(true) }}
outputs:
  package_id: ${{ steps.package.outputs.package_id }}
"""


def problems_of(text: str | dict[str, Any]) -> list[tuple[int | None, str, str, str]]:
    with pytest.raises(DefinitionError) as info:
        if isinstance(text, str):
            load_definition(text)
        else:
            definition_from_data(text)
    return [(p.line, p.path, p.code, p.message) for p in info.value.problems]


def workflow(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "wf", "steps": list(steps), **extra}


# --- loading and the model --------------------------------------------------------------------


def test_example_loads_with_parsed_values() -> None:
    wf = load_definition(EXAMPLE)
    assert wf.name == "publish-video"
    assert [s.id for s in wf.steps] == ["fetch", "transcode", "package"]
    fetch, transcode, package = wf.steps
    assert fetch.timeout == 600.0
    assert fetch.retry == RetryPolicy(attempts=3, backoff="exponential", initial=2.0, max=60.0)
    assert fetch.max_attempts == 3
    assert fetch.display_name == "Download source"
    assert fetch.with_ == {"argv": ["fetch-media", "${{ inputs.source }}"]}
    assert transcode.foreach == "${{ inputs.formats }}"
    assert transcode.max_parallel == 4
    assert package.type == "FaspexDelivery"
    assert package.if_ == "${{ inputs.deliver | default(true) }}"
    assert wf.inputs["source"].required is True
    assert wf.inputs["formats"].required is False
    assert wf.inputs["formats"].default == ["mp4", "webm"]
    assert wf.step("package") is package
    with pytest.raises(KeyError):
        wf.step("nope")


def test_valid_definition_round_trips() -> None:
    wf = load_definition(EXAMPLE)
    canonical = wf.canonical()
    assert canonical["steps"][0] == {
        "id": "fetch",
        "name": "Download source",
        "uses": "shell",
        "with": {"argv": ["fetch-media", "${{ inputs.source }}"]},
        "needs": [],
        "timeout": 600.0,
        "retry": {
            "attempts": 3,
            "backoff": "exponential",
            "initial": 2.0,
            "max": 60.0,
            "jitter": 0.0,
        },
        "description": "",
    }
    assert canonical["inputs"] == {
        "source": {"type": "string", "description": ""},
        "formats": {"type": "array", "default": ["mp4", "webm"], "description": ""},
    }
    again = definition_from_data(canonical)
    assert again == wf
    assert again.canonical() == canonical
    assert again.content_hash() == wf.content_hash()
    assert len(wf.content_hash()) == 64
    # the same definition written as JSON hashes the same
    assert load_definition(json.dumps(canonical, indent=2)).content_hash() == wf.content_hash()
    assert load_definition(EXAMPLE.encode()).content_hash() == wf.content_hash()


def test_content_hash_changes_with_content() -> None:
    wf = load_definition(EXAMPLE)
    changed = load_definition(EXAMPLE.replace("max_parallel: 4", "max_parallel: 5"))
    assert changed.content_hash() != wf.content_hash()
    equivalent = load_definition(EXAMPLE.replace("timeout: 10m", "timeout: 600"))
    assert equivalent.content_hash() == wf.content_hash()


def test_explicit_null_default_is_kept() -> None:
    wf = definition_from_data(
        workflow({"id": "a", "uses": "approval"}, inputs={"x": {"default": None}, "y": None})
    )
    assert wf.inputs["x"].required is False
    assert wf.inputs["y"].required is True
    assert wf.canonical()["inputs"] == {
        "x": {"type": "any", "default": None, "description": ""},
        "y": {"type": "any", "description": ""},
    }
    assert definition_from_data(wf.canonical()).inputs["x"].required is False


def test_input_spec_types() -> None:
    assert InputSpec(type="integer").accepts(3)
    assert not InputSpec(type="integer").accepts(True)
    assert InputSpec(type="number").accepts(2.5)
    assert not InputSpec(type="string").accepts(3)
    assert InputSpec(type="any").accepts(object())
    assert problems_of(
        workflow({"id": "a", "uses": "approval"}, inputs={"n": {"type": "integer", "default": "x"}})
    ) == [(None, "inputs.n", "invalid", "default 'x' is not of type integer")]


def test_diamond_topological_order_and_upstream() -> None:
    wf = definition_from_data(
        workflow(
            {"id": "d", "uses": "approval", "needs": ["b", "c"]},
            {"id": "c", "uses": "approval", "needs": ["a"]},
            {"id": "b", "uses": "approval", "needs": "a"},
            {"id": "a", "uses": "approval"},
        )
    )
    assert wf.topological_order() == ["a", "c", "b", "d"]
    assert wf.upstream("d") == {"a", "b", "c"}
    assert wf.upstream("b") == {"a"}
    assert wf.upstream("a") == set()
    assert wf.step("b").needs == ["a"]


def test_step_constructed_in_python() -> None:
    step = StepDefinition(id="s", uses="shell", with_={"argv": ["true"]}, if_="${{ true }}")
    assert step.model_dump(by_alias=True, exclude_none=True)["with"] == {"argv": ["true"]}
    assert step.display_name == "s"
    assert step.max_attempts == 1


# --- problems with lines ----------------------------------------------------------------------

CYCLE = """\
name: loop
steps:
  - id: a
    uses: approval
    needs: [c]
  - id: b
    uses: approval
    needs:
      - a
  - id: c
    uses: approval
    needs: [b]
"""


def test_cycle_names_path_and_line() -> None:
    assert problems_of(CYCLE) == [
        (5, "steps[0].needs[0]", "cycle", "cycle in needs: a -> c -> b -> a")
    ]
    with pytest.raises(DefinitionError) as info:
        load_definition(CYCLE)
    assert str(info.value) == "line 5: steps[0].needs[0]: cycle in needs: a -> c -> b -> a"
    assert info.value.problems[0].as_dict() == {
        "path": "steps[0].needs[0]",
        "line": 5,
        "message": "cycle in needs: a -> c -> b -> a",
        "code": "cycle",
    }


def test_self_cycle_and_unknown_need() -> None:
    text = """\
name: wf
steps:
  - id: a
    uses: approval
    needs: [a, x]
"""
    assert problems_of(text) == [
        (5, "steps[0].needs[1]", "unknown_step", "unknown step 'x'"),
        (5, "steps[0].needs[0]", "cycle", "cycle in needs: a -> a"),
    ]


def test_all_semantic_problems_are_collected_in_line_order() -> None:
    text = """\
name: wf
inputs:
  source: {type: string}
steps:
  - id: first
    uses: shell
    with:
      argv: [echo, "${{ steps.second.outputs.x }}"]
  - id: second
    uses: pyhton
    with: {function: "m:f"}
  - id: third
    uses: sleep
    needs: [first]
    with:
      duration: "${{ inputs.nope }}"
    if: steps.missing.status == 'FAILED'
  - id: first
    uses: approval
    with: {message: "${{ item }} ${{ inputs. }}"}
outputs:
  x: ${{ steps.third.outputs }}
  y: ${{ steps.nope.outputs }}
"""
    assert problems_of(text) == [
        (
            8,
            "steps[0].with.argv[1]",
            "not_upstream",
            "step 'second' is not upstream of 'first'; add it to needs",
        ),
        (
            10,
            "steps[1].uses",
            "unknown_kind",
            "unknown kind 'pyhton'; known: approval, group, http, python, shell, sleep, workflow",
        ),
        (16, "steps[2].with.duration", "unknown_input", "unknown input 'nope' (declared: source)"),
        (17, "steps[2].if", "unknown_step", "unknown step 'missing'"),
        (18, "steps[3].id", "duplicate_step", "duplicate step id 'first' (see steps[0])"),
        (
            20,
            "steps[3].with.message",
            "bad_expression",
            "invalid expression ${{ inputs. }}: expected name or number",
        ),
        (
            20,
            "steps[3].with.message",
            "item_outside_foreach",
            "'item' is only defined in the 'with' of a step with foreach",
        ),
        (23, "outputs.y", "unknown_step", "unknown step 'nope'"),
    ]


def test_structural_problems() -> None:
    text = """\
name: Bad_Name
steps:
  - id: a
    uses: shell
    nedds: [b]
    timeout: 10 minutes
    retry:
      attempts: 0
      backoff: linear
      jitter: 1.5
  - id: 9lives
    with: {}
    foreach: 3
"""
    assert problems_of(text) == [
        (
            1,
            "name",
            "invalid",
            "invalid value 'Bad_Name': use lowercase letters, digits, '_', '.' and '-', starting"
            " with a letter or digit (max 100)",
        ),
        (5, "steps[0].nedds", "unknown_field", "unknown field 'nedds' (did you mean 'needs'?)"),
        (
            6,
            "steps[0].timeout",
            "bad_duration",
            "invalid duration '10 minutes': unknown unit 'minutes' (use d, h, m, s, ms)",
        ),
        (8, "steps[0].retry.attempts", "invalid", "must be >= 1"),
        (9, "steps[0].retry.backoff", "invalid", "must be 'fixed' or 'exponential'"),
        (10, "steps[0].retry.jitter", "invalid", "must be <= 1.0"),
        (
            11,
            "steps[1].id",
            "invalid",
            "invalid value '9lives': use letters, digits, '_' and '-', starting with a letter or"
            " '_' (max 63)",
        ),
        (11, "steps[1].uses", "missing", "field required"),
        (13, "steps[1].foreach", "invalid", "expected a string or a list"),
    ]


def test_shell_argv_string_is_refused() -> None:
    step = {"id": "a", "uses": "shell", "with": {"argv": "rm -rf /tmp/x"}}
    assert problems_of(workflow(step)) == [
        (
            None,
            "steps[0].with.argv",
            "invalid",
            "argv must be a list of strings such as [echo, hello], not a string",
        )
    ]
    step = {"id": "a", "uses": "shell", "with": {"argv": [], "env": {"A": 1}, "x": 1}}
    assert problems_of(workflow(step)) == [
        (None, "steps[0].with.argv", "invalid", "must have at least 1 item(s)"),
        (None, "steps[0].with.x", "unknown_field", "unknown field 'x'"),
    ]
    # an expression may stand for the whole list
    ok = {"id": "a", "uses": "shell", "with": {"argv": "${{ inputs.cmd }}"}}
    definition_from_data(workflow(ok, inputs={"cmd": {"type": "array"}}))


def test_kind_with_validation() -> None:
    wf = workflow(
        {"id": "p", "uses": "python", "with": {"function": "not a path", "arg": 1}},
        {"id": "h", "uses": "http", "with": {"method": "FETCH"}},
        {"id": "w", "uses": "workflow", "with": {"version": "${{ inputs.v }}"}},
        {"id": "s", "uses": "sleep", "with": {"duration": "forever"}},
        {"id": "t", "uses": "sleep", "with": {"duration": "${{ inputs.v }}"}},
        inputs={"v": {}},
    )
    assert problems_of(wf) == [
        (
            None,
            "steps[0].with.function",
            "invalid",
            "invalid value 'not a path': expected an import path such as 'package.module:function'",
        ),
        (None, "steps[1].with.url", "missing", "field required"),
        (
            None,
            "steps[1].with.method",
            "invalid",
            "must be 'GET', 'POST', 'PUT', 'PATCH', 'DELETE' or 'HEAD'",
        ),
        (None, "steps[2].with.workflow", "missing", "field required"),
        (
            None,
            "steps[3].with.duration",
            "bad_duration",
            "invalid duration 'forever': expected e.g. '500ms', '2s', '10m', '1h30m' or '1d'",
        ),
    ]


def test_parse_with_after_rendering() -> None:
    shell = parse_with("shell", {"argv": ["sleep", 5], "env": {"N": 2}})
    assert isinstance(shell, ShellWith)
    assert shell.argv == ["sleep", "5"]
    assert shell.env == {"N": "2"}
    python = parse_with("python", {"function": "media.tasks:transcode", "format": "mp4"})
    assert isinstance(python, PythonWith)
    assert python.kwargs == {"format": "mp4"}


def test_expression_checks() -> None:
    wf = workflow(
        {"id": "a", "uses": "approval"},
        {"id": "b", "uses": "approval", "needs": ["a"]},
        {
            "id": "c",
            "uses": "approval",
            "needs": ["b"],
            "with": {
                "message": "${{ steps.a.outputs.x }} ${{ inputs.deliver | default(1) }}"
                " ${{ vars.v }} ${{ run.id }} ${{ range(2) }} ${{ inputs['x'] is defined }}"
            },
            "if": "${{ steps.b.status == 'SUCCEEDED' }}",
        },
        {"id": "d", "uses": "approval", "with": {"message": "${{ steps.d.outputs }} ${{ foo }}"}},
        {"id": "e-f", "uses": "approval"},
        {"id": "g", "uses": "approval", "needs": ["e-f"], "with": {"message": "${{ steps.e-f }}"}},
        {"id": "h", "uses": "approval", "foreach": [1, 2], "if": "${{ item }}"},
        {"id": "i", "uses": "approval", "if": "x ${{ true }}"},
    )
    use = "(use inputs, item, run, steps, vars)"
    item_only = "'item' is only defined in the 'with' of a step with foreach"
    assert [(path, code, message) for _, path, code, message in problems_of(wf)] == [
        ("steps[3].with.message", "unknown_name", f"unknown name 'foo' {use}"),
        ("steps[3].with.message", "not_upstream", "step 'd' cannot refer to itself"),
        ("steps[5].with.message", "unknown_name", f"unknown name 'f' {use}"),
        (
            "steps[5].with.message",
            "unknown_step",
            "unknown step 'e' (for an id with '-', write steps['e-f'])",
        ),
        ("steps[6].if", "item_outside_foreach", item_only),
        ("steps[7].if", "bad_expression", "a condition must be a single ${{ }} expression"),
    ]


def test_foreach_must_be_list_or_expression() -> None:
    wf = workflow(
        {"id": "a", "uses": "approval", "foreach": "a,b"},
        {"id": "b", "uses": "approval", "foreach": "${{ item }}"},
        {"id": "c", "uses": "approval", "foreach": ["${{ item }}"]},
    )
    assert [(path, code) for _, path, code, _ in problems_of(wf)] == [
        ("steps[0].foreach", "invalid"),
        ("steps[1].foreach", "item_outside_foreach"),
        ("steps[2].foreach[0]", "item_outside_foreach"),
    ]


def test_json_text_gives_line_numbers() -> None:
    text = """{
  "name": "wf",
  "steps": [
    {"id": "a", "uses": "approval"},
    {
      "id": "b",
      "uses": "approval",
      "needs": ["a", "zz"],
      "retry": {"attempts": 2, "initial": "soon"}
    }
  ]
}"""
    assert problems_of(text) == [
        (
            9,
            "steps[1].retry.initial",
            "bad_duration",
            "invalid duration 'soon': expected e.g. '500ms', '2s', '10m', '1h30m' or '1d'",
        ),
    ]
    assert problems_of(text.replace('"soon"', '"2s"')) == [
        (8, "steps[1].needs[1]", "unknown_step", "unknown step 'zz'")
    ]
    fixed = text.replace('"soon"', '"2s"').replace(', "zz"', "")
    assert problems_of(fixed.replace('"approval"}', '"approval", "if": "${{ nope }}"}')) == [
        (
            4,
            "steps[0].if",
            "unknown_name",
            "unknown name 'nope' (use inputs, item, run, steps, vars)",
        )
    ]


def test_syntax_and_shape_errors() -> None:
    assert problems_of("name: wf\nsteps:\n  - id: a\n    uses: [x\n") == [
        (5, "", "syntax", "invalid YAML: did not find expected ',' or ']'")
    ]
    assert problems_of("- a\n- b\n") == [
        (1, "", "invalid", "the top level must be a mapping with name and steps")
    ]
    assert problems_of("") == [
        (None, "", "invalid", "the top level must be a mapping with name and steps")
    ]
    assert problems_of("name: wf\nname: again\nsteps: []\n") == [
        (2, "name", "duplicate_key", "duplicate key 'name'"),
        (3, "steps", "invalid", "must have at least 1 item(s)"),
    ]
    assert problems_of("name: wf\nsteps: [{id: a, uses: approval}]\n---\nname: b\n") == [
        (3, "", "syntax", "invalid YAML: but found another document")
    ]


def test_problem_str_without_line() -> None:
    problem = Problem(path="steps[1].needs[0]", line=None, message="unknown step 'x'", code="c")
    assert str(problem) == "steps[1].needs[0]: unknown step 'x'"
    assert str(Problem(path="", line=3, message="bad", code="c")) == "line 3: bad"
    assert isinstance(DefinitionError([problem]), ValueError)


def test_register_kind() -> None:
    class NotifyWith(BaseModel):
        model_config = ConfigDict(extra="forbid")
        channel: str

    register_kind("notify", NotifyWith)
    try:
        register_kind("notify", NotifyWith)  # the same model again is fine
        with pytest.raises(ValueError, match="already registered"):
            register_kind("notify", ShellWith)
        definition_from_data(workflow({"id": "a", "uses": "notify", "with": {"channel": "c"}}))
        assert problems_of(workflow({"id": "a", "uses": "notify"})) == [
            (None, "steps[0].with.channel", "missing", "field required")
        ]
    finally:
        del KIND_SCHEMAS["notify"]


def test_json_schema() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["name", "steps"]
    assert schema["additionalProperties"] is False
    step = schema["$defs"]["StepDefinition"]["properties"]
    assert {"with", "if", "needs", "uses", "foreach"} <= set(step)
    timeout = step["timeout"]["anyOf"][0]["anyOf"]
    assert [t["type"] for t in timeout] == ["number", "string"]
    json.dumps(schema)


# --- retry ------------------------------------------------------------------------------------


def test_retry_delay_fixed() -> None:
    policy = RetryPolicy.model_validate({"attempts": 5, "backoff": "fixed", "initial": "3s"})
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [3.0, 3.0, 3.0, 3.0]


def test_retry_delay_exponential_and_cap() -> None:
    policy = RetryPolicy.model_validate({"attempts": 9, "initial": "2s", "max": "1m"})
    assert [policy.delay(n) for n in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert policy.delay(10_000) == 60.0
    assert RetryPolicy().delay(3) == 4.0
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        policy.delay(0)


def test_retry_delay_jitter_bounds() -> None:
    policy = RetryPolicy(initial=10.0, jitter=0.5, backoff="fixed")
    assert policy.delay(1, rand=0.0) == 5.0
    assert policy.delay(1, rand=0.5) == 10.0
    assert policy.delay(1, rand=0.75) == 12.5
    assert policy.delay(1, rand=0.999999) == pytest.approx(15.0, abs=1e-4)
    capped = RetryPolicy(initial=10.0, max=20.0, jitter=0.2)
    assert capped.delay(4, rand=0.0) == 16.0
    assert capped.delay(4, rand=0.5) == 20.0


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (5, 5.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1.5s", 1.5),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1d", 86400.0),
        ("2s500ms", 2.5),
        ("0s", 0.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "invalid duration '': empty"),
        ("-5s", "invalid duration '-5s': must not be negative"),
        (-1, "invalid duration -1: must not be negative"),
        ("5y", "invalid duration '5y': unknown unit 'y' (use d, h, m, s, ms)"),
        ("30m1h", "invalid duration '30m1h': units must go from largest to smallest, once each"),
        ("m", "invalid duration 'm': expected e.g. '500ms', '2s', '10m', '1h30m' or '1d'"),
        (True, "invalid duration True: expected a number of seconds or e.g. '10m'"),
        (math.inf, "invalid duration inf: must be a finite number"),
    ],
)
def test_parse_duration_errors(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (1.5, "1.5s"), (90, "1m30s"), (3600, "1h"), (90061, "1d1h1m1s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_yaml_loader_is_safe() -> None:
    text = "name: wf\nsteps: !!python/object/apply:os.system [echo]\n"
    assert problems_of(text) == [
        (
            2,
            "",
            "syntax",
            "invalid YAML: could not determine a constructor for the tag"
            " 'tag:yaml.org,2002:python/object/apply:os.system'",
        )
    ]


def test_groups_nest_steps_with_their_own_needs_and_checks() -> None:
    text = """name: g
steps:
  - id: first
    uses: python
    with: {function: "m:f"}
  - id: grp
    uses: group
    needs: [first]
    steps:
      - id: inner
        uses: python
        with: {function: "m:f", x: "${{ steps.first.outputs.x }}"}
      - id: inner2
        needs: [nope]
        uses: python
        with: {function: "m:f"}
  - id: plain
    uses: python
    with: {function: "m:f"}
    steps:
      - {id: x, uses: python, with: {function: "m:f"}}
"""
    with pytest.raises(DefinitionError) as exc:
        load_definition(text)
    assert [(p.path, p.line, p.code) for p in exc.value.problems] == [
        ("steps[1].steps[1].needs[0]", 14, "unknown_step"),
        ("steps[2].steps", 20, "invalid"),
    ]
    ok = load_definition(text.replace("[nope]", "[inner]").split("  - id: plain")[0])
    assert ok.step("inner2").needs == ["inner"]
