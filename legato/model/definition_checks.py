"""The checks of a definition beyond its schema: step ids, needs and their cycles, what each
expression refers to (upstream steps, declared inputs, ``item`` under foreach), groups, values
the store could not keep, and which ``uses: python`` functions a namespace may call."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from legato.model import expressions as ex
from legato.model.definition import FUNCTION_PATTERN, StepDefinition, WorkflowDefinition
from legato.model.definition_problems import FieldPath, Issue, format_path
from legato.model.schema_errors import field_names, validation_issues
from legato.model.step_kinds import KIND_SCHEMAS
from legato.model.step_modules import python_functions

__all__ = ["FunctionCheck", "function_issues", "semantic_issues", "unstorable_issues"]


def semantic_issues(
    wf: WorkflowDefinition, prefix: FieldPath = (), outer: frozenset[str] = frozenset()
) -> list[Issue]:
    """The checks of one level of steps; a group's steps are checked as a level of their own,
    with the steps visible around the group (``outer``) allowed in their expressions."""
    if not prefix:
        issues = _duplicate_ids_across_levels(wf)
        if issues:
            return issues
    issues = []
    ids: dict[str, int] = {}
    for i, step in enumerate(wf.steps):
        if step.id in ids:
            first = f"steps[{ids[step.id]}]"
            issues.append(
                (
                    ("steps", i, "id"),
                    f"duplicate step id {step.id!r} (see {first})",
                    "duplicate_step",
                )
            )
        else:
            ids[step.id] = i
    for i, step in enumerate(wf.steps):
        for k, need in enumerate(step.needs):
            if need not in ids:
                issues.append((("steps", i, "needs", k), _unknown_step(need, ids), "unknown_step"))
    issues += _cycle_issues(wf, ids)
    upstream = _Upstream(wf)
    for i, step in enumerate(wf.steps):
        issues += _step_issues(wf, ids, upstream, i, step, outer)
        if step.uses == "group" or step.steps is not None:
            issues += _group_issues(wf, step, ("steps", i), outer | upstream(step.id))
    if not prefix:
        issues += _expression_issues(wf, ids, upstream, wf.outputs, ("outputs",), None, False)
    return issues  # paths relative to this level


def _group_issues(
    wf: WorkflowDefinition, step: StepDefinition, here: FieldPath, outer: frozenset[str]
) -> list[Issue]:
    """A group's own rules, then its steps checked as a level (paths under ``here``)."""
    if step.uses != "group":
        if step.steps is not None:
            return [((*here, "steps"), "only a step with 'uses: group' has steps", "invalid")]
        return []
    if not step.steps:
        return [((*here, "steps"), "a group needs its steps", "missing")]
    if step.foreach is not None:
        return [((*here, "foreach"), "a group cannot have foreach", "invalid")]
    level = wf.model_copy(update={"steps": step.steps, "outputs": {}})
    return [((*here, *path), m, c) for path, m, c in semantic_issues(level, here, outer)]


def _duplicate_ids_across_levels(wf: WorkflowDefinition) -> list[Issue]:
    seen: dict[str, FieldPath] = {}
    issues: list[Issue] = []
    todo: list[tuple[FieldPath, list[StepDefinition]]] = [(("steps",), wf.steps)]
    while todo:
        base, level = todo.pop(0)
        for i, step in enumerate(level):
            path = (*base, i)
            if step.id in seen and seen[step.id][:-1] != path[:-1]:  # same level: checked there
                where = format_path(seen[step.id])
                issues.append(
                    (
                        (*path, "id"),
                        f"duplicate step id {step.id!r} (see {where})",
                        "duplicate_step",
                    )
                )
            seen.setdefault(step.id, path)
            if step.steps:
                todo.append(((*path, "steps"), step.steps))
    return issues


class _Upstream:
    """Every step's transitive needs, computed once, on first use."""

    def __init__(self, wf: WorkflowDefinition) -> None:
        self._wf = wf
        self._sets: dict[str, set[str]] | None = None

    def __call__(self, step_id: str) -> set[str]:
        if self._sets is None:
            try:
                order = self._wf.topological_order()
            except ValueError:  # a cycle (reported on its own): walk step by step
                self._sets = {s.id: self._wf.upstream(s.id) for s in self._wf.steps}
            else:
                needs = {s.id: s.needs for s in reversed(self._wf.steps)}
                sets: dict[str, set[str]] = {}
                for sid in order:
                    sets[sid] = set(needs[sid]).union(*(sets.get(n, set()) for n in needs[sid]))
                self._sets = sets
        return self._sets.get(step_id, set())


def _unknown_step(name: str, ids: Mapping[str, int]) -> str:
    message = f"unknown step {name!r}"
    dashed = [s for s in ids if s.startswith(name + "-")]
    if dashed:
        message += f" (for an id with '-', write steps[{dashed[0]!r}])"
    return message


def _cycle_issues(wf: WorkflowDefinition, ids: Mapping[str, int]) -> list[Issue]:
    graph = {s.id: [n for n in s.needs if n in ids] for s in reversed(wf.steps)}
    issues: list[Issue] = []
    done: set[str] = set()
    reported: set[frozenset[str]] = set()
    for root in ids:
        if root in done:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        on_stack = {root}
        while stack:
            node, successors = stack[-1]
            nxt = next(successors, None)
            if nxt is None:
                stack.pop()
                on_stack.discard(node)
                done.add(node)
            elif nxt in on_stack:
                names = [n for n, _ in stack]
                cycle = names[names.index(nxt) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    first, second = cycle[0], (cycle + cycle)[1]
                    i = ids[first]
                    k = wf.steps[i].needs.index(second)
                    text = " -> ".join([*cycle, first])
                    issues.append((("steps", i, "needs", k), f"cycle in needs: {text}", "cycle"))
            elif nxt not in done:
                stack.append((nxt, iter(graph[nxt])))
                on_stack.add(nxt)
    return issues


def _step_issues(
    wf: WorkflowDefinition,
    ids: Mapping[str, int],
    upstream: _Upstream,
    i: int,
    step: StepDefinition,
    outer: frozenset[str] = frozenset(),
) -> list[Issue]:
    issues: list[Issue] = []
    here: FieldPath = ("steps", i)
    model = KIND_SCHEMAS.get(step.uses)
    if model is None:
        known = ", ".join(sorted(KIND_SCHEMAS))
        issues.append(
            ((*here, "uses"), f"unknown kind {step.uses!r}; known: {known}", "unknown_kind")
        )
    else:
        try:
            model.model_validate(step.with_)
        except ValidationError as exc:
            issues += validation_issues(
                exc, step.with_, (*here, "with"), field_names(model), skip_expressions=True
            )
    has_item = step.foreach is not None
    if isinstance(step.foreach, str) and not ex.is_expression(step.foreach):
        issues.append(
            ((*here, "foreach"), "foreach must be a list or one ${{ }} expression", "invalid")
        )
    issues += _expression_issues(
        wf, ids, upstream, step.with_, (*here, "with"), step, allow_item=has_item, outer=outer
    )
    issues += _expression_issues(
        wf, ids, upstream, step.foreach, (*here, "foreach"), step, False, outer=outer
    )
    if isinstance(step.if_, str):
        condition = step.if_
        if "${{" not in condition:
            condition = "${{ " + condition + " }}"
        elif not ex.is_expression(condition):
            issues.append(
                ((*here, "if"), "a condition must be a single ${{ }} expression", "bad_expression")
            )
        issues += _expression_issues(
            wf, ids, upstream, condition, (*here, "if"), step, False, outer=outer
        )
    return issues


def _leaves(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str]]:
    if isinstance(value, str):
        if "${{" in value:
            yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _expression_issues(
    wf: WorkflowDefinition,
    ids: Mapping[str, int],
    upstream: _Upstream,
    value: Any,
    path: FieldPath,
    step: StepDefinition | None,
    allow_item: bool,
    outer: frozenset[str] = frozenset(),
) -> list[Issue]:
    issues: list[Issue] = []
    names = ex.SCOPE_ROOTS | ex.global_names()
    for where, text in _leaves(value, path):
        issues += [(where, message, "bad_expression") for message in ex.syntax_errors(text)]
        issues += [(where, message, "bad_expression") for message in ex.limit_errors(text)]
        unguarded = ex.references(text, include_guarded=False)
        for root, key in sorted(ex.references(text), key=lambda r: (r[0], r[1] or "")):
            if root == "steps" and key is not None:
                if key in outer and key not in ids:
                    continue  # a step upstream of the enclosing group
                if key not in ids:
                    issues.append((where, _unknown_step(key, ids), "unknown_step"))
                elif step is not None and key == step.id:
                    issues.append((where, f"step {key!r} cannot refer to itself", "not_upstream"))
                elif step is not None and key not in upstream(step.id):
                    message = f"step {key!r} is not upstream of {step.id!r}; add it to needs"
                    issues.append((where, message, "not_upstream"))
            elif root == "item":
                if not allow_item:
                    message = "'item' is only defined in the 'with' of a step with foreach"
                    issues.append((where, message, "item_outside_foreach"))
            elif (root, key) not in unguarded:
                continue  # under `| default(…)` or `is defined`: absence is allowed
            elif root == "inputs" and key is not None and key not in wf.inputs:
                declared = ", ".join(sorted(wf.inputs)) or "none"
                message = f"unknown input {key!r} (declared: {declared})"
                issues.append((where, message, "unknown_input"))
            elif root not in names:
                known = ", ".join(sorted(ex.SCOPE_ROOTS))
                issues.append((where, f"unknown name {root!r} (use {known})", "unknown_name"))
    return issues


_INT64 = range(-(2**63), 2**63)
_UNSTORABLE_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def unstorable_issues(data: Any) -> list[Issue]:
    """Values the stored definition (JSON, JSONB on PostgreSQL) could not hold: integers
    beyond 64 bits, NUL characters and lone surrogates (JSON text may escape them), anywhere."""
    issues: list[Issue] = []
    todo: list[tuple[Any, FieldPath]] = [(data, ())]
    while todo:
        value, path = todo.pop()
        if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
            issues.append((path, "integer out of range (at most 64 bits)", "invalid"))
        elif isinstance(value, str) and _UNSTORABLE_TEXT.search(value):
            issues.append((path, "NUL characters and lone surrogates are not allowed", "invalid"))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and _UNSTORABLE_TEXT.search(key):
                    message = "NUL characters and lone surrogates are not allowed in keys"
                    issues.append((path, message, "invalid"))
                else:
                    todo.append((item, (*path, str(key))))
        elif isinstance(value, list):
            todo.extend((item, (*path, index)) for index, item in enumerate(value))
    return issues


#: Answers why a ``uses: python`` function may not be called (None: it may).
FunctionCheck = Callable[[str], str | None]


def function_issues(wf: WorkflowDefinition, check: FunctionCheck) -> list[Issue]:
    issues: list[Issue] = []
    for path, value in python_functions(wf.steps):
        if not isinstance(value, str):
            continue  # reported by the kind's schema
        if ex.contains_expression(value):
            message = "the function must be written out (not an expression) to be checked"
            issues.append((path, message, "function_not_allowed"))
        elif re.match(FUNCTION_PATTERN, value):
            refusal = check(value)
            if refusal is not None:
                issues.append((path, refusal, "function_not_allowed"))
    return issues
