"""Pydantic's validation errors of a definition read as problems: each at the path that
exists in the data, with a plain message (``unknown field 'nedds' (did you mean 'needs'?)``)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from legato.model.definition import (
    PATTERN_HELP,
    InputSpec,
    RetryPolicy,
    StepDefinition,
    WorkflowDefinition,
)
from legato.model.definition_problems import FieldPath, Issue, short_repr

__all__ = ["DEFINITION_FIELDS", "field_names", "validation_issues"]


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}
_CODES = {"missing": "missing", "extra_forbidden": "unknown_field", "bad_duration": "bad_duration"}


def _message(err: ErrorDetails, fields: Sequence[str]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        name = str(err["loc"][-1])
        close = difflib.get_close_matches(name, fields, n=1)
        return f"unknown field {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return f"invalid value {short_repr(err['input'])}: " + PATTERN_HELP.get(
            pattern, f"must match {pattern}"
        )
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    bounds = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">"}
    if kind in bounds:
        bound = next(iter(ctx.values()), "?")
        return f"must be {bounds[kind]} {bound}"
    message = err["msg"].removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _resolve(loc: tuple[str | int, ...], data: Any, missing: bool) -> FieldPath:
    """The part of a pydantic ``loc`` that exists in ``data`` (dropping union member tags)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            if missing and isinstance(current, Mapping) and part == loc[-1]:
                path.append(part)
            break
        path.append(part)
    return tuple(path)


def validation_issues(
    exc: ValidationError,
    data: Any,
    prefix: FieldPath,
    fields: Sequence[str],
    skip_expressions: bool,
) -> list[Issue]:
    grouped: dict[FieldPath, list[tuple[str, str]]] = {}
    for err in exc.errors():
        if skip_expressions and isinstance(err["input"], str) and "${{" in err["input"]:
            continue
        path = prefix + _resolve(err["loc"], data, err["type"] == "missing")
        entry = (_message(err, fields), _CODES.get(err["type"], "invalid"))
        if entry not in grouped.setdefault(path, []):
            grouped[path].append(entry)
    issues: list[Issue] = []
    for path, entries in grouped.items():
        expected = [m.removeprefix("expected ") for m, _ in entries if m.startswith("expected ")]
        if len(expected) > 1:  # one error per member of a union: merge them
            entries = [("expected " + " or ".join(expected), "invalid")] + [
                e for e in entries if not e[0].startswith("expected ")
            ]
        issues.extend((path, message, code) for message, code in entries)
    return issues


def field_names(*models: type[BaseModel]) -> list[str]:
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


DEFINITION_FIELDS = field_names(WorkflowDefinition, StepDefinition, InputSpec, RetryPolicy)
