"""Loading a workflow definition from YAML or JSON text: parsed safely, every value's source
line kept, and every problem (schema and checks) reported at once with its path and line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from legato.model.definition import WorkflowDefinition
from legato.model.definition_checks import (
    FunctionCheck,
    function_issues,
    semantic_issues,
    unstorable_issues,
)
from legato.model.definition_problems import (
    DefinitionError,
    FieldPath,
    Issue,
    Problem,
    format_path,
    short_repr,
)
from legato.model.schema_errors import DEFINITION_FIELDS, validation_issues

__all__ = ["definition_from_data", "load_definition"]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe loader, its scalars that resolve but cannot be built (``2001-13-14``, an
    integer of 5,000 digits) refused as YAML errors with their line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value {short_repr(node.value)}: {exc}", node.start_mark
            ) from None

    def construct_yaml_binary(self, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None, None, "binary values (!!binary) are not allowed", node.start_mark
        )


_Loader.add_constructor("tag:yaml.org,2002:binary", _Loader.construct_yaml_binary)


_MAX_NODES = 100_000


def _too_large(what: str) -> DefinitionError:
    return DefinitionError([Problem("", None, f"the definition is {what}", "too_large")])


def _line_map(node: yaml.Node) -> tuple[dict[FieldPath, int], list[Issue]]:
    """Source line of every path in the YAML node tree, and keys given twice."""
    lines: dict[FieldPath, int] = {(): node.start_mark.line + 1}
    duplicates: list[Issue] = []
    todo: list[tuple[yaml.Node, FieldPath]] = [(node, ())]
    while todo:
        current, path = todo.pop()
        if len(lines) > _MAX_NODES:  # e.g. aliases expanding exponentially
            raise _too_large(f"too large (more than {_MAX_NODES} values)")
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in current.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = str(key_node.value)
                child = (*path, key)
                if key in seen:
                    duplicates.append((child, f"duplicate key {key!r}", "duplicate_key"))
                seen.add(key)
                lines[child] = key_node.start_mark.line + 1
                todo.append((value_node, child))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                lines[(*path, index)] = item.start_mark.line + 1
                todo.append((item, (*path, index)))
    return lines, duplicates


def _parse_text(text: str) -> tuple[Any, dict[FieldPath, int], list[Issue]]:
    json_data: Any = None
    is_json = text.lstrip().startswith(("{", "["))
    if is_json:
        try:
            json_data = json.loads(text)
        except ValueError:
            is_json = False
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return json_data, {}, []
        lines, duplicates = _line_map(node)
        data = json_data if is_json else loader.construct_document(node)
    except yaml.YAMLError as exc:
        if is_json:
            return json_data, {}, []
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        detail = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError([Problem("", line, f"invalid YAML: {detail}", "syntax")]) from None
    finally:
        loader.dispose()
    return data, lines, duplicates


def _line(path: FieldPath, lines: Mapping[FieldPath, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _build(
    data: Any,
    lines: Mapping[FieldPath, int],
    issues: list[Issue],
    check_function: FunctionCheck | None = None,
) -> WorkflowDefinition:
    wf: WorkflowDefinition | None = None
    if not isinstance(data, Mapping):
        issues = [((), "the top level must be a mapping with name and steps", "invalid")]
    else:
        issues = issues + unstorable_issues(data)
        try:
            wf = WorkflowDefinition.model_validate(data)
        except ValidationError as exc:
            issues = issues + validation_issues(exc, data, (), DEFINITION_FIELDS, False)
        else:
            issues = issues + semantic_issues(wf)
            if check_function is not None:
                issues += function_issues(wf, check_function)
    if issues or wf is None:
        problems = [Problem(format_path(p), _line(p, lines), m, c) for p, m, c in issues]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        raise DefinitionError(problems)
    return wf


def load_definition(
    text: str | bytes, *, check_function: FunctionCheck | None = None
) -> WorkflowDefinition:
    """Parse and validate a YAML or JSON definition; ``DefinitionError`` lists every problem
    (``check_function``: whether the namespace may call each ``uses: python`` function)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DefinitionError([Problem("", None, f"not UTF-8 text: {exc}", "syntax")]) from None
    try:
        data, lines, duplicates = _parse_text(text)
        return _build(data, lines, duplicates, check_function)
    except RecursionError:
        raise _too_large("nested too deeply") from None


def definition_from_data(data: Mapping[str, Any]) -> WorkflowDefinition:
    """Validate already-parsed data (e.g. a stored canonical definition); no line numbers."""
    return _build(data, {}, [])
