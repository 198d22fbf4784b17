"""The dashboard's start form, made from a workflow's declared inputs."""

from __future__ import annotations

from legato.model.definition_loading import load_definition
from legato.web.forms import input_fields

SOURCE = """
name: typed
inputs:
  who: {type: string, default: world, description: who to greet}
  count: {type: integer}
  ratio: {type: number, default: 0.5}
  loud: {type: boolean, default: true}
  tags: {type: array, default: [a, b]}
  extra: {type: object}
  anything: {}
steps:
  - id: a
    uses: python
    with: {function: "demo_steps:noop"}
"""


def test_one_field_per_input_with_its_control_default_and_requiredness() -> None:
    fields = input_fields(load_definition(SOURCE).canonical())
    assert [(f["name"], f["control"], f["default"], f["required"]) for f in fields] == [
        ("who", "text", "world", False),
        ("count", "number", "", True),
        ("ratio", "number", "0.5", False),
        ("loud", "checkbox", True, False),
        ("tags", "json", '["a", "b"]', False),
        ("extra", "json", "", True),
        ("anything", "json", "", True),
    ]
    assert fields[0]["description"] == "who to greet"
    assert input_fields({}) == []
