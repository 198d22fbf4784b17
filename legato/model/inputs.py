"""Check a run's inputs against the workflow's declared inputs, and fill in defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from legato.model.definition import WorkflowDefinition
from legato.model.json_values import json_problems
from legato.model.records import value_type

__all__ = ["InputError", "resolve_inputs"]

_ACCEPTS = {
    "string": {"string"},
    "integer": {"integer"},
    "number": {"integer", "number"},
    "boolean": {"boolean"},
    "array": {"array"},
    "object": {"object"},
}


class InputError(ValueError):
    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['path']}: {p['message']}" for p in problems))


def resolve_inputs(definition: WorkflowDefinition, given: Mapping[str, Any]) -> dict[str, Any]:
    problems: list[dict[str, str]] = []
    declared = definition.inputs
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(
                {
                    "path": f"inputs.{name}",
                    "code": "unknown_input",
                    "message": f"unknown input '{name}' (declared: {known})",
                }
            )
    resolved: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            value = given[name]
            problems.extend(json_problems(value, f"inputs.{name}"))
            wanted = _ACCEPTS.get(spec.type)
            if wanted is not None and value_type(value) not in wanted:
                problems.append(
                    {
                        "path": f"inputs.{name}",
                        "code": "wrong_type",
                        "message": f"expected {spec.type}, got {value_type(value)}",
                    }
                )
            resolved[name] = value
        elif spec.required:
            problems.append(
                {
                    "path": f"inputs.{name}",
                    "code": "missing",
                    "message": f"input '{name}' is required",
                }
            )
        else:
            resolved[name] = spec.default
    if problems:
        raise InputError(problems)
    return resolved
