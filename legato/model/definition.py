"""Workflow definitions: the schema (pydantic, exported as JSON Schema), loading from YAML or
JSON, and validation whose every problem names its path and source line.
"""

from __future__ import annotations

import difflib
import hashlib
import heapq
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from legato.model import expressions as ex
from legato.model.durations import parse_duration
from legato.model.schedules import ScheduleDeclaration
from legato.model.step_modules import python_functions

__all__ = [
    "FUNCTION_PATTERN",
    "KIND_SCHEMAS",
    "STEP_ID_PATTERN",
    "WORKFLOW_NAME_PATTERN",
    "ApprovalWith",
    "DefinitionError",
    "Duration",
    "FunctionCheck",
    "HttpWith",
    "InputSpec",
    "Problem",
    "PythonWith",
    "RetryPolicy",
    "ShellWith",
    "SleepWith",
    "StepDefinition",
    "WorkflowDefinition",
    "WorkflowWith",
    "definition_from_data",
    "format_path",
    "json_schema",
    "load_definition",
    "parse_with",
    "register_kind",
]

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$"
WORKFLOW_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
FUNCTION_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"
_PATTERN_HELP = {
    STEP_ID_PATTERN: "use letters, digits, '_' and '-', starting with a letter or '_' (max 63)",
    FUNCTION_PATTERN: "expected an import path such as 'package.module:function'",
    WORKFLOW_NAME_PATTERN: "use lowercase letters, digits, '_', '.' and '-', starting with a "
    "letter or digit (max 100)",
}
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe loader, its scalars that resolve but cannot be built (``2001-13-14``, an
    integer of 5,000 digits) refused as YAML errors with their line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value {_short(node.value)}: {exc}", node.start_mark
            ) from None

    def construct_yaml_binary(self, node: yaml.Node) -> Any:
        raise yaml.constructor.ConstructorError(
            None, None, "binary values (!!binary) are not allowed", node.start_mark
        )


_Loader.add_constructor("tag:yaml.org,2002:binary", _Loader.construct_yaml_binary)

Path = tuple[str | int, ...]
_Issue = tuple[Path, str, str]  # path, message, code


def _to_seconds(value: Any) -> Any:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("bad_duration", "{reason}", {"reason": str(exc)}) from None


#: Seconds; written as a number or a string such as ``"500ms"``, ``"10m"`` or ``"1h30m"``.
Duration = Annotated[
    float,
    BeforeValidator(_to_seconds),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*)+$"},
            ],
            "description": "seconds, or a duration such as '500ms', '2s', '10m', '1h30m', '1d'",
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True
    )


class RetryPolicy(_Model):
    """How often to try a step and how long to wait between tries."""

    attempts: int = Field(1, ge=1, description="total number of tries, the first included")
    backoff: Literal["fixed", "exponential"] = "exponential"
    initial: Duration = Field(1.0, description="wait after the first failure")
    max: Duration | None = Field(None, description="longest wait between tries")
    jitter: float = Field(0.0, ge=0, le=1, description="spread each wait by up to ± this share")

    def delay(self, attempt: int, rand: float = 0.5) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based).

        The wait is ``initial`` (fixed) or ``initial * 2**(attempt-1)`` (exponential), capped
        by ``max``; jitter then scales it by a factor in ``[1-jitter, 1+jitter]`` chosen by
        ``rand`` in ``[0, 1)``.
        """
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        base = self.initial
        if self.backoff == "exponential":
            base = self.initial * 2.0 ** min(attempt - 1, 64)
        if self.max is not None:
            base = min(base, self.max)
        return base * (1.0 - self.jitter + 2.0 * self.jitter * rand)


InputType = Literal["string", "integer", "number", "boolean", "array", "object", "any"]
_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _no_default_in_schema(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    schema["description"] = "default value; without one the input is required"


class InputSpec(_Model):
    """A declared run input. Without ``default`` it is required; ``default: null`` is a default."""

    type: InputType = "any"
    default: Any = Field(None, json_schema_extra=_no_default_in_schema)
    description: str = ""

    @property
    def required(self) -> bool:
        return "default" not in self.model_fields_set

    def accepts(self, value: Any) -> bool:
        """True if ``value`` is of this input's type (``None`` is always accepted)."""
        kinds = _TYPE_CHECKS.get(self.type)
        if value is None or kinds is None:
            return True
        if isinstance(value, bool) and bool not in kinds:
            return False
        return isinstance(value, kinds)

    @model_validator(mode="after")
    def _default_has_type(self) -> InputSpec:
        if not self.required and not self.accepts(self.default):
            raise PydanticCustomError(
                "invalid",
                "default {value} is not of type {type}",
                {"value": _short(self.default), "type": self.type},
            )
        return self

    @model_serializer(mode="wrap")
    def _keep_explicit_default(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            if self.required:
                data.pop("default", None)
            elif "default" not in data:
                data["default"] = None
        return data


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class StepDefinition(_Model):
    """One step: what it runs (``uses`` and ``with``), after what (``needs``) and how."""

    id: str = Field(pattern=STEP_ID_PATTERN)
    name: str | None = Field(None, description="display name (defaults to id)")
    type: str | None = Field(None, description="free label shown as the step type")
    uses: str = Field(description="step kind: python, shell, http, workflow, sleep, approval")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    needs: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)
    if_: str | bool | None = Field(None, alias="if", description="run only if this is true")
    timeout: Duration | None = None
    retry: RetryPolicy | None = None
    foreach: str | list[Any] | None = Field(None, description="run once per item of this list")
    max_parallel: int | None = Field(None, ge=1)
    description: str = ""
    steps: list[StepDefinition] | None = Field(
        None, description="the nested steps of a `uses: group` step (their needs name siblings)"
    )

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def max_attempts(self) -> int:
        return self.retry.attempts if self.retry else 1


class WorkflowDefinition(_Model):
    """A named workflow: declared inputs, steps, outputs."""

    name: str = Field(pattern=WORKFLOW_NAME_PATTERN)
    description: str = ""
    operation_type: str | None = None
    resource_type: str | None = None
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    steps: list[StepDefinition] = Field(min_length=1)
    outputs: dict[str, Any] = Field(default_factory=dict)
    timeout: Duration | None = Field(None, description="deadline for the whole run")
    labels: dict[
        Annotated[str, Field(min_length=1, max_length=200)], Annotated[str, Field(max_length=200)]
    ] = Field(default_factory=dict, max_length=50)
    schedules: list[ScheduleDeclaration] = Field(
        default_factory=list, max_length=100, description="start runs on a clock"
    )

    @field_validator("inputs", mode="before")
    @classmethod
    def _bare_inputs(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    def step(self, step_id: str) -> StepDefinition:
        """The step with id ``step_id`` at any depth (ids are unique in a workflow);
        ``KeyError`` if there is none."""
        todo = list(self.steps)
        while todo:
            step = todo.pop(0)
            if step.id == step_id:
                return step
            todo.extend(step.steps or [])
        raise KeyError(step_id)

    def topological_order(self) -> list[str]:
        """Step ids with every step after its needs; ties keep the definition's order."""
        index = {s.id: i for i, s in reversed(list(enumerate(self.steps)))}
        waiting = {s.id: {n for n in s.needs if n in index} for s in self.steps}
        users: dict[str, list[str]] = {}
        for step_id, needs in waiting.items():
            for need in needs:
                users.setdefault(need, []).append(step_id)
        ready = [(index[k], k) for k, v in waiting.items() if not v]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, step_id = heapq.heappop(ready)
            order.append(step_id)
            for user in users.get(step_id, []):
                waiting[user].discard(step_id)
                if not waiting[user]:
                    heapq.heappush(ready, (index[user], user))
        if len(order) != len(waiting):
            raise ValueError("the steps' needs form a cycle")
        return order

    def upstream(self, step_id: str) -> set[str]:
        """Every step that ``step_id`` needs, directly or transitively."""
        needs = {s.id: s.needs for s in reversed(self.steps)}
        found: set[str] = set()
        todo = list(needs.get(step_id, []))
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(needs.get(current, []))
        return found

    def canonical(self) -> dict[str, Any]:
        """The definition as plain JSON data, normalised (durations in seconds, no nulls)."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not data.get("schedules"):  # definitions without schedules hash as they always did
            data.pop("schedules", None)
        return data

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON: equal definitions give equal hashes."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


# --- step kinds -------------------------------------------------------------------------------


class _With(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_alias=True)


def _strings(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


class PythonWith(BaseModel):
    """``python``: ``function`` is ``package.module:function``; other keys are its arguments."""

    model_config = ConfigDict(extra="allow", frozen=True)
    function: str = Field(pattern=FUNCTION_PATTERN)

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ShellWith(_With):
    """``shell``: a program and its arguments as a list (never a shell string)."""

    argv: list[Annotated[str, BeforeValidator(_strings)]] = Field(min_length=1)
    env: dict[str, Annotated[str, BeforeValidator(_strings)]] = Field(default_factory=dict)
    cwd: str | None = None
    #: How long a canceled or timed-out process gets between SIGTERM and SIGKILL.
    kill_grace: Duration | None = None

    @field_validator("argv", mode="before")
    @classmethod
    def _no_shell_string(cls, value: Any) -> Any:
        if isinstance(value, str) and not ex.contains_expression(value):
            raise PydanticCustomError(
                "invalid", "argv must be a list of strings such as [echo, hello], not a string"
            )
        return value


class HttpWith(_With):
    """``http``: one request with httpx."""

    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    json_: Any = Field(None, alias="json")
    body: str | None = None
    timeout: Duration | None = None
    #: follow redirects (each hop's destination is checked like the first)
    follow_redirects: bool = False

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class WorkflowWith(_With):
    """``workflow``: start a child run of another workflow and wait for it."""

    workflow: str = Field(pattern=WORKFLOW_NAME_PATTERN)
    version: int | None = Field(None, ge=1)
    inputs: dict[str, Any] = Field(default_factory=dict)


class SleepWith(_With):
    duration: Duration


class ApprovalWith(_With):
    message: str = ""


class GroupWith(_With):
    """``group``: no ``with``; its ``steps`` run as one step of the level around it."""


KIND_SCHEMAS: dict[str, type[BaseModel]] = {
    "python": PythonWith,
    "shell": ShellWith,
    "http": HttpWith,
    "workflow": WorkflowWith,
    "sleep": SleepWith,
    "approval": ApprovalWith,
    "group": GroupWith,
}


def register_kind(name: str, with_model: type[BaseModel]) -> None:
    """Make step kind ``name`` known, its ``with`` validated by ``with_model``."""
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"invalid step kind name {name!r}")
    known = KIND_SCHEMAS.get(name)
    if known is not None and known is not with_model:
        raise ValueError(f"step kind {name!r} is already registered")
    KIND_SCHEMAS[name] = with_model


def parse_with(kind: str, data: Mapping[str, Any]) -> BaseModel:
    """Validate a step's rendered ``with`` against its kind (``KeyError`` for unknown kinds)."""
    return KIND_SCHEMAS[kind].model_validate(dict(data))


# --- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: where (path and 1-based line) and what."""

    path: str
    line: int | None
    message: str
    code: str

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line is not None else []
        where += [self.path] if self.path else []
        return ": ".join([*where, self.message])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DefinitionError(ValueError):
    """The definition is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(path: Path) -> str:
    """``("steps", 1, "needs", 0)`` -> ``steps[1].needs[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        return f"invalid value {_short(err['input'])}: " + _PATTERN_HELP.get(
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


def _resolve(loc: tuple[str | int, ...], data: Any, missing: bool) -> Path:
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


def _validation_issues(
    exc: ValidationError, data: Any, prefix: Path, fields: Sequence[str], skip_expressions: bool
) -> list[_Issue]:
    grouped: dict[Path, list[tuple[str, str]]] = {}
    for err in exc.errors():
        if skip_expressions and isinstance(err["input"], str) and "${{" in err["input"]:
            continue
        path = prefix + _resolve(err["loc"], data, err["type"] == "missing")
        entry = (_message(err, fields), _CODES.get(err["type"], "invalid"))
        if entry not in grouped.setdefault(path, []):
            grouped[path].append(entry)
    issues: list[_Issue] = []
    for path, entries in grouped.items():
        expected = [m.removeprefix("expected ") for m, _ in entries if m.startswith("expected ")]
        if len(expected) > 1:  # one error per member of a union: merge them
            entries = [("expected " + " or ".join(expected), "invalid")] + [
                e for e in entries if not e[0].startswith("expected ")
            ]
        issues.extend((path, message, code) for message, code in entries)
    return issues


def _field_names(*models: type[BaseModel]) -> list[str]:
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


_DEFINITION_FIELDS = _field_names(WorkflowDefinition, StepDefinition, InputSpec, RetryPolicy)


# --- semantic checks --------------------------------------------------------------------------


def _semantic_issues(
    wf: WorkflowDefinition, prefix: Path = (), outer: frozenset[str] = frozenset()
) -> list[_Issue]:
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
    wf: WorkflowDefinition, step: StepDefinition, here: Path, outer: frozenset[str]
) -> list[_Issue]:
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
    return [((*here, *path), m, c) for path, m, c in _semantic_issues(level, here, outer)]


def _duplicate_ids_across_levels(wf: WorkflowDefinition) -> list[_Issue]:
    seen: dict[str, Path] = {}
    issues: list[_Issue] = []
    todo: list[tuple[Path, list[StepDefinition]]] = [(("steps",), wf.steps)]
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


def _cycle_issues(wf: WorkflowDefinition, ids: Mapping[str, int]) -> list[_Issue]:
    graph = {s.id: [n for n in s.needs if n in ids] for s in reversed(wf.steps)}
    issues: list[_Issue] = []
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
) -> list[_Issue]:
    issues: list[_Issue] = []
    here: Path = ("steps", i)
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
            issues += _validation_issues(
                exc, step.with_, (*here, "with"), _field_names(model), skip_expressions=True
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


def _leaves(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
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
    path: Path,
    step: StepDefinition | None,
    allow_item: bool,
    outer: frozenset[str] = frozenset(),
) -> list[_Issue]:
    issues: list[_Issue] = []
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


# --- loading ----------------------------------------------------------------------------------


_MAX_NODES = 100_000


def _too_large(what: str) -> DefinitionError:
    return DefinitionError([Problem("", None, f"the definition is {what}", "too_large")])


def _line_map(node: yaml.Node) -> tuple[dict[Path, int], list[_Issue]]:
    """Source line of every path in the YAML node tree, and keys given twice."""
    lines: dict[Path, int] = {(): node.start_mark.line + 1}
    duplicates: list[_Issue] = []
    todo: list[tuple[yaml.Node, Path]] = [(node, ())]
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


def _parse_text(text: str) -> tuple[Any, dict[Path, int], list[_Issue]]:
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


def _line(path: Path, lines: Mapping[Path, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


_INT64 = range(-(2**63), 2**63)
_UNSTORABLE_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def _unstorable_issues(data: Any) -> list[_Issue]:
    """Values the stored definition (JSON, JSONB on PostgreSQL) could not hold: integers
    beyond 64 bits, NUL characters and lone surrogates (JSON text may escape them), anywhere."""
    issues: list[_Issue] = []
    todo: list[tuple[Any, Path]] = [(data, ())]
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


def _function_issues(wf: WorkflowDefinition, check: FunctionCheck) -> list[_Issue]:
    issues: list[_Issue] = []
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


def _build(
    data: Any,
    lines: Mapping[Path, int],
    issues: list[_Issue],
    check_function: FunctionCheck | None = None,
) -> WorkflowDefinition:
    wf: WorkflowDefinition | None = None
    if not isinstance(data, Mapping):
        issues = [((), "the top level must be a mapping with name and steps", "invalid")]
    else:
        issues = issues + _unstorable_issues(data)
        try:
            wf = WorkflowDefinition.model_validate(data)
        except ValidationError as exc:
            issues = issues + _validation_issues(exc, data, (), _DEFINITION_FIELDS, False)
        else:
            issues = issues + _semantic_issues(wf)
            if check_function is not None:
                issues += _function_issues(wf, check_function)
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


def json_schema() -> dict[str, Any]:
    """JSON Schema of a workflow definition, for editors."""
    schema = WorkflowDefinition.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
