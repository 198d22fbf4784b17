"""The start form of a workflow, generated from its declared inputs."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["input_fields"]

#: the HTML control each declared type is entered with
_CONTROLS = {
    "string": "text",
    "integer": "number",
    "number": "number",
    "boolean": "checkbox",
    "array": "json",
    "object": "json",
    "any": "json",
}


def input_fields(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """One field per declared input: its name, type, control, default (as the control shows
    it), whether it is required, and its description."""
    fields = []
    for name, spec in (definition.get("inputs") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "any")
        control = _CONTROLS.get(kind, "json")
        has_default = "default" in spec
        default = spec.get("default")
        shown: str | bool
        if not has_default:
            shown = ""
        elif control == "json":
            shown = json.dumps(default)
        elif control == "checkbox":
            shown = bool(default)
        else:
            shown = "" if default is None else str(default)
        fields.append(
            {
                "name": name,
                "type": kind,
                "control": control,
                "default": shown,
                "required": not has_default,
                "description": spec.get("description", ""),
            }
        )
    return fields
