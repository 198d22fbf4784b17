"""Workflow definitions: the schema of a workflow, its steps, inputs and retry policy
(pydantic models, exported as JSON Schema for editors)."""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from legato.model.definition_problems import short_repr
from legato.model.durations import parse_duration
from legato.model.schedules import ScheduleDeclaration

__all__ = [
    "FUNCTION_PATTERN",
    "PATTERN_HELP",
    "STEP_ID_PATTERN",
    "WORKFLOW_NAME_PATTERN",
    "Duration",
    "InputSpec",
    "RetryPolicy",
    "StepDefinition",
    "WorkflowDefinition",
    "json_schema",
]

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$"
WORKFLOW_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
FUNCTION_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"
#: What each name pattern allows, in words, for the message of a name that does not match.
PATTERN_HELP = {
    STEP_ID_PATTERN: "use letters, digits, '_' and '-', starting with a letter or '_' (max 63)",
    FUNCTION_PATTERN: "expected an import path such as 'package.module:function'",
    WORKFLOW_NAME_PATTERN: "use lowercase letters, digits, '_', '.' and '-', starting with a "
    "letter or digit (max 100)",
}


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
                {"value": short_repr(self.default), "type": self.type},
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

    #: indexes built on first use (a definition never changes): steps by id at any depth,
    #: and the top-level steps that need each top-level step
    _by_id: dict[str, StepDefinition] | None = PrivateAttr(default=None)
    _needed_by: dict[str, tuple[str, ...]] | None = PrivateAttr(default=None)

    def step(self, step_id: str) -> StepDefinition:
        """The step with id ``step_id`` at any depth (ids are unique in a workflow);
        ``KeyError`` if there is none."""
        if self._by_id is None:
            found: dict[str, StepDefinition] = {}
            todo = list(self.steps)
            while todo:
                step = todo.pop(0)
                found.setdefault(step.id, step)
                todo.extend(step.steps or [])
            self._by_id = found
        return self._by_id[step_id]

    def needed_by(self, step_id: str) -> tuple[str, ...]:
        """The top-level steps that need top-level step ``step_id``."""
        if self._needed_by is None:
            users: dict[str, list[str]] = {}
            for s in self.steps:
                for need in s.needs:
                    users.setdefault(need, []).append(s.id)
            self._needed_by = {k: tuple(v) for k, v in users.items()}
        return self._needed_by.get(step_id, ())

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


def json_schema() -> dict[str, Any]:
    """JSON Schema of a workflow definition, for editors."""
    schema = WorkflowDefinition.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
